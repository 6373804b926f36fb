// The CRC calculation unit (RM0008 §4): CRC-32 polynomial 0x04C11DB7, initial value 0xFFFFFFFF,
// 32-bit words, MSB first, no final XOR (the "CRC-32/MPEG-2" of whole words).
#pragma once

#include <cstddef>
#include <cstdint>

namespace stm32f1::crc {

void enable();
std::uint32_t mpeg2(const std::uint32_t* words, std::size_t n);  // from a fresh reset
// The zlib/Ethernet CRC-32 (reflected, final XOR) of any byte string: whole words through the
// unit with their bits reversed (RBIT), the tail bytes in software. Equals crc32(0, data, len).
std::uint32_t crc32(const void* data, std::size_t len);

}  // namespace stm32f1::crc

// The two checksums of the protocol.
//   CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor): every frame.
//   CRC-32 (IEEE 802.3 / zlib: reflected poly 0xEDB88320, init and final xor 0xFFFFFFFF): the
//   "total checksum" of an image, the same number `crc32` or Python's zlib.crc32 print.
// Both are computed without a table, for the bootloader's size: CRC-16 (on every frame) a byte at
// a time, CRC-32 a bit at a time (about 40 cycles a byte: some 30 ms for a 56 KB image at 72 MHz).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ota {

std::uint16_t crc16_ccitt(const void* data, std::size_t len, std::uint16_t crc = 0xFFFF);

// Incremental: crc32(b, n2, crc32(a, n1)) == crc32(a ++ b).
std::uint32_t crc32(const void* data, std::size_t len, std::uint32_t crc = 0);

}  // namespace ota

#include "ota/crc.hpp"

namespace ota {

// CRC-16/CCITT-FALSE a byte at a time without a table: the byte's 8 steps of the polynomial
// x^16 + x^12 + x^5 + 1 folded into shifts of x = the byte's index into the would-be table (the
// well-known form of avr-libc's crc_xmodem_update). As fast as a nibble table and smaller.
std::uint16_t crc16_ccitt(const void* data, std::size_t len, std::uint16_t crc) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (len--) {
    std::uint8_t x = static_cast<std::uint8_t>((crc >> 8) ^ *p++);
    x ^= static_cast<std::uint8_t>(x >> 4);
    crc = static_cast<std::uint16_t>((crc << 8) ^ (x << 12) ^ (x << 5) ^ x);
  }
  return crc;
}

std::uint32_t crc32(const void* data, std::size_t len, std::uint32_t crc) {
  static constexpr std::uint32_t kTable[16] = {
      0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
      0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
      0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  while (len--) {
    crc ^= *p++;
    crc = (crc >> 4) ^ kTable[crc & 0x0F];
    crc = (crc >> 4) ^ kTable[crc & 0x0F];
  }
  return ~crc;
}

}  // namespace ota

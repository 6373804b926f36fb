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
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  while (len--) {
    crc ^= *p++;
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace ota

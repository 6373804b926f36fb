#include "ota/crc.hpp"

namespace ota {

std::uint16_t crc16_ccitt(const void* data, std::size_t len, std::uint16_t crc) {
  static constexpr std::uint16_t kTable[16] = {
      0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
      0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF};
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (len--) {
    const std::uint8_t b = *p++;
    crc = static_cast<std::uint16_t>((crc << 4) ^ kTable[(crc >> 12) ^ (b >> 4)]);
    crc = static_cast<std::uint16_t>((crc << 4) ^ kTable[(crc >> 12) ^ (b & 0x0F)]);
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

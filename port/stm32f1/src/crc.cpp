#include "stm32f1/crc.hpp"

#include "reg.hpp"

namespace stm32f1::crc {
namespace {

using namespace reg;

std::uint32_t rbit(std::uint32_t x) {
  asm("rbit %0, %1" : "=r"(x) : "r"(x));  // Cortex-M3 bit reversal
  return x;
}

}  // namespace

void enable() { RCC().AHBENR |= rcc_ahbenr::CRCEN; }

std::uint32_t mpeg2(const std::uint32_t* words, std::size_t n) {
  Crc& c = CRC();
  c.CR = crc_cr::RESET;
  for (std::size_t i = 0; i < n; ++i) c.DR = words[i];
  return c.DR;
}

// The unit computes a non-reflected CRC; feeding each little-endian word bit-reversed and
// reversing the result gives the reflected (zlib) CRC of the same bytes, before its final XOR.
std::uint32_t crc32(const void* data, std::size_t len) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  Crc& c = CRC();
  c.CR = crc_cr::RESET;
  std::size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    c.DR = rbit(static_cast<std::uint32_t>(p[i] | p[i + 1] << 8 | p[i + 2] << 16 |
                                           static_cast<std::uint32_t>(p[i + 3]) << 24));
  }
  std::uint32_t crc = rbit(c.DR);
  for (; i < len; ++i) {  // tail: bitwise, reflected polynomial 0xEDB88320
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace stm32f1::crc

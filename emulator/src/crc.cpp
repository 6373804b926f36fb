#include "bluepill/crc.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {

bool Crc::clocked() const { return chip_.rcc.ahb_enabled(6); }

std::uint32_t Crc::feed(std::uint32_t crc, std::uint32_t word) {
  crc ^= word;
  for (int i = 0; i < 32; ++i) crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
  return crc;
}

std::uint32_t Crc::read(std::uint32_t off, unsigned size) {
  std::uint32_t word = 0;
  switch (off & ~3u) {
    case 0x00: word = dr_; break;
    case 0x04: word = idr_; break;
    case 0x08: word = 0; break;
    default: return unmodelled_read(off);
  }
  return size == 4 ? word : (word >> (8 * (off & 3))) & (size == 1 ? 0xFFu : 0xFFFFu);
}

void Crc::write(std::uint32_t off, unsigned size, std::uint32_t value) {
  switch (off) {
    case 0x00:
      if (size != 4) {
        error("CRC_DR written with a " + std::to_string(size) + "-byte access: the STM32F1 CRC unit takes words only");
        return;
      }
      dr_ = feed(dr_, value);
      break;
    case 0x04: idr_ = static_cast<std::uint8_t>(value); break;
    case 0x08:
      if (value & 1) dr_ = 0xFFFFFFFF;
      break;
    default: unmodelled_write(off, value); break;
  }
}

}  // namespace bluepill

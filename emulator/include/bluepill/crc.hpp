// CRC calculation unit (RM0008 section 4): CRC-32/MPEG-2 on 32-bit words (polynomial
// 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final XOR). DR accepts only word writes
// (anything else is reported); IDR is a free byte; CR.RESET reloads 0xFFFFFFFF.
#pragma once

#include "bluepill/peripheral.hpp"

namespace bluepill {

class Crc final : public Peripheral {
 public:
  explicit Crc(Chip& chip) : Peripheral(chip, "CRC", 0x40023000, 0x400) {}
  std::uint32_t read(std::uint32_t offset, unsigned size) override;
  void write(std::uint32_t offset, unsigned size, std::uint32_t value) override;
  void reset() override {
    dr_ = 0xFFFFFFFF;
    idr_ = 0;
  }
  bool clocked() const override;
  static std::uint32_t feed(std::uint32_t crc, std::uint32_t word);

 private:
  std::uint32_t dr_ = 0xFFFFFFFF;
  std::uint8_t idr_ = 0;
};

}  // namespace bluepill

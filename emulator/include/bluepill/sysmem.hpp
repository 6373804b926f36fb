// The system memory page 0x1FFFF000-0x1FFFFFFF: the flash size register F_SIZE (0x1FFFF7E0, 64
// KB), the 96-bit unique device ID (0x1FFFF7E8, RM0008 section 30.2) and the option bytes
// (0x1FFFF800, factory values: no read-out or write protection). ST's ROM bootloader is not
// modelled: reading it is an error. Writes are errors.
#pragma once

#include <array>

#include "bluepill/peripheral.hpp"

namespace bluepill {

class SysMem final : public Peripheral {
 public:
  SysMem(Chip& chip, std::array<std::uint32_t, 3> uid)
      : Peripheral(chip, "SYSMEM", 0x1FFFF000, 0x1000), uid_(uid) {}
  std::uint32_t read(std::uint32_t offset, unsigned size) override;
  void write(std::uint32_t offset, unsigned size, std::uint32_t value) override;
  void reset() override {}

 private:
  bool byte_at(std::uint32_t offset, std::uint8_t& out) const;
  std::array<std::uint32_t, 3> uid_;
};

}  // namespace bluepill

// Power control (RM0008 section 5.4), the programmable voltage detector only: PWR_CR.PVDE enables
// it, PLS (bits 7:5) picks the threshold, PWR_CSR.PVDO reads 1 while VDD is below it. VDD is the
// board's supply (Board::set_supply_volts). Thresholds (DS5319, typical): level n falls at
// 2.08 + 0.1 n V and rises at 2.18 + 0.1 n V (100 mV hysteresis), each moved by
// Config::pvd_offset_volts (the spread from part to part). DBP is stored; the low-power
// bits (LPDS, PDDS, CWUF, CSBF, EWUP) are not modelled.
#pragma once

#include "bluepill/peripheral.hpp"

namespace bluepill {

class Pwr final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 2; }
  explicit Pwr(Chip& chip) : WordRegisters(chip, "PWR", 0x40007000, 0x400) {}
  void reset() override;
  bool clocked() const override;  // RCC_APB1ENR.PWREN
  bool held_in_reset() const override;
  // The PVD's output now (false while it is off): VDD below the selected threshold.
  bool pvd_output();

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  std::uint32_t cr_ = 0;
  bool below_ = false;  // the comparator's state (hysteresis)
};

}  // namespace bluepill

// Independent watchdog (RM0008 section 19). KR: 0xCCCC starts it (it can never be stopped
// again), 0xAAAA reloads the counter, 0x5555 unlocks PR and RLR. The counter runs from the LSI
// (40 kHz typical) through the prescaler (/4 .. /256); when it reaches 0 the chip is reset with
// RCC_CSR.IWDGRSTF. SR.PVU/RVU stay set for 5 LSI periods after a PR/RLR write, and until they
// clear a reload still uses the previous PR/RLR (RM0008 19.4.4).
#pragma once

#include "bluepill/peripheral.hpp"
#include "bluepill/time.hpp"

namespace bluepill {

class Iwdg final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 2; }
  explicit Iwdg(Chip& chip) : WordRegisters(chip, "IWDG", 0x40003000, 0x400) {}
  void reset() override;
  bool running() const { return running_; }

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  void reload();
  Cycles period_cycles() const;
  Cycles lsi_period() const;  // Config::lsi_hz
  bool running_ = false, unlocked_ = false;
  std::uint32_t pr_ = 0, rlr_ = 0xFFF;
  std::uint32_t pr_before_ = 0, rlr_before_ = 0xFFF;  // in force until PVU / RVU clear
  Cycles pvu_until_ = 0, rvu_until_ = 0;
  Scheduler::Id expiry_ = 0;
};

}  // namespace bluepill

// RCC (RM0008 section 7.3): clock tree, ready bits, peripheral clock enables, reset flags.
//
// HSI, HSE (the Blue Pill's 8 MHz crystal) and the PLL take their start-up times before their
// ready bits rise (DS5319: HSI 2 us, the PLL's lock 200 us after its source is ready, both the
// datasheet's maxima; HSE Config::hse_startup_us, 2 ms typical for an 8 MHz crystal), so that a
// start-up timeout too short for a real crystal makes the firmware fall back to the HSI here too.
// CFGR.SWS follows SW once the selected source is ready (at once if it already is). The resulting HCLK sets the cost
// of an instruction in virtual time, PCLK2 the USART1/SPI1 bit rates. Switching SYSCLK above
// 24/48 MHz without the matching FLASH_ACR latency is reported (the silicon would read wrong
// instructions). CSR's reset flags live in the board (they survive a system reset).
#pragma once

#include "bluepill/peripheral.hpp"
#include "bluepill/time.hpp"

namespace bluepill {

class Rcc final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 4; }
  explicit Rcc(Chip& chip) : WordRegisters(chip, "RCC", 0x40021000, 0x400) {}
  void reset() override;

  std::uint32_t sysclk() const;
  std::uint32_t hsi() const;  // the HSI's real frequency (Config::hsi_error)
  std::uint32_t hclk() const;
  std::uint32_t pclk1() const;
  std::uint32_t pclk2() const;
  // FLASH_ACR.LATENCY that SYSCLK needs (RM0008 3.3.3): 0 up to 24 MHz, 1 up to 48, 2 above.
  std::uint32_t wait_states_needed() const;
  // FLASH_ACR.HLFCYA is usable (RM0008 3.3.3): SYSCLK of 8 MHz from HSI or HSE, not from the PLL,
  // and no AHB prescaler.
  bool half_cycle_allowed() const { return ((cfgr_ >> 2) & 3) != 2 && hclk() == sysclk(); }

  // Peripheral clock enables (bit numbers of the ENR registers).
  bool ahb_enabled(int bit) const { return (ahbenr_ >> bit) & 1; }
  bool apb2_enabled(int bit) const { return (apb2enr_ >> bit) & 1; }
  bool apb1_enabled(int bit) const { return (apb1enr_ >> bit) & 1; }
  bool apb2_in_reset(int bit) const { return (apb2rstr_ >> bit) & 1; }  // APB2RSTR, same bits as APB2ENR
  bool apb1_in_reset(int bit) const { return (apb1rstr_ >> bit) & 1; }
  bool hsi_ready() {  // HSIRDY: switched on and started
    settle();
    return (cr_ & 2u) != 0;
  }
  void force_lsi() {  // IWDG started: LSI runs whatever LSION says
    if (!csr_lsion_ && !csr_lsi_forced_) lsi_ready_at_ = chip_now_plus_lsi_startup();
    csr_lsi_forced_ = true;
  }
  // The crystal stops now (RM0008 §7.2.7). With CSSON and HSE ready: HSE is switched off, a PLL
  // fed by it too, SYSCLK falls back to HSI, CSSF is set and the NMI is pending. Without CSS a
  // system clock that depended on HSE simply stops: the CPU halts (only the IWDG, clocked by
  // the LSI, can still reset the chip).
  void hse_failure();

  static constexpr std::uint32_t kHsi = 8'000'000;  // nominal; hsi(): with Config::hsi_error
  static constexpr std::uint32_t kHse = 8'000'000;
  static constexpr double kHsiStartupUs = 2;   // DS5319 tsu(HSI), max
  static constexpr double kPllLockUs = 200;    // DS5319 tLOCK, max
  static constexpr double kLsiStartupUs = 85;  // DS5319 tsu(LSI), max

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  void clocks_changed();
  void settle();  // raises the ready bits of the sources whose start-up time has passed
  bool complete_switch();  // SWS takes SW if its source is ready; true if it changed
  void check_clocks();
  std::uint32_t pll_out() const;
  std::uint32_t cr_ = 0, cfgr_ = 0, cir_ = 0, apb2rstr_ = 0, apb1rstr_ = 0;
  std::uint32_t ahbenr_ = 0, apb2enr_ = 0, apb1enr_ = 0, bdcr_ = 0;
  std::uint32_t csr_lsion_ = 0;
  bool csr_lsi_forced_ = false;
  Cycles lsi_ready_at_ = 0;  // LSIRDY rises then (the LSI started when LSION or the IWDG turned it on)
  Cycles chip_now_plus_lsi_startup() const;
  Cycles hsi_ready_at_ = 0, hse_ready_at_ = kNever, pll_on_at_ = 0;  // kNever: not starting
};

}  // namespace bluepill

// The Cortex-M3 system control space at 0xE000E000 (ARMv7-M ARM B3.2-B3.4): SysTick, NVIC,
// SCB (CPUID, ICSR, VTOR, AIRCR, SCR, CCR, SHPR1-3, SHCSR, fault status), CoreDebug DHCSR/DEMCR,
// and the DWT cycle counter at 0xE0001000 (Dwt below).
//
// Unicorn has no NVIC: the exception state lives here (pending, active, priorities) and the
// board performs entry and return. IRQ lines are levels: an asserted, enabled, inactive line is
// pending; a latched pend (ISPR, a pulse) stays pending until the exception is taken. The
// STM32F1 implements 4 priority bits (the low nibble of each priority byte reads as 0).
#pragma once

#include <bitset>

#include "bluepill/peripheral.hpp"
#include "bluepill/time.hpp"

namespace bluepill {

inline constexpr int kIrqCount = 60;  // STM32F103 (medium density)
inline constexpr int kExcCount = 16 + kIrqCount;

namespace exc {
inline constexpr int nmi = 2, hardfault = 3, memmanage = 4, busfault = 5, usagefault = 6, svcall = 11,
                     debugmon = 12, pendsv = 14, systick = 15;
inline constexpr int irq(int n) { return 16 + n; }
}  // namespace exc

namespace irq {
inline constexpr int flash = 4, dma1_ch1 = 11, spi1 = 35, usart1 = 37;
}

class Scs final : public Peripheral {
 public:
  explicit Scs(Chip& chip) : Peripheral(chip, "SCS", 0xE000E000, 0x1000) {}
  std::uint32_t read(std::uint32_t offset, unsigned size) override;
  void write(std::uint32_t offset, unsigned size, std::uint32_t value) override;
  void reset() override;

  // --- exception state, used by the board's exception entry/return
  void set_irq_line(int irq, bool level);  // peripheral interrupt request (level)
  void set_pending(int exc);
  bool pending(int exc) const;
  int priority(int exc) const;  // -3..255
  int group_priority(int prio) const;
  // Execution priority from the active exceptions and the masks (ARMv7-M B1.5.4).
  int execution_priority(std::uint32_t primask, std::uint32_t basepri, std::uint32_t faultmask) const;
  // Highest-priority pending exception that would preempt at execution priority `prio`, or 0.
  int takeable(int prio) const;
  void activate(int exc);    // exception entry
  void deactivate(int exc);  // exception return
  bool active(int exc) const { return active_[exc]; }
  bool any_active() const { return active_.any(); }
  int active_count() const { return static_cast<int>(active_.count()); }
  bool any_pending() const;
  std::uint32_t vtor() const { return vtor_; }
  bool stack_align8() const { return (ccr_ & 0x200) != 0; }  // CCR.STKALIGN
  bool sleep_on_exit() const { return (scr_ & 2) != 0; }
  bool div0_trap() const { return (ccr_ & 0x10) != 0; }  // CCR.DIV_0_TRP (PM0056 4.4.7)
  bool usage_fault_enabled() const { return (shcsr_ >> 18) & 1u; }  // SHCSR.USGFAULTENA
  // A fault's status bits (CFSR, PM0056 4.4.15), and HFSR.FORCED when it escalates to HardFault.
  void record_fault(std::uint32_t cfsr_bits, bool forced) {
    cfsr_ |= cfsr_bits;
    if (forced) hfsr_ |= 1u << 30;
  }

  // --- SysTick
  void clocks_changed();  // HCLK changed: re-anchor the counter
  // --- DWT / DEMCR
  bool trace_enabled() const { return (demcr_ >> 24) & 1; }

 private:
  std::uint32_t icsr_read() const;
  std::uint32_t systick_hz() const;
  std::uint32_t systick_val() const;
  void systick_anchor(std::uint32_t val);
  void systick_schedule();
  void attention();

  std::bitset<kExcCount> pending_, active_, lines_;
  std::bitset<kIrqCount> enabled_;
  std::uint8_t prio_[kExcCount] = {};
  std::uint32_t vtor_ = 0, aircr_prigroup_ = 0, scr_ = 0, ccr_ = 0, shcsr_ = 0;
  std::uint32_t cfsr_ = 0, hfsr_ = 0, mmfar_ = 0, bfar_ = 0, demcr_ = 0;
  // SysTick
  std::uint32_t st_ctrl_ = 0, st_load_ = 0;
  std::uint32_t st_val_ = 0;     // value at st_anchor_ (or the frozen value when disabled)
  Cycles st_anchor_ = 0;
  Scheduler::Id st_event_ = 0;
};

class Dwt final : public WordRegisters {
 public:
  explicit Dwt(Chip& chip) : WordRegisters(chip, "DWT", 0xE0001000, 0x1000) {}
  void reset() override;
  void clocks_changed();

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  std::uint32_t cyccnt() const;
  std::uint32_t ctrl_ = 0x40000000;  // NUMCOMP = 4
  std::uint32_t cyc_ = 0;
  Cycles anchor_ = 0;
};

}  // namespace bluepill

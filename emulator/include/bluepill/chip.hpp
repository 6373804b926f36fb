// The STM32F103C8 of one power-on: a Unicorn Cortex-M3 with the memory map and the peripheral
// models, plus the board's exception entry/return (Unicorn has no NVIC). The Board creates a
// new Chip at every power-on and every system reset; time, the flash parts and the SRAM
// contents belong to the Board and outlive it.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bluepill/config.hpp"
#include "bluepill/crc.hpp"
#include "bluepill/diag.hpp"
#include "bluepill/dma.hpp"
#include "bluepill/flash_ctrl.hpp"
#include "bluepill/gpio.hpp"
#include "bluepill/iwdg.hpp"
#include "bluepill/pwr.hpp"
#include "bluepill/rcc.hpp"
#include "bluepill/scs.hpp"
#include "bluepill/spi.hpp"
#include "bluepill/sysmem.hpp"
#include "bluepill/time.hpp"
#include "bluepill/usart.hpp"
#include "sim/internal_flash.hpp"
#include "sim/w25q_chip.hpp"

struct uc_struct;

namespace bluepill {

inline constexpr std::uint32_t kFlashBase = 0x08000000;
inline constexpr std::uint32_t kFlashSize = 64 * 1024;
inline constexpr std::uint32_t kFlashPageSize = 1024;
inline constexpr std::uint32_t kSramBase = 0x20000000;
inline constexpr std::uint32_t kSramSize = 20 * 1024;

enum class ResetCause : std::uint8_t { power_on, pin, software, watchdog };

// State that outlives a Chip: owned by the Board.
struct BoardState {
  explicit BoardState(std::uint64_t seed) : power(seed), flash(power), w25q(power), rng(seed) {}
  sim::PowerSupply power;
  sim::InternalFlash flash;
  sim::W25qChip w25q;
  std::mt19937_64 rng;
  Scheduler sched;                 // virtual time
  std::uint64_t instructions = 0;  // executed since the board was created
  std::array<std::uint8_t, kSramSize> sram{};
  std::uint32_t reset_flags = 0;   // RCC_CSR bits 26..31
  bool hse_failed = false;         // the crystal stopped (Board::hse_failure): dead from then on
  double supply_volts = 3.3;       // VDD (Board::set_supply_volts)
  Diagnostics diag;
  std::function<void(std::uint8_t, Cycles)> uart_tx;  // a byte left USART1's TX pin
  std::function<void()> uart_rx_ready;                // USART1 may now accept bytes
};

// Why Chip::run() returned.
enum class ChipStop : std::uint8_t { limit, breakpoint, error, reset, idle, debug };

class Chip {
 public:
  Chip(BoardState& board, const Config& cfg, ResetCause cause);
  ~Chip();
  Chip(const Chip&) = delete;
  Chip& operator=(const Chip&) = delete;

  // Runs until virtual time reaches until_time, the instruction counter reaches until_instr,
  // `check` (tested after every step) returns true, or something stops the chip.
  ChipStop run(Cycles until_time, std::uint64_t until_instr, const std::function<bool()>& check);
  std::uint32_t bkpt_imm() const { return bkpt_imm_; }
  std::uint64_t slices() const { return slices_; }  // uc_emu_start calls (a cost measure)
  ResetCause reset_request() const { return reset_cause_; }

  // --- for the peripherals
  Scheduler& sched() { return b_.sched; }
  // Events of the chip's peripherals: dropped when the chip goes (reset, power cut).
  Scheduler::Id at(Cycles when, Scheduler::Action fn) { return b_.sched.at(when, std::move(fn), this); }
  void cancel(Scheduler::Id& id) { b_.sched.cancel(id); }
  Cycles now() const { return b_.sched.now; }
  void report(Severity s, const std::string& text);
  void attention() { hook_.stop_at = 0; }  // stop the CPU before its next instruction
  std::uint32_t pc() const;
  void irq(int n, bool level) { scs.set_irq_line(n, level); }
  void request_reset(ResetCause cause);
  void clocks_changed();
  bool bus_read(std::uint32_t addr, unsigned size, std::uint32_t& value);
  bool bus_write(std::uint32_t addr, unsigned size, std::uint32_t value);
  void flash_changed(std::uint32_t offset, std::uint32_t len);  // the array changed: remap
  void stall_until(Cycles t);  // the CPU cannot fetch from flash before t
  Cycles flash_program_time();
  Cycles flash_erase_time();
  Cycles w25q_time(std::uint64_t typ_ns, std::uint64_t max_ns);
  // SPI1 to the W25Q: a broken rule of the chip (sim::W25qChip::violations()) is a board error.
  void w25q_select(bool asserted);
  void w25q_transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len);
  BoardState& board() { return b_; }
  const Config& config() const { return cfg_; }
  std::uint32_t& reset_flags() { return b_.reset_flags; }
  bool executing_from_flash() const;
  std::uint32_t ipsr() const;  // the exception being handled, 0 in thread mode
  std::uint32_t core_reg(int n) const;  // r0..r15, 16 = xPSR
  void set_core_reg(int n, std::uint32_t v);
  void set_breakpoints(const std::vector<std::uint32_t>* bps) { hook_.breakpoints = bps && !bps->empty() ? bps : nullptr; }

  // --- the peripherals
  Rcc rcc{*this};
  Gpio gpioa{*this, "GPIOA", 0x40010800, 2, 'A'};
  Gpio gpiob{*this, "GPIOB", 0x40010C00, 3, 'B'};
  Gpio gpioc{*this, "GPIOC", 0x40011000, 4, 'C'};
  Afio afio{*this};
  Usart usart1{*this};
  Dma dma1{*this};
  Crc crc{*this};
  Iwdg iwdg{*this};
  Pwr pwr{*this};
  Spi spi1{*this};
  FlashCtrl flash{*this};
  Scs scs{*this};
  Dwt dwt{*this};
  SysMem sysmem;

  // --- state read by the code hook (public for the C callback)
  struct Hook {
    Cycles* now;
    std::uint64_t* instructions;
    Cycles stop_at;
    std::uint64_t instr_stop;
    Cycles cpi;
    bool stopped;
    const std::vector<std::uint32_t>* breakpoints;  // debugger breakpoints, null if none
    std::uint32_t skip_bp;                          // resume over the breakpoint stopped at
    bool bp_hit;
    std::uint8_t it_left;  // instructions of the IT block under way still to run (never stopped inside)
    Chip* chip;  // for the alignment check (PM0056 2.2.5)
  } hook_{};

 private:
  Cycles cycles_per_instruction(std::uint32_t hclk) const;
  void w25q_check(std::uint64_t violations_before);
  friend struct ChipCallbacks;
  void map_memory();
  void cold_reset();
  void sync_flash_mirror();
  bool take_exception(int n);
  bool exception_return(std::uint32_t exc_return);
  // Error; non-strict: HardFault, or with `usage_cfsr` (its CFSR bits) the UsageFault if enabled.
  bool fault(const std::string& what, std::uint32_t usage_cfsr = 0);
  int current_priority() const;
  bool wake_pending() const;
  Peripheral* peripheral_at(std::uint32_t addr);
  std::uint32_t reg(int id) const;
  void set_reg(int id, std::uint32_t v);

  BoardState& b_;
  const Config& cfg_;
  uc_struct* uc_ = nullptr;
  std::array<std::uint8_t, kFlashSize> mirror_{};  // what Unicorn maps: a copy of the array
  std::uint32_t dirty_lo_ = kFlashSize, dirty_hi_ = 0;  // mirror range to refresh
  Peripheral* apb_[0x24000 / 0x400] = {};  // 0x40000000.. in 1 KB slots
  // hook outcomes
  enum class Event : std::uint8_t { none, exc_return, svc, bkpt, error };
  Event event_ = Event::none;
  std::uint32_t event_pc_ = 0;
  std::uint32_t fault_cfsr_ = 0;  // with Event::error: the CFSR bits of a UsageFault the hook found
  std::uint32_t bkpt_imm_ = 0;
  bool sleeping_ = false;
  bool bad_vector_ = false;
  std::uint64_t slices_ = 0;
  bool stopped_error_ = false;
  Cycles stall_until_ = 0;
  std::optional<std::uint32_t> resume_pc_;  // where the CPU goes on, if not its PC
  ResetCause reset_cause_ = ResetCause::power_on;
  bool reset_requested_ = false;
};

}  // namespace bluepill

// An emulated Blue Pill (STM32F103C8 + a W25Q16 on SPI1) that runs real firmware images.
//
// Typical test:
//   bluepill::Board board;                        // factory-fresh: flash erased
//   board.load_image("bootloader.elf");           // programmed as st-flash would
//   board.load_image("app.elf");
//   board.power_on();
//   auto r = board.run_until_output("app v", 2.0e6);   // up to 2 s of virtual time
//   ASSERT_EQ(r.stop, bluepill::Stop::condition) << r.message;
//   board.uart_send("...");  board.uart_output();  board.led_on();
//   board.run_instructions(12345); board.power_cut(); board.power_on();   // a power cut
//
// Errors (unmodelled registers, flash rule violations, faults) are in diagnostics(); with
// Config::strict the run stops at the first one with Stop::error and the text in message.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bluepill/config.hpp"
#include "bluepill/diag.hpp"
#include "bluepill/link.hpp"
#include "bluepill/time.hpp"

namespace sim {
class InternalFlash;
class W25qChip;
}  // namespace sim

namespace bluepill {

class Chip;
struct BoardState;
enum class ResetCause : std::uint8_t;

enum class Stop : std::uint8_t {
  limit,       // the instruction count or the virtual time asked for was reached
  condition,   // the caller's condition became true
  breakpoint,  // a BKPT instruction (RunResult::bkpt holds its immediate)
  error,       // the firmware broke a rule or faulted (strict mode): see message
  idle,        // the CPU sleeps and nothing can ever wake it
  off,         // the board is not powered
  debug,       // a debugger breakpoint (set_breakpoints) was reached; the instruction there is next
};

struct RunResult {
  Stop stop;
  std::string message;  // for Stop::error: the errors reported
  std::uint32_t bkpt = 0;
};

const char* to_string(Stop s);

class Board {
 public:
  explicit Board(Config cfg = {});
  ~Board();
  Board(const Board&) = delete;
  Board& operator=(const Board&) = delete;

  // ---- flash contents (the board may be on or off) -------------------------------------
  // Programs an .elf/.hex/.bin image into the internal flash as a programmer would (each page
  // touched is erased first). Throws std::runtime_error for a bad file or an address outside
  // the flash.
  void load_image(const std::string& file, std::uint32_t bin_base = 0x08000000);
  void erase_flash();  // all of the internal flash to 0xFF
  sim::InternalFlash& flash();
  sim::W25qChip& w25q();
  void save() const;  // write the persistence files now (also done at power_cut and destruction)

  // ---- power -------------------------------------------------------------------------------
  void power_on();   // cold start: random SRAM, peripherals at reset values, CPU from the vectors
  void power_cut();  // at once: a flash or W25Q program/erase in progress is torn
  bool powered() const { return chip_ != nullptr; }
  void reset_pin();  // NRST pulse
  // The crystal stops now (see Rcc::hse_failure) and stays dead, or (for_good false: a marginal
  // crystal, a cold snap) starts again whenever the firmware turns HSE on again.
  void hse_failure(bool for_good = true);
  // The next byte USART1 receives is lost to an overrun (ORE set), as if the DMA had been held
  // off for a character time: the firmware must clear ORE, or it receives nothing more.
  void usart_overrun();
  // A flash fault that comes and goes, for tests: Config::write_protect changed at once (on a
  // real chip new option bytes only apply after a reset).
  void set_write_protect(std::uint32_t mask) { cfg_.write_protect = mask; }
  // A page that wears out, or one that erases again (Config::worn_pages), from the next erase on.
  void set_worn_pages(std::vector<std::uint32_t> pages) { cfg_.worn_pages = std::move(pages); }
  // The W25Q's wiring fails (false) or is restored (true), at once: while it is off the chip sees
  // nothing and MISO reads 0xFF, as with Config::w25q = false. Its contents stay as they were.
  void set_w25q_connected(bool connected);
  // The supply (VDD, 2.0 .. 3.6 V; 3.3 V at the start) sags or recovers, at once. The PWR model's
  // voltage detector sees it; a W25Q program or erase started below 2.7 V (the W25Q16JV's
  // minimum) is an error: the firmware must not write flash on a supply that is going away.
  // Below 2.0 V the chip would be in reset: use power_cut().
  void set_supply_volts(double volts);
  double supply_volts() const;
  std::uint32_t resets() const { return resets_; }  // system resets since power-on
  ResetCause last_reset() const { return last_reset_; }

  // ---- running -----------------------------------------------------------------------------
  RunResult run_instructions(std::uint64_t n);
  RunResult run_for_us(double us);
  RunResult run_until(const std::function<bool()>& done, double max_us);
  RunResult run_until_output(std::string_view text, double max_us);  // searches uart_output()

  // ---- observing ---------------------------------------------------------------------------
  std::uint64_t instructions() const;  // executed since the Board was made
  std::uint64_t now_ns() const;        // virtual time
  double now_us() const { return static_cast<double>(now_ns()) / 1000.0; }
  bool led_on() const;                // PC13 driven low
  std::uint32_t led_changes() const { return led_changes_; }
  // Times PC13 became an output already driving low: the LED lit the instant its pin was made an
  // output (firmware that wants it off at first writes the level before the mode).
  std::uint32_t led_lit_as_configured() const { return led_lit_as_configured_; }
  bool pin(char port, int n) const;   // level of a GPIO pin
  std::uint32_t reg(int n) const;     // r0..r15 (13 = SP, 14 = LR, 15 = PC), 16 = xPSR
  bool read_memory(std::uint32_t addr, void* dst, std::size_t len) const;  // SRAM or flash
  Diagnostics& diagnostics();

  // ---- debugging (the GDB stub) ---------------------------------------------------------------
  void set_breakpoints(std::vector<std::uint32_t> addrs);
  void set_reg(int n, std::uint32_t v);  // r0..r15, 16 = xPSR
  // Any address: SRAM and flash directly, peripherals through the bus (with their read side
  // effects, as a debugger's reads have). Writes to flash overwrite it as a flash loader would.
  bool debug_read(std::uint32_t addr, void* dst, std::size_t len);
  bool debug_write(std::uint32_t addr, const void* src, std::size_t len);
  const Config& config() const { return cfg_; }
  Chip* chip() { return chip_.get(); }  // the peripherals, for white-box tests (null when off)

  // ---- USART1 link -------------------------------------------------------------------------
  const std::string& uart_output() const { return uart_out_; }  // every byte sent since creation
  void clear_uart_output() { uart_out_.clear(); }
  // Bytes from the far end: they reach the RX pin after the link latency, one frame each at the
  // USART's configured rate. A byte that completes while the receiver is off is lost.
  void uart_send(std::string_view bytes);
  void uart_send(const std::vector<std::uint8_t>& bytes);
  std::uint64_t uart_rx_lost() const { return rx_lost_; }
  void attach(std::unique_ptr<Link> link);  // also polled for bytes every 100 us of virtual time
  Link* link() { return link_.get(); }
  std::function<void(std::uint8_t)> on_uart_tx;  // each byte as the far end receives it

 private:
  RunResult run(Cycles until_time, std::uint64_t until_instr, const std::function<bool()>& done);
  void new_chip(ResetCause cause);
  void drop_chip();
  void system_reset(ResetCause cause);
  void schedule_rx();
  void schedule_poll();
  void tx_byte(std::uint8_t b, Cycles when);

  Config cfg_;
  std::unique_ptr<BoardState> state_;
  std::unique_ptr<Chip> chip_;
  std::uint32_t resets_ = 0;
  ResetCause last_reset_{};
  std::uint32_t led_changes_ = 0;
  std::uint32_t led_lit_as_configured_ = 0;
  bool pc13_output_ = false;
  std::size_t reported_ = 0;  // diagnostics already returned in a RunResult
  bool led_ = false;
  // the wire
  std::string uart_out_;
  std::deque<std::pair<Cycles, std::uint8_t>> rx_;  // bytes on their way to the RX pin
  Cycles rx_wire_free_ = 0;
  Scheduler::Id rx_event_ = 0, poll_event_ = 0;
  std::uint64_t rx_lost_ = 0, rx_lost_reported_ = 0;
  std::unique_ptr<Link> link_;
  std::vector<std::uint32_t> breakpoints_;
  // realtime pacing
  std::int64_t wall_start_ns_ = 0;
  Cycles virt_start_ = 0;
};

}  // namespace bluepill

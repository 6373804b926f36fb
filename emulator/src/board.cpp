#include "bluepill/board.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "bluepill/chip.hpp"
#include "bluepill/image.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kPinrstf = 1u << 26, kPorrstf = 1u << 27, kSftrstf = 1u << 28, kIwdgrstf = 1u << 29;
constexpr Cycles kPollPeriod = kTimeHz / 10'000;        // 100 us
constexpr Cycles kDefaultFrame = 10 * kTimeHz / 115200;  // 8N1 at 115200 baud (no link rate set)
std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
const char* cause_name(ResetCause c) {
  switch (c) {
    case ResetCause::power_on: return "power-on";
    case ResetCause::pin: return "NRST pin";
    case ResetCause::software: return "software (AIRCR.SYSRESETREQ)";
    case ResetCause::watchdog: return "independent watchdog";
  }
  return "?";
}
}  // namespace

const char* to_string(Stop s) {
  switch (s) {
    case Stop::limit: return "limit";
    case Stop::condition: return "condition";
    case Stop::breakpoint: return "breakpoint";
    case Stop::error: return "error";
    case Stop::idle: return "idle";
    case Stop::off: return "off";
    case Stop::debug: return "debug";
  }
  return "?";
}

Board::Board(Config cfg) : cfg_(std::move(cfg)), state_(std::make_unique<BoardState>(cfg_.seed)) {
  BoardState& st = *state_;
  if (cfg_.lsi_hz < 30'000 || cfg_.lsi_hz > 60'000)
    throw std::runtime_error("lsi_hz " + std::to_string(cfg_.lsi_hz) + " is outside the LSI's 30-60 kHz");
  if (!(cfg_.cycles_per_instruction >= 1 && cfg_.cycles_per_instruction <= 16))
    throw std::runtime_error("cycles_per_instruction " + std::to_string(cfg_.cycles_per_instruction) +
                             " is outside 1-16");
  // A file that does not exist yet, or is empty (just created), is a factory-fresh part.
  auto holds = [](const std::filesystem::path& f) {
    std::error_code ec;
    return !f.empty() && std::filesystem::file_size(f, ec) > 0 && !ec;
  };
  if (holds(cfg_.flash_file) && !st.flash.load(cfg_.flash_file))
    throw std::runtime_error(cfg_.flash_file.string() + " is not a 64 KB flash image");
  if (cfg_.w25q_protected) st.w25q.protect(0, 64 * 1024);
  if (holds(cfg_.w25q_file) && !st.w25q.load(cfg_.w25q_file))
    throw std::runtime_error(cfg_.w25q_file.string() + " does not match the W25Q's capacity");
  st.w25q.set_timing([s = &st] { return cycles_to_ns(s->sched.now); },
                     cfg_.timing == TimingMode::maximum ? sim::kW25qMax : sim::kW25qTypical);
  st.uart_tx = [this](std::uint8_t b, Cycles when) { tx_byte(b, when); };
  st.uart_rx_ready = [this] { schedule_rx(); };
}

Board::~Board() {
  try {
    save();
  } catch (...) {
  }
  chip_.reset();
}

sim::InternalFlash& Board::flash() { return state_->flash; }
sim::W25qChip& Board::w25q() { return state_->w25q; }
Diagnostics& Board::diagnostics() { return state_->diag; }
std::uint64_t Board::instructions() const { return state_->instructions; }
std::uint64_t Board::now_ns() const { return cycles_to_ns(state_->sched.now); }

void Board::save() const {
  auto save = [&](const sim::StoredMemory& part, const std::filesystem::path& file) {
    if (file.empty()) return;
    sim::StoredMemory::BeforeRename hook;
    if (cfg_.before_save_rename) hook = [&](const std::filesystem::path& copy) { cfg_.before_save_rename(copy, file); };
    if (!part.save(file, hook)) throw std::runtime_error("cannot write " + file.string());
  };
  save(state_->flash, cfg_.flash_file);
  save(state_->w25q, cfg_.w25q_file);
}

void Board::load_image(const std::string& file, std::uint32_t bin_base) {
  const std::vector<Segment> segs = read_image(file, bin_base);
  auto mem = state_->flash.bytes();
  // A segment's offset in the flash: at 0x08000000, or in its alias at 0.
  auto offset_of = [](const Segment& s) { return s.addr < kFlashSize ? s.addr : s.addr - kFlashBase; };
  for (const Segment& s : segs) {  // every segment checked before any page is erased
    if ((s.addr >= kFlashSize && s.addr < kFlashBase) || offset_of(s) + s.data.size() > kFlashSize)
      throw std::runtime_error(file + ": segment at " + hex32(s.addr) + " (" + std::to_string(s.data.size()) +
                               " bytes) is not in the internal flash");
  }
  for (const Segment& s : segs) {
    const std::uint32_t off = offset_of(s);
    for (std::uint32_t p = off & ~(kFlashPageSize - 1); p < off + s.data.size(); p += kFlashPageSize)
      state_->flash.erase_page(kFlashBase + p);
  }
  for (const Segment& s : segs) std::memcpy(&mem[offset_of(s)], s.data.data(), s.data.size());
  if (chip_) chip_->flash_changed(0, kFlashSize);
}

void Board::erase_flash() {
  for (std::uint32_t a = kFlashBase; a < kFlashBase + kFlashSize; a += kFlashPageSize) state_->flash.erase_page(a);
  if (chip_) chip_->flash_changed(0, kFlashSize);
}

// ---- power and reset ------------------------------------------------------------------------

void Board::new_chip(ResetCause cause) {
  chip_ = std::make_unique<Chip>(*state_, cfg_, cause);
  chip_->set_breakpoints(&breakpoints_);
  led_ = pc13_output_ = false;
  chip_->gpioc.on_change = [this](Gpio& c) {
    if (c.is_output(13) && !pc13_output_ && !c.level(13)) ++led_lit_as_configured_;
    pc13_output_ = c.is_output(13);
    const bool on = led_on();
    if (on != led_) ++led_changes_;
    led_ = on;
  };
}

void Board::drop_chip() {
  if (!chip_) return;
  if (chip_->spi1.cs_asserted() && cfg_.w25q && !state_->power.dead()) state_->w25q.select(false);
  chip_.reset();
}

void Board::power_on() {
  if (chip_) return;
  state_->power.power_on();
  state_->w25q.power_up(static_cast<std::uint64_t>(cfg_.w25q_write_inhibit_us * 1000));
  for (auto& b : state_->sram) b = static_cast<std::uint8_t>(state_->rng());  // SRAM powers up random
  state_->reset_flags = kPorrstf | kPinrstf;
  resets_ = 0;
  last_reset_ = ResetCause::power_on;
  state_->diag.add(Severity::info, now_ns(), 0, "power on");
  new_chip(ResetCause::power_on);
  schedule_poll();
}

void Board::hse_failure(bool for_good) {
  if (for_good) state_->hse_failed = true;
  if (chip_) chip_->rcc.hse_failure();
}

void Board::usart_overrun() {
  if (chip_) chip_->usart1.overrun_next();
}

void Board::set_w25q_connected(bool connected) {
  if (connected == cfg_.w25q) return;
  cfg_.w25q = connected;
  if (!chip_) return;
  // The chip sees /CS go high when its wire is cut, and a selection already under way when it
  // comes back (the bytes it missed make that command garbage, as on a loose contact).
  if (chip_->spi1.cs_asserted() && !state_->power.dead()) state_->w25q.select(connected);
  chip_->spi1.connect_w25q(connected);
}

void Board::set_supply_volts(double volts) {
  if (!(volts >= 2.0 && volts <= 3.6))
    throw std::invalid_argument("supply " + std::to_string(volts) + " V: the STM32F103 runs from 2.0 to 3.6 V");
  state_->supply_volts = volts;
}

double Board::supply_volts() const { return state_->supply_volts; }

void Board::power_cut() {
  if (!chip_) return;
  chip_->flash.power_cut(state_->rng);
  state_->w25q.power_cut();
  state_->diag.add(Severity::info, now_ns(), chip_->pc(), "power cut");
  chip_.reset();
  rx_.clear();  // bytes on the wire reach a dead chip
  state_->sched.cancel(rx_event_);
  save();
}

void Board::reset_pin() {
  if (chip_) system_reset(ResetCause::pin);
}

void Board::system_reset(ResetCause cause) {
  if (chip_->flash.busy()) {
    state_->diag.add(Severity::warning, now_ns(), chip_->pc(), "reset during a flash operation: it is torn");
    chip_->flash.power_cut(state_->rng);
  }
  drop_chip();
  std::uint32_t& f = state_->reset_flags;
  f |= kPinrstf;  // the internal reset drives NRST low, whatever its source
  if (cause == ResetCause::software) f |= kSftrstf;
  if (cause == ResetCause::watchdog) f |= kIwdgrstf;
  ++resets_;
  last_reset_ = cause;
  state_->diag.add(Severity::info, now_ns(), 0, std::string("system reset: ") + cause_name(cause));
  new_chip(cause);
}

// ---- running ------------------------------------------------------------------------------

RunResult Board::run(Cycles until_time, std::uint64_t until_instr, const std::function<bool()>& done) {
  if (!chip_) return {Stop::off, "the board is not powered", 0};
  for (;;) {
    switch (chip_->run(until_time, until_instr, done)) {
      case ChipStop::reset: system_reset(chip_->reset_request()); continue;
      case ChipStop::limit: return {done && done() ? Stop::condition : Stop::limit, "", 0};
      case ChipStop::breakpoint: return {Stop::breakpoint, "", chip_->bkpt_imm()};
      case ChipStop::idle: return {Stop::idle, "the CPU sleeps (WFI) and nothing can wake it", 0};
      case ChipStop::debug: return {Stop::debug, "", 0};
      case ChipStop::error: {
        std::string text;
        const auto& all = state_->diag.all();
        for (std::size_t i = std::min(reported_, all.size()); i < all.size(); ++i)
          if (all[i].severity == Severity::error) text += all[i].to_string() + "\n";
        reported_ = all.size();
        if (text.empty()) text = state_->diag.error_text();
        return {Stop::error, text, 0};
      }
    }
  }
}

RunResult Board::run_instructions(std::uint64_t n) { return run(kNever, state_->instructions + n, nullptr); }

namespace {
Cycles deadline(Cycles now, double us) {  // saturates: "forever" stays forever
  if (!(us < 1e14)) return kNever;
  return now + us_to_cycles(us < 0 ? 0 : us);
}
}  // namespace

RunResult Board::run_for_us(double us) { return run(deadline(state_->sched.now, us), ~0ull, nullptr); }

RunResult Board::run_until(const std::function<bool()>& done, double max_us) {
  return run(deadline(state_->sched.now, max_us), ~0ull, done);
}

RunResult Board::run_until_output(std::string_view text, double max_us) {
  const std::string needle(text);
  std::size_t from = 0;  // only new output is searched
  return run_until(
      [&] {
        if (uart_out_.find(needle, from) != std::string::npos) return true;
        from = uart_out_.size() > needle.size() ? uart_out_.size() - needle.size() : 0;
        return false;
      },
      max_us);
}

// ---- observing ------------------------------------------------------------------------------

bool Board::led_on() const {
  return chip_ && chip_->gpioc.is_output(13) && !chip_->gpioc.level(13);
}

bool Board::pin(char port, int n) const {
  if (!chip_) return false;
  switch (port) {
    case 'A': return chip_->gpioa.level(n);
    case 'B': return chip_->gpiob.level(n);
    case 'C': return chip_->gpioc.level(n);
    default: return false;
  }
}

std::uint32_t Board::reg(int n) const { return chip_ ? chip_->core_reg(n) : 0; }

bool Board::read_memory(std::uint32_t addr, void* dst, std::size_t len) const {
  auto* out = static_cast<std::uint8_t*>(dst);
  if (addr >= kSramBase && addr - kSramBase + len <= kSramSize) {
    std::memcpy(out, &state_->sram[addr - kSramBase], len);
    return true;
  }
  if (addr < kFlashSize) addr += kFlashBase;
  if (addr >= kFlashBase && addr - kFlashBase + len <= kFlashSize) {
    std::memcpy(out, &state_->flash.bytes()[addr - kFlashBase], len);
    return true;
  }
  return false;
}

// ---- debugging ------------------------------------------------------------------------------

void Board::set_breakpoints(std::vector<std::uint32_t> addrs) {
  for (auto& a : addrs) a &= ~1u;
  breakpoints_ = std::move(addrs);
  if (chip_) chip_->set_breakpoints(&breakpoints_);
}

void Board::set_reg(int n, std::uint32_t v) {
  if (chip_) chip_->set_core_reg(n, v);
}

bool Board::debug_read(std::uint32_t addr, void* dst, std::size_t len) {
  if (read_memory(addr, dst, len)) return true;
  if (!chip_) return false;
  auto* out = static_cast<std::uint8_t*>(dst);
  for (std::size_t i = 0; i < len;) {
    const std::uint32_t a = addr + static_cast<std::uint32_t>(i);
    const unsigned size = (a % 4 == 0 && len - i >= 4) ? 4 : (a % 2 == 0 && len - i >= 2) ? 2 : 1;
    std::uint32_t v = 0;
    if (!chip_->bus_read(a, size, v)) return false;
    std::memcpy(out + i, &v, size);
    i += size;
  }
  return true;
}

bool Board::debug_write(std::uint32_t addr, const void* src, std::size_t len) {
  if (addr >= kSramBase && addr - kSramBase + len <= kSramSize) {
    std::memcpy(&state_->sram[addr - kSramBase], src, len);
    return true;
  }
  if (addr < kFlashSize) addr += kFlashBase;
  if (addr >= kFlashBase && addr - kFlashBase + len <= kFlashSize) {
    std::memcpy(&state_->flash.bytes()[addr - kFlashBase], src, len);
    if (chip_) chip_->flash_changed(addr - kFlashBase, static_cast<std::uint32_t>(len));
    return true;
  }
  if (!chip_) return false;
  const auto* in = static_cast<const std::uint8_t*>(src);
  for (std::size_t i = 0; i < len;) {
    const std::uint32_t a = addr + static_cast<std::uint32_t>(i);
    const unsigned size = (a % 4 == 0 && len - i >= 4) ? 4 : (a % 2 == 0 && len - i >= 2) ? 2 : 1;
    std::uint32_t v = 0;
    std::memcpy(&v, in + i, size);
    if (!chip_->bus_write(a, size, v)) return false;
    i += size;
  }
  return true;
}

// ---- the wire -------------------------------------------------------------------------------

void Board::tx_byte(std::uint8_t b, Cycles when) {
  uart_out_.push_back(static_cast<char>(b));
  auto deliver = [this, b](Cycles) {
    if (link_) link_->send(&b, 1);
    if (on_uart_tx) on_uart_tx(b);
  };
  const Cycles latency = us_to_cycles(cfg_.latency_ms * 1000.0);
  if (latency == 0) deliver(when);
  else state_->sched.at(when + latency, deliver);
}

void Board::uart_send(std::string_view bytes) {
  const Cycles arrival = state_->sched.now + us_to_cycles(cfg_.latency_ms * 1000.0);
  for (char c : bytes) rx_.emplace_back(arrival, static_cast<std::uint8_t>(c));
  schedule_rx();
}

void Board::uart_send(const std::vector<std::uint8_t>& bytes) {
  uart_send(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void Board::schedule_rx() {
  if (rx_.empty() || state_->sched.pending(rx_event_)) return;
  // A byte takes the USART's frame time; while the USART is off, the far end's (it is lost).
  Cycles frame = chip_ ? chip_->usart1.frame_cycles() : 0;
  if (frame == 0) frame = cfg_.link_baud ? 10 * kTimeHz / cfg_.link_baud : kDefaultFrame;
  const Cycles start = std::max({rx_.front().first, rx_wire_free_, state_->sched.now});
  rx_event_ = state_->sched.at(start + frame, [this](Cycles when) {
    rx_event_ = 0;
    const std::uint8_t b = rx_.front().second;
    rx_.pop_front();
    rx_wire_free_ = when;
    if (chip_ && chip_->usart1.receive(b, when)) {
      rx_lost_reported_ = rx_lost_;
    } else {
      // Bytes that come before the firmware has turned the receiver on are lost as on the part,
      // and that is normal at every boot (a server already talking): said as info. Once it has
      // been on, switching it off while bytes come is worth a warning.
      if (rx_lost_++ == rx_lost_reported_) {
        if (chip_ && chip_->usart1.has_been_on())
          state_->diag.add(Severity::warning, now_ns(), chip_->pc(),
                           "bytes arriving on USART1 RX are lost: the receiver is off");
        else
          state_->diag.add(Severity::info, now_ns(), chip_ ? chip_->pc() : 0,
                           "bytes arriving on USART1 RX are lost: the receiver is not on yet");
      }
    }
    schedule_rx();
  });
}

void Board::attach(std::unique_ptr<Link> link) {
  link_ = std::move(link);
  schedule_poll();
}

void Board::schedule_poll() {
  if ((!link_ && !cfg_.realtime) || state_->sched.pending(poll_event_)) return;
  poll_event_ = state_->sched.at(state_->sched.now + kPollPeriod, [this](Cycles) {
    poll_event_ = 0;
    if (link_) {
      std::uint8_t buf[4096];
      const std::size_t n = link_->receive(buf, sizeof buf);
      if (n > 0) uart_send(std::string_view(reinterpret_cast<const char*>(buf), n));
    }
    if (cfg_.realtime) {
      const std::int64_t wall = wall_ns();
      if (wall_start_ns_ == 0 || wall - wall_start_ns_ > static_cast<std::int64_t>(cycles_to_ns(state_->sched.now - virt_start_)) + 500'000'000) {
        wall_start_ns_ = wall;  // start, or fell far behind: do not race to catch up
        virt_start_ = state_->sched.now;
      }
      const std::int64_t target = wall_start_ns_ + static_cast<std::int64_t>(cycles_to_ns(state_->sched.now - virt_start_));
      if (target > wall) std::this_thread::sleep_for(std::chrono::nanoseconds(target - wall));
    }
    schedule_poll();
  });
}

}  // namespace bluepill

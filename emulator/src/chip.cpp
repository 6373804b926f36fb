// The Chip: Unicorn engine set-up, memory map, bus dispatch and the run loop.
// Exception entry and return are in exceptions.cpp.
#include "bluepill/chip.hpp"

#include <unicorn/unicorn.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace bluepill {

namespace {
constexpr Cycles kCheckPeriod = 10 * (kTimeHz / 1'000'000);
constexpr std::uint32_t kApbBase = 0x40000000;
constexpr std::uint32_t kApbSize = 0x24000;
bool in_flash(std::uint32_t a) { return a < kFlashSize || (a >= kFlashBase && a - kFlashBase < kFlashSize); }
std::uint32_t flash_offset(std::uint32_t a) { return a < kFlashSize ? a : a - kFlashBase; }
}  // namespace

// The C callbacks Unicorn calls.
struct ChipCallbacks {
  // PM0056 2.2.5 (and the UFSR.UNALIGNED note, 4.4.15): LDM, STM, LDRD, STRD, LDREX and STREX
  // fault at an address that is not word-aligned, whatever CCR.UNALIGN_TRP says; only single
  // LDR/STR/LDRH/STRH may be unaligned. Unicorn (QEMU 5) performs them. Called before the
  // instruction at `a` executes; returns its name and sets `at` when it would fault.
  // The `n` bytes of code at `a` (flash, its alias at 0, or SRAM); null elsewhere.
  static const std::uint8_t* code_at(const Chip& c, std::uint32_t a, std::uint32_t n) {
    if (in_flash(a) && flash_offset(a) + n <= kFlashSize) return &c.mirror_[flash_offset(a)];
    if (a >= kSramBase && a - kSramBase + n <= kSramSize) return &c.b_.sram[a - kSramBase];
    return nullptr;
  }

  static const char* misaligned_multiple(Chip& c, std::uint32_t a, std::uint32_t& at) {
    std::uint16_t hw[2] = {};
    const std::uint8_t* code = code_at(c, a, 4);
    if (code == nullptr) return nullptr;
    std::memcpy(hw, code, 4);
    const std::uint16_t h1 = hw[0], h2 = hw[1];
    auto r = [&](unsigned n) { return c.reg(UC_ARM_REG_R0 + static_cast<int>(n)); };  // r0..r12 contiguous
    auto rn = [&](unsigned n) -> std::uint32_t {
      return n <= 12 ? r(n) : n == 13 ? c.reg(UC_ARM_REG_SP) : n == 14 ? c.reg(UC_ARM_REG_LR) : 0;
    };
    // PM0056 4.4.7: with CCR.DIV_0_TRP, SDIV/UDIV by 0 is a UsageFault (DIVBYZERO), not 0.
    if ((h1 & 0xFFD0) == 0xFB90 && (h2 & 0xF0F0) == 0xF0F0 && c.scs.div0_trap()) {
      at = 0;
      return rn(h2 & 15) == 0 ? ((h1 & 0x20) ? "UDIV by zero (CCR.DIV_0_TRP)" : "SDIV by zero (CCR.DIV_0_TRP)") : nullptr;
    }
    if ((h1 & 0xF000) == 0xC000) {  // 16-bit STMIA/LDMIA
      at = rn((h1 >> 8) & 7);
      return (at & 3) ? ((h1 & 0x0800) ? "LDM" : "STM") : nullptr;
    }
    if ((h1 & 0xFE40) == 0xE800) {  // 32-bit LDM/STM (IA: op 01, DB: op 10)
      const unsigned op = (h1 >> 7) & 3, n = h1 & 15;
      if ((op != 1 && op != 2) || n == 13 || n == 15) return nullptr;  // PUSH.W/POP.W: SP[1:0] are always 0
      at = rn(n) - (op == 2 ? 4u * static_cast<std::uint32_t>(__builtin_popcount(h2)) : 0u);
      return (at & 3) ? ((h1 & 0x10) ? "LDM" : "STM") : nullptr;
    }
    if ((h1 & 0xFE40) == 0xE840) {
      const unsigned n = h1 & 15;
      const bool p = h1 & 0x100, u = h1 & 0x80, w = h1 & 0x20, load = h1 & 0x10;
      if (n == 13 || n == 15) return nullptr;  // SP: always word-aligned; literal: Align(PC, 4)
      const std::uint32_t off = 4u * (h2 & 0xFFu);
      if (p || w) {  // LDRD/STRD (immediate)
        at = p ? (u ? rn(n) + off : rn(n) - off) : rn(n);
        return (at & 3) ? (load ? "LDRD" : "STRD") : nullptr;
      }
      if ((h1 & 0xFFE0) == 0xE840) {  // LDREX/STREX (word)
        at = rn(n) + off;
        return (at & 3) ? (load ? "LDREX" : "STREX") : nullptr;
      }
      // LDREXH/STREXH (op3 = 0101; 0000/0001 are TBB/TBH, 0100 LDREXB/STREXB): half-word aligned.
      if ((h1 & 0xFFE0) == 0xE8C0 && ((h2 >> 4) & 0xFu) == 0x5) {
        at = rn(n);
        return (at & 1) ? (load ? "LDREXH" : "STREXH") : nullptr;
      }
    }
    return nullptr;
  }

  // Whether the instruction at `a` (in flash, the usual case, read from the mirror) may be one
  // that misaligned_multiple() decodes: a cheap look at its first half-word for every
  // instruction, the decoding only for these few.
  static bool may_fault(const Chip& c, std::uint32_t a) {
    const std::uint32_t off = a - kFlashBase;
    std::uint16_t h1;
    if (off < kFlashSize - 1) std::memcpy(&h1, &c.mirror_[off], 2);
    else if (a < kFlashSize - 1) std::memcpy(&h1, &c.mirror_[a], 2);
    else return true;  // SRAM or elsewhere: decoded in full
    return (h1 & 0xF000) == 0xC000 || (h1 & 0xFE00) == 0xE800 || (h1 & 0xFFD0) == 0xFB90;
  }

  // The first half-word of the instruction at `a`; 0 where no code is.
  static std::uint16_t halfword_at(const Chip& c, std::uint32_t a) {
    std::uint16_t h = 0;
    if (const std::uint8_t* code = code_at(c, a, 2)) std::memcpy(&h, code, 2);
    return h;
  }

  static void code(uc_engine* uc, std::uint64_t addr, std::uint32_t, void* ud) {
    auto& h = *static_cast<Chip::Hook*>(ud);
    // Unicorn (QEMU) keeps an IT block's state in its translation: stopped at the IT instruction
    // or inside the block (where a translation block ends, at a 1 KB boundary, say), it resumes
    // with the state one instruction ahead, and an instruction runs under its neighbour's
    // condition. So the CPU is never stopped there: the block runs whole first (a time limit
    // or an interrupt comes up to four instructions late, as an interrupt's latency may).
    const bool in_it_block = h.it_left > 0;
    if (in_it_block) {
      --h.it_left;
    } else if (const std::uint16_t insn = halfword_at(*h.chip, static_cast<std::uint32_t>(addr));
               (insn & 0xFF00) == 0xBF00 && (insn & 0x000F) != 0) {
      h.it_left = static_cast<std::uint8_t>(4 - std::countr_zero(static_cast<unsigned>(insn & 0x000F)));
    }
    const bool may_stop = !in_it_block && h.it_left == 0;
    if (h.chip != nullptr && may_fault(*h.chip, static_cast<std::uint32_t>(addr))) {
      std::uint32_t at = 0;
      if (const char* what = misaligned_multiple(*h.chip, static_cast<std::uint32_t>(addr), at)) {
        h.chip->report(Severity::error, std::strstr(what, "DIV") != nullptr ? std::string(what) + ": UsageFault (DIVBYZERO) on silicon"
                                                                 : std::string(what) + " at unaligned address " + hex32(at) +
                                            ": UsageFault (UNALIGNED) on silicon, whatever CCR.UNALIGN_TRP says (PM0056 2.2.5)");
        h.chip->event_pc_ = static_cast<std::uint32_t>(addr);
        h.chip->event_ = Chip::Event::error;
        h.chip->fault_cfsr_ = std::strstr(what, "DIV") != nullptr ? 1u << 25 : 1u << 24;  // DIVBYZERO, UNALIGNED
        h.stopped = true;
        uc_emu_stop(uc);
        return;
      }
    }
    if (h.breakpoints != nullptr) {
      const auto a = static_cast<std::uint32_t>(addr);
      if (a == h.skip_bp) {
        h.skip_bp = 1;  // once only
      } else if (std::find(h.breakpoints->begin(), h.breakpoints->end(), a) != h.breakpoints->end()) {
        h.bp_hit = h.stopped = true;
        uc_emu_stop(uc);
        return;
      }
    }
    if (may_stop && (*h.now >= h.stop_at || *h.instructions >= h.instr_stop)) {
      h.stopped = true;
      uc_emu_stop(uc);
      return;
    }
    *h.now += h.cpi;
    ++*h.instructions;
  }

  // True (and an error reported) if RCC keeps p off the bus now: its clock gated, or held in reset.
  static bool refused(Chip& c, const Peripheral& p, const char* access, std::uint32_t addr) {
    const char* why = !p.clocked()       ? " while its clock is off (RCC enable bit clear)"
                      : p.held_in_reset() ? " while it is held in reset (RCC reset bit set)"
                                          : nullptr;
    if (why) c.report(Severity::error, std::string(access) + p.name() + " at " + hex32(addr) + why);
    return why != nullptr;
  }
  static std::uint64_t mmio_read(Chip& c, Peripheral* p, std::uint32_t addr, unsigned size) {
    if (p == nullptr) {
      c.report(Severity::error, "read of " + hex32(addr) + ": no peripheral modelled there");
      return 0;
    }
    if (refused(c, *p, "read of ", addr)) return 0;
    return p->read(addr - p->base(), size);
  }
  static void mmio_write(Chip& c, Peripheral* p, std::uint32_t addr, unsigned size, std::uint32_t v) {
    if (p == nullptr) {
      c.report(Severity::error, "write of " + hex32(v) + " to " + hex32(addr) + ": no peripheral modelled there");
      return;
    }
    if (refused(c, *p, "write to ", addr)) return;
    p->write(addr - p->base(), size, v);
  }
  static std::uint64_t apb_read(uc_engine*, std::uint64_t off, unsigned size, void* ud) {
    auto& c = *static_cast<Chip*>(ud);
    const auto addr = static_cast<std::uint32_t>(kApbBase + off);
    return mmio_read(c, c.peripheral_at(addr), addr, size);
  }
  static void apb_write(uc_engine*, std::uint64_t off, unsigned size, std::uint64_t v, void* ud) {
    auto& c = *static_cast<Chip*>(ud);
    const auto addr = static_cast<std::uint32_t>(kApbBase + off);
    mmio_write(c, c.peripheral_at(addr), addr, size, static_cast<std::uint32_t>(v));
  }
  static std::uint64_t one_read(uc_engine*, std::uint64_t off, unsigned size, void* ud) {
    auto* p = static_cast<Peripheral*>(ud);
    return mmio_read(p->chip(), p, static_cast<std::uint32_t>(p->base() + off), size);
  }
  static void one_write(uc_engine*, std::uint64_t off, unsigned size, std::uint64_t v, void* ud) {
    auto* p = static_cast<Peripheral*>(ud);
    mmio_write(p->chip(), p, static_cast<std::uint32_t>(p->base() + off), size, static_cast<std::uint32_t>(v));
  }

  static bool flash_store(uc_engine*, uc_mem_type, std::uint64_t addr, int size, std::int64_t value, void* ud) {
    auto& c = *static_cast<Chip*>(ud);
    const auto a = static_cast<std::uint32_t>(addr);
    if (!in_flash(a)) {
      c.report(Severity::error, "write to read-only memory at " + hex32(a));
      return true;
    }
    const std::uint32_t off = flash_offset(a);
    // Unicorn lets the raw store land in the mapped copy: schedule its repair before the next
    // instruction, then apply the FPEC's rules to the real array.
    c.dirty_lo_ = std::min(c.dirty_lo_, off);
    c.dirty_hi_ = std::min<std::uint32_t>(kFlashSize, std::max<std::uint32_t>(c.dirty_hi_, off + static_cast<std::uint32_t>(size)));
    c.attention();
    c.flash.store(kFlashBase + off, static_cast<unsigned>(size), static_cast<std::uint32_t>(value));
    return true;
  }

  static bool unmapped(uc_engine*, uc_mem_type type, std::uint64_t addr, int size, std::int64_t value, void* ud) {
    auto& c = *static_cast<Chip*>(ud);
    const auto a = static_cast<std::uint32_t>(addr);
    std::string what;
    switch (type) {
      case UC_MEM_READ_UNMAPPED: what = "read of " + std::to_string(size) + " bytes at unmapped address "; break;
      case UC_MEM_WRITE_UNMAPPED:
        what = "write of " + hex32(static_cast<std::uint32_t>(value)) + " to unmapped address ";
        break;
      case UC_MEM_FETCH_UNMAPPED: what = "instruction fetch from unmapped address "; break;
      default: what = "bad access at "; break;
    }
    c.report(Severity::error, what + hex32(a) + " (bus fault on silicon)");
    c.event_ = Chip::Event::error;
    return false;
  }

  static void intr(uc_engine* uc, std::uint32_t intno, void* ud) {
    auto& c = *static_cast<Chip*>(ud);
    std::uint32_t pc = 0;
    uc_reg_read(uc, UC_ARM_REG_PC, &pc);
    c.event_pc_ = pc;
    if (intno == 8 || (intno == 3 && pc >= 0xFFFFFFE0u)) {
      c.event_ = Chip::Event::exc_return;
    } else if (intno == 2) {
      c.event_ = Chip::Event::svc;
    } else if (intno == 7) {
      c.event_ = Chip::Event::bkpt;
    } else {
      c.event_ = Chip::Event::error;
      c.report(Severity::error, "CPU exception " + std::to_string(intno) +
                                    (intno == 3 ? " (instruction fetch from non-executable memory)" : "") +
                                    " at " + hex32(pc));
    }
    uc_emu_stop(uc);
  }
};

Chip::Chip(BoardState& board, const Config& cfg, ResetCause cause)
    : sysmem(*this, cfg.uid), b_(board), cfg_(cfg), reset_cause_(cause) {
  uc_engine* uc = nullptr;
  if (uc_open(UC_ARCH_ARM, UC_MODE_THUMB, &uc) != UC_ERR_OK) throw std::runtime_error("uc_open failed");
  uc_ = uc;
  if (uc_ctl_set_cpu_model(uc_, UC_CPU_ARM_CORTEX_M3) != UC_ERR_OK) throw std::runtime_error("no Cortex-M3 model");
  hook_.now = &b_.sched.now;
  hook_.instructions = &b_.instructions;
  hook_.cpi = cycles_per_instruction(8'000'000);  // the reset clock, HSI
  hook_.stop_at = kNever;
  hook_.skip_bp = 1;
  hook_.chip = this;
  b_.sched.floor = &hook_.stop_at;
  map_memory();
  for (Peripheral* p : std::initializer_list<Peripheral*>{&rcc, &gpioa, &gpiob, &gpioc, &afio, &usart1, &dma1,
                                                        &crc, &iwdg, &pwr, &spi1, &flash, &scs, &dwt, &sysmem})
    p->reset();
  gpioa.on_change = [this](Gpio&) { spi1.update_cs(); };
  spi1.connect_w25q(cfg_.w25q);
  clocks_changed();
  cold_reset();
}

Chip::~Chip() {
  b_.sched.floor = nullptr;
  b_.sched.clear_owner(this);
  if (uc_ != nullptr) uc_close(uc_);
}

void Chip::map_memory() {
  std::memcpy(mirror_.data(), b_.flash.bytes().data(), kFlashSize);
  auto ok = [](uc_err e, const char* what) {
    if (e != UC_ERR_OK) throw std::runtime_error(std::string("unicorn: ") + what + ": " + uc_strerror(e));
  };
  ok(uc_mem_map_ptr(uc_, kFlashBase, kFlashSize, UC_PROT_READ | UC_PROT_EXEC, mirror_.data()), "map flash");
  ok(uc_mem_map_ptr(uc_, 0, kFlashSize, UC_PROT_READ | UC_PROT_EXEC, mirror_.data()), "map flash alias");
  ok(uc_mem_map_ptr(uc_, kSramBase, kSramSize, UC_PROT_ALL, b_.sram.data()), "map SRAM");
  ok(uc_mmio_map(uc_, kApbBase, kApbSize, ChipCallbacks::apb_read, this, ChipCallbacks::apb_write, this), "map APB");
  for (Peripheral* p : std::initializer_list<Peripheral*>{&scs, &dwt, &sysmem})
    ok(uc_mmio_map(uc_, p->base(), p->size(), ChipCallbacks::one_read, p, ChipCallbacks::one_write, p), p->name());
  for (Peripheral* p : std::initializer_list<Peripheral*>{&rcc, &gpioa, &gpiob, &gpioc, &afio, &usart1, &dma1,
                                                        &crc, &iwdg, &pwr, &spi1, &flash})
    apb_[(p->base() - kApbBase) / 0x400] = p;

  uc_hook h;
  ok(uc_hook_add(uc_, &h, UC_HOOK_CODE, reinterpret_cast<void*>(ChipCallbacks::code), &hook_, 1, 0), "code hook");
  ok(uc_hook_add(uc_, &h, UC_HOOK_INTR, reinterpret_cast<void*>(ChipCallbacks::intr), this, 1, 0), "intr hook");
  ok(uc_hook_add(uc_, &h, UC_HOOK_MEM_WRITE_PROT, reinterpret_cast<void*>(ChipCallbacks::flash_store), this, 1, 0),
     "write hook");
  ok(uc_hook_add(uc_, &h, UC_HOOK_MEM_UNMAPPED, reinterpret_cast<void*>(ChipCallbacks::unmapped), this, 1, 0),
     "unmapped hook");
}

void Chip::cold_reset() {
  std::uint32_t sp = 0, pc = 0;
  std::memcpy(&sp, &mirror_[0], 4);
  std::memcpy(&pc, &mirror_[4], 4);
  set_reg(UC_ARM_REG_R13, sp);
  set_reg(UC_ARM_REG_R14, 0xFFFFFFFF);
  resume_pc_ = pc;
  if (pc == 0xFFFFFFFF || (pc & 1) == 0) {
    bad_vector_ = true;
    report(Severity::error, "no valid reset vector at 0x08000004 (reads " + hex32(pc) + "): is the flash programmed?");
  }
}

Peripheral* Chip::peripheral_at(std::uint32_t addr) {
  if (addr >= kApbBase && addr - kApbBase < kApbSize) return apb_[(addr - kApbBase) / 0x400];
  for (Peripheral* p : std::initializer_list<Peripheral*>{&scs, &dwt, &sysmem})
    if (addr >= p->base() && addr - p->base() < p->size()) return p;
  return nullptr;
}

std::uint32_t Chip::reg(int id) const {
  std::uint32_t v = 0;
  uc_reg_read(uc_, id, &v);
  return v;
}

void Chip::set_reg(int id, std::uint32_t v) { uc_reg_write(uc_, id, &v); }

std::uint32_t Chip::pc() const { return resume_pc_ ? *resume_pc_ & ~1u : reg(UC_ARM_REG_PC); }

std::uint32_t Chip::core_reg(int n) const {
  static constexpr int kIds[16] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,  UC_ARM_REG_R3,
                                   UC_ARM_REG_R4, UC_ARM_REG_R5, UC_ARM_REG_R6,  UC_ARM_REG_R7,
                                   UC_ARM_REG_R8, UC_ARM_REG_R9, UC_ARM_REG_R10, UC_ARM_REG_R11,
                                   UC_ARM_REG_R12, UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_PC};
  if (n == 15) return pc();
  if (n == 16) return reg(UC_ARM_REG_XPSR) | 1u << 24;  // always Thumb
  return n >= 0 && n < 16 ? reg(kIds[n]) : 0;
}

void Chip::set_core_reg(int n, std::uint32_t v) {
  static constexpr int kIds[15] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,  UC_ARM_REG_R3, UC_ARM_REG_R4,
                                   UC_ARM_REG_R5, UC_ARM_REG_R6, UC_ARM_REG_R7,  UC_ARM_REG_R8, UC_ARM_REG_R9,
                                   UC_ARM_REG_R10, UC_ARM_REG_R11, UC_ARM_REG_R12, UC_ARM_REG_SP, UC_ARM_REG_LR};
  if (n == 15) resume_pc_ = v & ~1u;
  else if (n == 16) set_reg(UC_ARM_REG_XPSR, v);
  else if (n >= 0 && n < 15) set_reg(kIds[n], v);
}

std::uint32_t Chip::ipsr() const { return reg(UC_ARM_REG_XPSR) & 0x1FF; }

bool Chip::executing_from_flash() const { return in_flash(pc()); }

void Chip::report(Severity s, const std::string& text) {
  b_.diag.add(s, cycles_to_ns(b_.sched.now), pc(), text);
  if (s == Severity::error) attention();
}

void Chip::request_reset(ResetCause cause) {
  if (reset_requested_) return;
  reset_requested_ = true;
  reset_cause_ = cause;
  attention();
}

// Time units (72 MHz cycles) per instruction at this core clock, at least 1.
Cycles Chip::cycles_per_instruction(std::uint32_t hclk) const {
  const double t = static_cast<double>(kTimeHz) * cfg_.cycles_per_instruction / hclk;
  return std::max<Cycles>(1, static_cast<Cycles>(t + 0.5));
}

void Chip::clocks_changed() {
  hook_.cpi = cycles_per_instruction(rcc.hclk());
  scs.clocks_changed();
  dwt.clocks_changed();
}

bool Chip::bus_read(std::uint32_t addr, unsigned size, std::uint32_t& value) {
  value = 0;
  if (addr % size != 0) return false;
  if (addr >= kSramBase && addr - kSramBase <= kSramSize - size) {
    std::memcpy(&value, &b_.sram[addr - kSramBase], size);
    return true;
  }
  if (in_flash(addr) && flash_offset(addr) <= kFlashSize - size) {
    std::memcpy(&value, &b_.flash.bytes()[flash_offset(addr)], size);
    return true;
  }
  Peripheral* p = peripheral_at(addr);
  if (p == nullptr) return false;
  value = static_cast<std::uint32_t>(ChipCallbacks::mmio_read(*this, p, addr, size));
  return true;
}

bool Chip::bus_write(std::uint32_t addr, unsigned size, std::uint32_t value) {
  if (addr % size != 0) return false;
  if (addr >= kSramBase && addr - kSramBase <= kSramSize - size) {
    std::memcpy(&b_.sram[addr - kSramBase], &value, size);
    return true;
  }
  if (in_flash(addr)) {
    flash.store(kFlashBase + flash_offset(addr), size, value);
    return true;
  }
  Peripheral* p = peripheral_at(addr);
  if (p == nullptr) return false;
  ChipCallbacks::mmio_write(*this, p, addr, size, value);
  return true;
}

void Chip::flash_changed(std::uint32_t offset, std::uint32_t len) {
  dirty_lo_ = std::min(dirty_lo_, offset);
  dirty_hi_ = std::max(dirty_hi_, std::min(kFlashSize, offset + len));
  attention();
}

void Chip::sync_flash_mirror() {
  if (dirty_lo_ >= dirty_hi_) return;
  std::memcpy(&mirror_[dirty_lo_], &b_.flash.bytes()[dirty_lo_], dirty_hi_ - dirty_lo_);
  uc_ctl_remove_cache(uc_, kFlashBase + dirty_lo_, kFlashBase + dirty_hi_);
  uc_ctl_remove_cache(uc_, dirty_lo_, dirty_hi_);
  dirty_lo_ = kFlashSize;
  dirty_hi_ = 0;
}

void Chip::stall_until(Cycles t) {
  stall_until_ = std::max(stall_until_, t);
  attention();
}

namespace {
double uniform(std::mt19937_64& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
}  // namespace

Cycles Chip::flash_program_time() {
  switch (cfg_.timing) {
    case TimingMode::typical: return us_to_cycles(52.5);
    case TimingMode::maximum: return us_to_cycles(70);
    case TimingMode::random: return us_to_cycles(uniform(b_.rng, 40, 70));
  }
  return us_to_cycles(52.5);
}

// DS5319 gives 20 ms min, 40 ms max and no typical figure: the midpoint stands for "typical".
Cycles Chip::flash_erase_time() {
  switch (cfg_.timing) {
    case TimingMode::typical: return us_to_cycles(30'000);
    case TimingMode::maximum: return us_to_cycles(40'000);
    case TimingMode::random: return us_to_cycles(uniform(b_.rng, 20'000, 40'000));
  }
  return us_to_cycles(30'000);
}

void Chip::w25q_select(bool asserted) {
  if (asserted && cfg_.timing == TimingMode::random) {
    const sim::W25qTiming t{static_cast<std::uint64_t>(uniform(b_.rng, sim::kW25qTypical.page_program_ns / 2.0,
                                                               sim::kW25qMax.page_program_ns)),
                            static_cast<std::uint64_t>(uniform(b_.rng, sim::kW25qTypical.sector_erase_ns / 2.0,
                                                               sim::kW25qMax.sector_erase_ns))};
    // The clock of the board, which outlives this chip (a reset or power cycle makes a new one):
    // the W25Q keeps the callback across them.
    b_.w25q.set_timing([s = &b_] { return cycles_to_ns(s->sched.now); }, t);
  }
  const std::uint64_t seen = b_.w25q.violations();
  const bool was_busy = !asserted && b_.w25q.busy();
  b_.w25q.select(asserted);
  w25q_check(seen);
  // /CS rising starts a program or erase: the chip turns BUSY (sim::W25qChip keeps BUSY for the
  // operation's duration on the board).
  if (!asserted && !was_busy && b_.w25q.busy() && b_.supply_volts < 2.7)
    report(Severity::error, "W25Q program/erase started at " + std::to_string(b_.supply_volts).substr(0, 4) +
                                " V: the W25Q16JV is specified from 2.7 V (watch the supply, e.g. with the PVD)");
}

void Chip::w25q_transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) {
  const std::uint64_t seen = b_.w25q.violations();
  b_.w25q.transfer(tx, rx, len);
  w25q_check(seen);
}

// The chip model counts what breaks its rules (a command while BUSY, a program without WEL, a
// program over data, ...); on the board each one is an error of the firmware that drove it.
void Chip::w25q_check(std::uint64_t seen) {
  if (b_.w25q.violations() != seen) report(Severity::error, "W25Q: " + b_.w25q.last_violation());
}

// ---------------------------------------------------------------------------------------------

ChipStop Chip::run(Cycles until_time, std::uint64_t until_instr, const std::function<bool()>& check) {
  Scheduler& s = b_.sched;
  const std::size_t errors_at_start = b_.diag.errors();
  auto failed = [&] { return cfg_.strict && b_.diag.errors() != errors_at_start; };
  if (bad_vector_) return ChipStop::error;  // the core locks up: no HardFault handler can run
  for (;;) {
    s.run_due();
    sync_flash_mirror();
    if (failed()) return ChipStop::error;
    if (reset_requested_) return ChipStop::reset;
    if (check && check()) return ChipStop::limit;
    if (s.now >= until_time || b_.instructions >= until_instr) return ChipStop::limit;
    // A caller's condition is tested at least every 10 us of virtual time.
    const Cycles horizon = check ? std::min(until_time, s.now + kCheckPeriod) : until_time;

    // The CPU cannot fetch while the flash is busy programming or erasing.
    if (flash.busy() && executing_from_flash()) stall_until(flash.busy_until());
    if (s.now < stall_until_) {
      s.now = std::min({stall_until_, s.next(), horizon});
      continue;
    }
    if (sleeping_) {
      if (wake_pending()) {
        sleeping_ = false;
      } else {
        const Cycles t = std::min(s.next(), horizon);
        if (t == kNever) return ChipStop::idle;
        s.now = std::max(s.now, t);
        continue;
      }
    }
    if (const int n = scs.takeable(current_priority()); n != 0) {
      if (!take_exception(n)) return ChipStop::error;
      continue;
    }

    hook_.stop_at = std::min(s.next(), horizon);
    // An exception held back only by PRIMASK/BASEPRI/FAULTMASK becomes takeable when an
    // instruction (CPSIE, MSR) clears them: look again every 256 instructions.
    if (scs.any_pending() && scs.takeable(scs.execution_priority(0, 0, 0)) != 0) hook_.stop_at = std::min(hook_.stop_at, s.now + 256 * hook_.cpi);
    hook_.instr_stop = until_instr;
    hook_.stopped = false;
    event_ = Event::none;
    const std::uint32_t start = resume_pc_ ? *resume_pc_ : pc();
    resume_pc_.reset();
    if (hook_.bp_hit) hook_.skip_bp = start & ~1u;  // go on from the breakpoint we stopped at
    hook_.bp_hit = false;
    hook_.it_left = 0;  // (stops never fall inside an IT block, but a breakpoint or a fault may)
    ++slices_;
    const uc_err err = uc_emu_start(uc_, start | 1, 0xFFFFFFFF, 0, 0);
    sync_flash_mirror();
    if (hook_.bp_hit) {
      resume_pc_ = pc();
      return ChipStop::debug;
    }
    if (err != UC_ERR_OK) {
      const std::uint32_t at = pc();
      if (event_ != Event::error) {
        std::uint16_t insn = 0;
        std::uint32_t word = 0;
        if (bus_read(at & ~1u, 2, word)) insn = static_cast<std::uint16_t>(word);
        if (err == UC_ERR_INSN_INVALID && insn == 0xBF20) {  // WFE: Unicorn does not know it
          resume_pc_ = at + 2;
          sleeping_ = true;
          continue;
        }
        char buf[64];
        std::snprintf(buf, sizeof buf, " (instruction 0x%04X)", insn);
        report(Severity::error, std::string("CPU stopped: ") + uc_strerror(err) + " at " + hex32(at) + buf);
      }
      if (!fault("fault")) return ChipStop::error;
      continue;
    }
    switch (event_) {
      case Event::exc_return:
        if (!exception_return(event_pc_ | 1)) return ChipStop::error;
        break;
      case Event::svc:
        scs.set_pending(exc::svcall);
        if (scs.takeable(current_priority()) != exc::svcall) {
          report(Severity::error, "SVC executed where SVCall cannot be taken (escalates to HardFault)");
          if (!fault("SVC")) return ChipStop::error;
        }
        break;
      case Event::bkpt: {
        std::uint32_t word = 0;
        bus_read(event_pc_ & ~1u, 2, word);
        bkpt_imm_ = word & 0xFF;
        resume_pc_ = event_pc_ + 2;
        return ChipStop::breakpoint;
      }
      case Event::error:
        if (!fault("fault", std::exchange(fault_cfsr_, 0))) return ChipStop::error;
        break;
      case Event::none:
        if (!hook_.stopped) {
          const std::uint32_t at = pc();
          std::uint32_t word = 0;
          if (bus_read((at - 2) & ~1u, 2, word) && (word & 0xFFFF) == 0xBF30) {
            sleeping_ = true;  // WFI
          } else {
            report(Severity::error, "CPU stopped for no known reason at " + hex32(at));
            return ChipStop::error;
          }
        }
        break;
    }
  }
}

}  // namespace bluepill

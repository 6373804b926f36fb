#include "bluepill/scs.hpp"

#include <algorithm>

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kCpuid = 0x411FC231;  // Cortex-M3 r1p1, as in the STM32F103
constexpr std::uint32_t kCalib = 0x00002328;  // 9000 ticks of HCLK/8 = 1 ms at 72 MHz
constexpr std::uint32_t kStEnable = 1, kStTickint = 2, kStClksource = 4, kStCountflag = 1u << 16;

std::uint64_t scale(Cycles c, std::uint32_t hz) {  // virtual time -> ticks of an hz clock
  return static_cast<std::uint64_t>(static_cast<unsigned __int128>(c) * hz / kTimeHz);
}
Cycles unscale(std::uint64_t ticks, std::uint32_t hz) {  // ticks -> virtual time, rounded up
  return static_cast<Cycles>((static_cast<unsigned __int128>(ticks) * kTimeHz + hz - 1) / hz);
}
}  // namespace

void Scs::reset() {
  pending_.reset();
  active_.reset();
  lines_.reset();
  enabled_.reset();
  std::fill(std::begin(prio_), std::end(prio_), 0);
  vtor_ = aircr_prigroup_ = scr_ = shcsr_ = cfsr_ = hfsr_ = mmfar_ = bfar_ = demcr_ = 0;
  ccr_ = 0;  // r1p1 (the F103's core, CPUID 0x411FC231): STKALIGN off at reset, on from r2p0
  st_ctrl_ = st_load_ = st_val_ = 0;
  st_anchor_ = chip_.now();
  chip_.cancel(st_event_);
}

void Scs::attention() { chip_.attention(); }

// ---- exception state ----------------------------------------------------------------------

void Scs::set_irq_line(int irq, bool level) {
  const int e = 16 + irq;
  if (lines_[e] == level) return;
  lines_[e] = level;
  if (level && enabled_[irq]) attention();
}

void Scs::set_pending(int e) {
  pending_[e] = true;
  attention();
}

bool Scs::pending(int e) const {
  if (pending_[e]) return true;
  return e >= 16 && lines_[e] && !active_[e];
}

bool Scs::any_pending() const {
  for (int e = 2; e < kExcCount; ++e)
    if (pending(e) && (e < 16 || enabled_[e - 16])) return true;
  return false;
}

int Scs::priority(int e) const {
  if (e == 1) return -3;
  if (e == exc::nmi) return -2;
  if (e == exc::hardfault) return -1;
  return prio_[e];
}

int Scs::group_priority(int p) const {
  if (p < 0) return p;
  const std::uint32_t mask = (0xFFu << (aircr_prigroup_ + 1)) & 0xFFu;
  return static_cast<int>(static_cast<std::uint32_t>(p) & mask);
}

int Scs::execution_priority(std::uint32_t primask, std::uint32_t basepri, std::uint32_t faultmask) const {
  int prio = 256;
  for (int e = 1; e < kExcCount; ++e)
    if (active_[e]) prio = std::min(prio, group_priority(priority(e)));
  if ((basepri & 0xF0) != 0) prio = std::min(prio, group_priority(static_cast<int>(basepri & 0xF0)));
  if (primask & 1) prio = std::min(prio, 0);
  if (faultmask & 1) prio = std::min(prio, -1);
  return prio;
}

int Scs::takeable(int prio) const {
  int best = 0;
  for (int e = 2; e < kExcCount; ++e) {
    if (!pending(e) || (e >= 16 && !enabled_[e - 16])) continue;
    if (best == 0 || priority(e) < priority(best)) best = e;
  }
  return best != 0 && group_priority(priority(best)) < prio ? best : 0;
}

void Scs::activate(int e) {
  active_[e] = true;
  pending_[e] = false;
}

void Scs::deactivate(int e) { active_[e] = false; }

std::uint32_t Scs::icsr_read() const {
  std::uint32_t v = chip_.ipsr();
  int vectpending = 0;
  bool isrpending = false;
  for (int e = 2; e < kExcCount; ++e)
    if (pending(e) && (e < 16 || enabled_[e - 16])) {
      if (vectpending == 0 || priority(e) < priority(vectpending)) vectpending = e;
      if (e >= 16) isrpending = true;
    }
  v |= static_cast<std::uint32_t>(vectpending) << 12;
  if (active_.count() <= 1) v |= 1u << 11;  // RETTOBASE
  if (isrpending) v |= 1u << 22;
  if (pending_[exc::systick]) v |= 1u << 26;
  if (pending_[exc::pendsv]) v |= 1u << 28;
  if (pending_[exc::nmi]) v |= 1u << 31;
  return v;
}

// ---- SysTick ----------------------------------------------------------------------------

std::uint32_t Scs::systick_hz() const {
  const std::uint32_t hclk = chip_.rcc.hclk();
  return (st_ctrl_ & kStClksource) ? hclk : hclk / 8;
}

std::uint32_t Scs::systick_val() const {
  if (!(st_ctrl_ & kStEnable) || st_load_ == 0) return st_val_;
  const std::uint64_t ticks = scale(chip_.now() - st_anchor_, systick_hz());
  if (ticks <= st_val_) return static_cast<std::uint32_t>(st_val_ - ticks);
  const std::uint64_t k = ticks - st_val_ - 1;
  return static_cast<std::uint32_t>(st_load_ - k % (static_cast<std::uint64_t>(st_load_) + 1));
}

void Scs::systick_anchor(std::uint32_t val) {
  st_val_ = val;
  st_anchor_ = chip_.now();
  systick_schedule();
}

// Next transition to 0 (COUNTFLAG, exception): re-anchored there at value 0.
void Scs::systick_schedule() {
  chip_.cancel(st_event_);
  if (!(st_ctrl_ & kStEnable) || st_load_ == 0) return;
  const std::uint64_t zero = st_val_ != 0 ? st_val_ : static_cast<std::uint64_t>(st_load_) + 1;
  st_event_ = chip_.at(st_anchor_ + unscale(zero, systick_hz()), [this](Cycles when) {
    st_event_ = 0;
    st_ctrl_ |= kStCountflag;
    if (st_ctrl_ & kStTickint) set_pending(exc::systick);
    st_val_ = 0;
    st_anchor_ = when;
    systick_schedule();
  });
}

void Scs::clocks_changed() {
  if (st_ctrl_ & kStEnable) systick_anchor(systick_val());
}

// ---- registers ------------------------------------------------------------------------------

std::uint32_t Scs::read(std::uint32_t off, unsigned size) {
  std::uint32_t word = 0;
  const std::uint32_t w = off & ~3u;
  if (w >= 0x400 && w < 0x400 + kIrqCount) {
    for (int i = 0; i < 4; ++i) word |= static_cast<std::uint32_t>(prio_[16 + w - 0x400 + i]) << (8 * i);
  } else if (w >= 0xD18 && w <= 0xD20) {
    for (int i = 0; i < 4; ++i) word |= static_cast<std::uint32_t>(prio_[4 + w - 0xD18 + i]) << (8 * i);
  } else if (w >= 0x100 && w < 0x380) {
    const std::uint32_t idx = (w & 0x7F) / 4;
    if (idx < 2) {
      for (int b = 0; b < 32 && idx * 32 + b < kIrqCount; ++b) {
        const int irq = static_cast<int>(idx * 32) + b;
        bool bit = false;
        switch (w & ~0x7Fu) {
          case 0x100: case 0x180: bit = enabled_[irq]; break;
          case 0x200: case 0x280: bit = pending(16 + irq); break;
          case 0x300: bit = active_[16 + irq]; break;
          default: break;
        }
        if (bit) word |= 1u << b;
      }
    }  // IRQs beyond the 60 implemented: RAZ
  } else {
    switch (w) {
      case 0x004: word = 1; break;  // ICTR: up to 64 interrupt lines
      case 0x010: word = st_ctrl_; st_ctrl_ &= ~kStCountflag; break;
      case 0x014: word = st_load_; break;
      case 0x018: word = systick_val(); break;
      case 0x01C: word = kCalib; break;
      case 0xD00: word = kCpuid; break;
      case 0xD04: word = icsr_read(); break;
      case 0xD08: word = vtor_; break;
      case 0xD0C: word = 0xFA050000u | aircr_prigroup_ << 8; break;
      case 0xD10: word = scr_; break;
      case 0xD14: word = ccr_; break;
      case 0xD24: {
        word = shcsr_ & 0x70000u;
        const std::pair<int, int> bits[] = {{exc::memmanage, 0}, {exc::busfault, 1}, {exc::usagefault, 3},
                                            {exc::svcall, 7}, {exc::debugmon, 8}, {exc::pendsv, 10},
                                            {exc::systick, 11}};
        for (auto [e, b] : bits)
          if (active_[e]) word |= 1u << b;
        break;
      }
      case 0xD28: word = cfsr_; break;
      case 0xD2C: word = hfsr_; break;
      case 0xD30: word = 0; break;  // DFSR
      case 0xD34: word = mmfar_; break;
      case 0xD38: word = bfar_; break;
      case 0xD3C: word = 0; break;  // AFSR
      case 0xDF0: word = 0; break;  // DHCSR: no debugger attached
      case 0xDFC: word = demcr_; break;
      default: return unmodelled_read(off);
    }
  }
  if (size == 4) return word;
  return (word >> (8 * (off & 3))) & (size == 1 ? 0xFFu : 0xFFFFu);
}

void Scs::write(std::uint32_t off, unsigned size, std::uint32_t value) {
  // Priority bytes: byte, half-word or word writes touch only their bytes. 4 bits implemented.
  auto set_prio = [&](int first) {
    for (unsigned i = 0; i < size; ++i) prio_[first + static_cast<int>(i)] = static_cast<std::uint8_t>((value >> (8 * i)) & 0xF0);
    attention();
  };
  if (off >= 0x400 && off + size <= 0x400 + kIrqCount) return set_prio(16 + static_cast<int>(off - 0x400));
  if (off >= 0xD18 && off + size <= 0xD24) return set_prio(4 + static_cast<int>(off - 0xD18));
  if (off >= 0x400 && off < 0x4F0) return;  // beyond the implemented IRQs: WI
  if (size != 4) value <<= 8 * (off & 3);
  const std::uint32_t w = off & ~3u;
  if (w >= 0x100 && w < 0x300) {
    const std::uint32_t idx = (w & 0x7F) / 4;
    if (idx >= 2) return;  // WI
    for (int b = 0; b < 32 && idx * 32 + b < kIrqCount; ++b) {
      if (!((value >> b) & 1)) continue;
      const int irq = static_cast<int>(idx * 32) + b;
      switch (w & ~0x7Fu) {
        case 0x100: enabled_[irq] = true; break;
        case 0x180: enabled_[irq] = false; break;
        case 0x200: pending_[16 + irq] = true; break;
        case 0x280: pending_[16 + irq] = false; break;
        default: break;
      }
    }
    attention();
    return;
  }
  switch (w) {
    case 0x010:
      if ((value & kStEnable) && !(st_ctrl_ & kStEnable)) {
        st_ctrl_ = (st_ctrl_ & kStCountflag) | (value & 7);
        systick_anchor(st_val_);
      } else if (!(value & kStEnable) && (st_ctrl_ & kStEnable)) {
        st_val_ = systick_val();
        st_ctrl_ = (st_ctrl_ & kStCountflag) | (value & 7);
        chip_.cancel(st_event_);
      } else {
        const std::uint32_t v = systick_val();
        st_ctrl_ = (st_ctrl_ & kStCountflag) | (value & 7);
        if (st_ctrl_ & kStEnable) systick_anchor(v);
      }
      break;
    case 0x014:
      if (value > 0xFFFFFF) error("SysTick LOAD " + hex32(value) + " exceeds 24 bits");
      {
        const std::uint32_t v = systick_val();
        st_load_ = value & 0xFFFFFF;
        if (st_ctrl_ & kStEnable) systick_anchor(v);
      }
      break;
    case 0x018:
      st_ctrl_ &= ~kStCountflag;
      systick_anchor(0);
      break;
    case 0x01C: error("write to read-only SysTick CALIB"); break;
    case 0xD04:
      if (value & (1u << 31)) set_pending(exc::nmi);
      if (value & (1u << 28)) set_pending(exc::pendsv);
      if (value & (1u << 27)) pending_[exc::pendsv] = false;
      if (value & (1u << 26)) set_pending(exc::systick);
      if (value & (1u << 25)) pending_[exc::systick] = false;
      break;
    case 0xD08:
      // PM0056 §4.4.4 (STM32F10x): TBLOFF is bits 29:9, bits 8:0 are reserved.
      vtor_ = value & 0x3FFFFE00u;
      if (vtor_ != value) warning("VTOR " + hex32(value) + " is not aligned to 512 bytes: uses " + hex32(vtor_));
      break;
    case 0xD0C:
      if ((value >> 16) != 0x05FA) {
        error("write of " + hex32(value) + " to AIRCR without VECTKEY 0x05FA is ignored by the core");
        break;
      }
      aircr_prigroup_ = (value >> 8) & 7;
      // PM0056 4.4.5: VECTRESET is "Reserved for Debug use [...] you must write 0 to this bit,
      // otherwise behavior is unpredictable" (on silicon it resets the core, not the peripherals).
      if (value & 1)
        error("AIRCR written with VECTRESET (" + hex32(value) +
              "): reserved for debug use, unpredictable from software (PM0056 4.4.5); use SYSRESETREQ");
      if (value & 4) chip_.request_reset(ResetCause::software);       // SYSRESETREQ
      else if (value & 1) chip_.request_reset(ResetCause::software);  // VECTRESET (core only on silicon)
      attention();
      break;
    case 0xD10: scr_ = value & 0x16; break;
    case 0xD14: ccr_ = value & 0x31B; break;
    case 0xD24: shcsr_ = value & 0x70000u; break;
    case 0xD28: cfsr_ &= ~value; break;
    case 0xD2C: hfsr_ &= ~value; break;
    case 0xD30: case 0xD3C: break;  // DFSR, AFSR: write-one-to-clear, nothing recorded
    case 0xD34: mmfar_ = value; break;
    case 0xD38: bfar_ = value; break;
    case 0xDFC: demcr_ = value & 0x010F07F1u; break;
    case 0xF00:
      if ((value & 0x1FF) < static_cast<std::uint32_t>(kIrqCount)) set_pending(16 + static_cast<int>(value & 0x1FF));
      break;
    default: unmodelled_write(off, value); break;
  }
}

// ---- DWT ----------------------------------------------------------------------------------

void Dwt::reset() {
  ctrl_ = 0x40000000;
  cyc_ = 0;
  anchor_ = chip_.now();
}

std::uint32_t Dwt::cyccnt() const {
  if (!(ctrl_ & 1) || !chip_.scs.trace_enabled()) return cyc_;
  return cyc_ + static_cast<std::uint32_t>(scale(chip_.now() - anchor_, chip_.rcc.hclk()));
}

void Dwt::clocks_changed() {
  cyc_ = cyccnt();
  anchor_ = chip_.now();
}

std::uint32_t Dwt::read32(std::uint32_t off) {
  switch (off) {
    case 0x000: return ctrl_;
    case 0x004: return cyccnt();
    default: return unmodelled_read(off);
  }
}

void Dwt::write32(std::uint32_t off, std::uint32_t value) {
  switch (off) {
    case 0x000:
      cyc_ = cyccnt();
      anchor_ = chip_.now();
      ctrl_ = (ctrl_ & 0xF0000000u) | (value & 0x0FFFFFFFu);
      break;
    case 0x004:
      cyc_ = value;
      anchor_ = chip_.now();
      break;
    case 0xFB0: break;  // LAR: the M3's DWT has no lock, writes are harmless
    default: unmodelled_write(off, value); break;
  }
}

}  // namespace bluepill

#include "bluepill/rcc.hpp"

#include <algorithm>

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kHsion = 1u << 0, kHsirdy = 1u << 1, kHseon = 1u << 16, kHserdy = 1u << 17,
                        kCsson = 1u << 19, kPllon = 1u << 24, kPllrdy = 1u << 25;
constexpr std::uint32_t kPllsrcHse = 1u << 16;              // CFGR
constexpr std::uint32_t kCssf = 1u << 7, kCssc = 1u << 23;  // CIR
constexpr std::uint32_t kPllBits = 0x003F0000u;  // PLLSRC, PLLXTPRE, PLLMUL
constexpr std::uint32_t kCsrFlags = 0xFD000000u;  // reset flags (bit 25 reserved)
}  // namespace

void Rcc::reset() {
  cr_ = 0x00000083;
  cfgr_ = cir_ = apb2rstr_ = apb1rstr_ = 0;
  ahbenr_ = 0x14;  // SRAM and FLITF clocks on
  apb2enr_ = apb1enr_ = 0;
  bdcr_ = 0;  // the backup domain is not modelled beyond its register
  csr_lsion_ = 0;
  csr_lsi_forced_ = false;
  lsi_ready_at_ = 0;
  hsi_ready_at_ = 0;  // HSI runs (and is ready) out of reset
  hse_ready_at_ = kNever;
  pll_on_at_ = 0;
}

Cycles Rcc::chip_now_plus_lsi_startup() const { return chip_.now() + us_to_cycles(kLsiStartupUs); }

// What the new clock tree must respect (DS5319 limits, RM0008 3.3.3 flash wait states).
void Rcc::check_clocks() {
  if (sysclk() > 72'000'000) error("SYSCLK " + std::to_string(sysclk()) + " Hz exceeds 72 MHz");
  if (pclk1() > 36'000'000) error("PCLK1 " + std::to_string(pclk1()) + " Hz exceeds 36 MHz");
  const std::uint32_t need = wait_states_needed();
  if (chip_.flash.latency() < need)
    error("SYSCLK " + std::to_string(sysclk()) + " Hz needs FLASH_ACR.LATENCY >= " + std::to_string(need) +
          " (it is " + std::to_string(chip_.flash.latency()) + "): the CPU would read wrong instructions");
  // RM0008 3.3.3: "The prefetch buffer must be kept on when using a prescaler different from 1 on
  // the AHB clock"; the half cycle access only with SYSCLK of 8 MHz from HSI or HSE, undivided.
  if (hclk() != sysclk() && !chip_.flash.prefetch())
    error("AHB prescaler (HCLK " + std::to_string(hclk()) + " Hz, SYSCLK " + std::to_string(sysclk()) +
          " Hz) with the flash prefetch buffer off: RM0008 3.3.3 says keep it on with an AHB prescaler");
  if (chip_.flash.half_cycle() && !half_cycle_allowed())
    error("FLASH_ACR.HLFCYA set while SYSCLK runs at " + std::to_string(sysclk()) +
          " Hz from the PLL or with an AHB prescaler: half cycle access is for an undivided 8 MHz HSI/HSE only "
          "(RM0008 3.3.3)");
}

void Rcc::settle() {
  const Cycles t = chip_.now();
  if ((cr_ & kHsion) && t >= hsi_ready_at_) cr_ |= kHsirdy;
  if ((cr_ & kHseon) && t >= hse_ready_at_) cr_ |= kHserdy;
  const bool on_hse = (cfgr_ & kPllsrcHse) != 0;
  if (!(cr_ & (on_hse ? kHserdy : kHsirdy))) cr_ &= ~kPllrdy;  // its source stopped: unlocked
  if ((cr_ & kPllon) && !(cr_ & kPllrdy) && chip_.config().pll_locks) {
    // The PLL locks kPllLockUs after both it and its source (HSI/2 or HSE, PLLSRC) run.
    const Cycles source = (cr_ & (on_hse ? kHseon : kHsion)) ? (on_hse ? hse_ready_at_ : hsi_ready_at_) : kNever;
    if (source != kNever && t >= std::max(source, pll_on_at_) + us_to_cycles(kPllLockUs)) cr_ |= kPllrdy;
  }
  const std::uint32_t old_hclk = hclk();
  if (complete_switch()) {
    check_clocks();
    if (hclk() != old_hclk) chip_.clocks_changed();
  }
}

// RM0008 7.2.6: a SW that selects a source not yet ready takes effect once it is.
bool Rcc::complete_switch() {
  const std::uint32_t sw = cfgr_ & 3;
  const bool ready = sw == 0 ? (cr_ & kHsirdy) : sw == 1 ? (cr_ & kHserdy) : sw == 2 ? (cr_ & kPllrdy) : false;
  if (!ready || sw == ((cfgr_ >> 2) & 3)) return false;
  cfgr_ = (cfgr_ & ~0xCu) | sw << 2;
  return true;
}

void Rcc::hse_failure() {
  settle();
  const bool was_ready = (cr_ & kHserdy) != 0;
  cr_ &= ~kHserdy;
  hse_ready_at_ = kNever;
  if (!was_ready) return;
  const std::uint32_t sws = (cfgr_ >> 2) & 3;
  const bool pll_on_hse = (cr_ & kPllon) && (cfgr_ & kPllsrcHse);
  const bool sysclk_on_hse = sws == 1 || (sws == 2 && (cfgr_ & kPllsrcHse));
  if (cr_ & kCsson) {
    cr_ &= ~(kHseon | kCsson);
    cr_ |= kHsion | kHsirdy;  // forced on by hardware (RM0008 7.3.1, HSION)
    if (pll_on_hse && sws == 2) cr_ &= ~(kPllon | kPllrdy);  // only a PLL that clocked the system
    if (sysclk_on_hse) cfgr_ &= ~0xFu;  // SW and SWS: HSI
    cir_ |= kCssf;
    chip_.report(Severity::info, "HSE failed: the clock security system switched SYSCLK to HSI and raised the NMI");
    chip_.scs.set_pending(exc::nmi);
    chip_.clocks_changed();
    return;
  }
  if (pll_on_hse) cr_ &= ~kPllrdy;
  if (sysclk_on_hse) {
    chip_.report(Severity::warning, "HSE failed without the clock security system: the system clock stopped, the CPU halts");
    chip_.stall_until(kNever);
  }
}

std::uint32_t Rcc::pll_out() const {
  std::uint32_t mul = ((cfgr_ >> 18) & 0xF) + 2;
  if (mul > 16) mul = 16;
  const std::uint32_t in = (cfgr_ & (1u << 16)) ? ((cfgr_ & (1u << 17)) ? kHse / 2 : kHse) : hsi() / 2;
  return in * mul;
}

std::uint32_t Rcc::sysclk() const {
  switch ((cfgr_ >> 2) & 3) {
    case 1: return kHse;
    case 2: return pll_out();
    default: return hsi();
  }
}

std::uint32_t Rcc::hsi() const {
  return static_cast<std::uint32_t>(kHsi * (1.0 + chip_.config().hsi_error) + 0.5);
}

std::uint32_t Rcc::wait_states_needed() const {
  return sysclk() > 48'000'000 ? 2 : sysclk() > 24'000'000 ? 1 : 0;
}

std::uint32_t Rcc::hclk() const {
  const std::uint32_t hpre = (cfgr_ >> 4) & 0xF;
  static constexpr std::uint32_t div[8] = {2, 4, 8, 16, 64, 128, 256, 512};
  return (hpre & 8) ? sysclk() / div[hpre & 7] : sysclk();
}

std::uint32_t Rcc::pclk1() const {
  const std::uint32_t p = (cfgr_ >> 8) & 7;
  return (p & 4) ? hclk() >> ((p & 3) + 1) : hclk();
}

std::uint32_t Rcc::pclk2() const {
  const std::uint32_t p = (cfgr_ >> 11) & 7;
  return (p & 4) ? hclk() >> ((p & 3) + 1) : hclk();
}

std::uint32_t Rcc::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: settle(); return cr_;
    case 0x04: settle(); return cfgr_;
    case 0x08: return cir_;
    case 0x0C: return apb2rstr_;
    case 0x10: return apb1rstr_;
    case 0x14: return ahbenr_;
    case 0x18: return apb2enr_;
    case 0x1C: return apb1enr_;
    case 0x20: return bdcr_;
    case 0x24: {
      // DS5319: the LSI takes up to 85 us (tsu(LSI)) from LSION to LSIRDY.
      const bool lsi = (csr_lsion_ || csr_lsi_forced_) && chip_.now() >= lsi_ready_at_;
      return (chip_.reset_flags() & kCsrFlags) | csr_lsion_ | (lsi ? 2u : 0u);
    }
    default: return unmodelled_read(off);
  }
}

void Rcc::write32(std::uint32_t off, std::uint32_t v) {
  switch (off) {
    case 0x00: {
      // HSITRIM 7:3, HSION, HSEON, HSEBYP, CSSON, PLLON. A source switched on starts now and is
      // ready after its start-up time (settle()); one switched off loses its ready bit at once.
      if ((cr_ & kPllon) && (cfgr_ >> 2 & 3) == 2 && !(v & kPllon)) {
        error("PLL switched off while it clocks the system");
        break;
      }
      settle();
      // RM0008 7.3.1: HSION and HSEON cannot be reset while their oscillator clocks the system,
      // directly or through the PLL.
      const std::uint32_t sws = (cfgr_ >> 2) & 3;
      const bool pll_on_hse = (cfgr_ & kPllsrcHse) != 0;
      std::uint32_t keep = 0;
      if (sws == 0 || (sws == 2 && !pll_on_hse)) keep |= kHsion;
      if (sws == 1 || (sws == 2 && pll_on_hse)) keep |= kHseon;
      const std::uint32_t rise = v & ~cr_;
      const std::uint32_t ready = cr_ & (kHsirdy | kHserdy | kPllrdy);
      cr_ = (v & (kHsion | 0xF8u | kHseon | (1u << 18) | (1u << 19) | kPllon)) | (cr_ & keep);
      if (cr_ & kHsion) cr_ |= ready & kHsirdy;
      if (cr_ & kHseon) cr_ |= ready & kHserdy;
      if (cr_ & kPllon) cr_ |= ready & kPllrdy;
      if (rise & kHsion) hsi_ready_at_ = chip_.now() + us_to_cycles(kHsiStartupUs);
      if (rise & kHseon)
        hse_ready_at_ = chip_.config().hse && !chip_.board().hse_failed
                            ? chip_.now() + us_to_cycles(chip_.config().hse_startup_us)
                            : kNever;
      if (rise & kPllon) {
        pll_on_at_ = chip_.now();
        // DS5319, PLL characteristics: fPLL_OUT 16..72 MHz.
        const std::uint32_t out = pll_out();
        if (out < 16'000'000 || out > 72'000'000)
          error("PLL switched on for " + std::to_string(out) + " Hz (CFGR " + hex32(cfgr_ & kPllBits) +
                "): DS5319 specifies its output at 16..72 MHz");
      }
      settle();
      break;
    }
    case 0x04: {
      // PLLSRC, PLLXTPRE and PLLMUL "can be written only when the PLL is disabled" (RM0008 7.3.2).
      if ((cr_ & kPllon) && ((v ^ cfgr_) & kPllBits)) {
        chip_.report(Severity::info, "RCC_CFGR PLL bits written while the PLL is on: kept (" + hex32(cfgr_ & kPllBits) + ")");
        v = (v & ~kPllBits) | (cfgr_ & kPllBits);
      }
      settle();  // a switch still pending completes first
      if ((v & 3) == 3) error("CFGR.SW=11 is not allowed");
      const std::uint32_t old_hclk = hclk();
      cfgr_ = (v & ~0xCu) | (cfgr_ & 0xCu);  // SWS follows once the source is ready
      complete_switch();
      check_clocks();
      if (hclk() != old_hclk) chip_.clocks_changed();
      break;
    }
    case 0x08:  // interrupt enables; CSSC clears CSSF (the ready flags are not modelled)
      cir_ = (cir_ & kCssf) | (v & 0x00001F00u);
      if (v & kCssc) cir_ &= ~kCssf;
      break;
    case 0x0C: {
      // Peripheral resets: a peripheral is reset when its bit is written 1 and held in reset (the bus
      // refuses it, Peripheral::held_in_reset) until the bit is cleared.
      const std::uint32_t rise = v & ~apb2rstr_;
      apb2rstr_ = v;
      if (rise & (1u << 0)) chip_.afio.reset();
      if (rise & (1u << 2)) chip_.gpioa.reset();
      if (rise & (1u << 3)) chip_.gpiob.reset();
      if (rise & (1u << 4)) chip_.gpioc.reset();
      if (rise & (1u << 12)) chip_.spi1.reset();
      if (rise & (1u << 14)) chip_.usart1.reset();
      if (rise & ~((1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 12) | (1u << 14)))
        error("APB2RSTR resets an unmodelled peripheral: " + hex32(rise));
      break;
    }
    case 0x10: {
      const std::uint32_t rise = v & ~apb1rstr_;
      apb1rstr_ = v;
      if (rise & (1u << 28)) chip_.pwr.reset();
      if (rise & ~(1u << 28)) error("APB1RSTR resets an unmodelled peripheral: " + hex32(rise));
      break;
    }
    case 0x14: ahbenr_ = v & 0x557u; break;
    case 0x18: apb2enr_ = v & 0x0038FFFDu; break;
    case 0x1C: apb1enr_ = v & 0x3AFEC9FFu; break;
    case 0x20: bdcr_ = (v & 0x00018305u) | ((v & 1u) << 1); break;  // LSERDY follows LSEON
    case 0x24:
      if ((v & 1u) && !csr_lsion_ && !csr_lsi_forced_) lsi_ready_at_ = chip_now_plus_lsi_startup();
      csr_lsion_ = v & 1u;
      if (v & (1u << 24)) chip_.reset_flags() = 0;  // RMVF
      break;
    default: unmodelled_write(off, v); break;
  }
}

}  // namespace bluepill

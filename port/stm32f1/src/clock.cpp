// RM0008 §7.2: after reset the core runs on the 8 MHz HSI. The PLL may only be reconfigured while
// it is off, and it may only be turned off while it is not the system clock.
#include "stm32f1/clock.hpp"

#include "reg.hpp"

namespace stm32f1::clock {
namespace {

using namespace reg;

// HSE start-up takes ~2 ms on a Blue Pill crystal; this bound is ~50 ms at 8 MHz.
constexpr std::uint32_t kReadyLoops = 100'000;

// A crystal failure for the start-ups that follow, kept where neither image's start-up clears it
// (.noinit, at the start of SRAM in every image: sections.ld): it survives system resets and is
// lost, SRAM being random, when the power goes. A whole word, so that power-on noise is no mark.
[[gnu::section(".noinit")]] std::uint32_t hse_failed_mark;
constexpr std::uint32_t kHseFailed = 0x4645'5348;  // "HSEF" in memory

bool wait_set(R& r, std::uint32_t mask, std::uint32_t value) {
  for (std::uint32_t i = 0; i < kReadyLoops; ++i)
    if ((r & mask) == value) return true;
  return false;
}

}  // namespace

// RM0008 §7.3.2: a new SW takes effect when SWS says so, and the PLL bits of CFGR can only be
// written while the PLL is off. So: switch first with the prescalers untouched (APB1 must not see
// 72 MHz), then stop the PLL and HSE, then reset the prescalers and the PLL set-up, and lower the
// flash wait states last, only once the core really runs on HSI.
bool reset() {
  Rcc& rcc = RCC();
  rcc.CR |= rcc_cr::HSION;
  wait_set(rcc.CR, rcc_cr::HSIRDY, rcc_cr::HSIRDY);
  rcc.CFGR = (rcc.CFGR & ~rcc_cfgr::SW_MASK) | rcc_cfgr::SW_HSI;
  if (!wait_set(rcc.CFGR, rcc_cfgr::SWS_MASK, rcc_cfgr::SWS_HSI)) return false;
  rcc.CR &= ~(rcc_cr::PLLON | rcc_cr::HSEON | rcc_cr::CSSON);
  wait_set(rcc.CR, rcc_cr::PLLRDY, 0);
  rcc.CFGR = rcc_cfgr::SW_HSI;      // prescalers /1, PLL source and multiplier cleared
  FLASH().ACR = flash_acr::PRFTBE;  // zero wait states up to 24 MHz
  return true;
}

Tree init() {
  reset();
  Rcc& rcc = RCC();
  // Clock security (RM0008 §7.2.7), armed by hardware as soon as HSE is ready: should the
  // crystal stop, the core moves to HSI and takes the NMI, whose handler (startup.cpp) resets the
  // chip; the start-ups that follow skip the crystal (note_fault) until the power is cut.
  // Without it a dead crystal would stop the CPU.
  bool hse = false;
  if (hse_failed_mark != kHseFailed) {
    rcc.CR |= rcc_cr::HSEON | rcc_cr::CSSON;
    hse = wait_set(rcc.CR, rcc_cr::HSERDY, rcc_cr::HSERDY);
  }
  // No crystal: the PLL runs from HSI / 2 x 16. 64 MHz gives USART1 115200 baud within 0.1 %
  // (BRR 556), where the HSI's own 8 MHz would be 0.6 % off (BRR 69) on top of the HSI's
  // tolerance (up to +2.5 % hot): together past what the far end's receiver takes.
  if (!hse) rcc.CR &= ~(rcc_cr::HSEON | rcc_cr::CSSON);  // a crystal starting late: not ours
  FLASH().ACR = flash_acr::PRFTBE | flash_acr::LATENCY_2;  // before raising the clock
  rcc.CFGR = (hse ? rcc_cfgr::PLLSRC_HSE | rcc_cfgr::PLLMUL_X9 : rcc_cfgr::PLLMUL_X16) |
             rcc_cfgr::PPRE1_DIV2 | rcc_cfgr::ADCPRE_DIV6;
  rcc.CR |= rcc_cr::PLLON;
  if (wait_set(rcc.CR, rcc_cr::PLLRDY, rcc_cr::PLLRDY)) {
    rcc.CFGR = (rcc.CFGR & ~rcc_cfgr::SW_MASK) | rcc_cfgr::SW_PLL;
    const std::uint32_t hz = hse ? 72'000'000 : 64'000'000;
    if (wait_set(rcc.CFGR, rcc_cfgr::SWS_MASK, rcc_cfgr::SWS_PLL)) return {hz, hz / 2, hz, hse};
  }
  reset();  // no PLL lock: run everything at 8 MHz
  // Field by field: as one aggregate the value is copied from a 16-byte constant in flash.
  Tree hsi;
  hsi.hclk = hsi.pclk1 = hsi.pclk2 = 8'000'000;
  hsi.hse = false;
  return hsi;
}

void note_fault() {
  if (RCC().CIR & rcc_cir::CSSF) hse_failed_mark = kHseFailed;
}

}  // namespace stm32f1::clock

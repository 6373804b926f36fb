// System clock: HSE 8 MHz -> PLL x9 -> 72 MHz (APB1 /2 = 36 MHz, APB2 72 MHz, flash 2 wait
// states); if the crystal does not start within a bounded wait, HSI 8 MHz / 2 -> PLL x16 ->
// 64 MHz (APB1 32 MHz), or the HSI's 8 MHz for everything should that PLL not lock either. On
// the crystal the clock security system is on: a crystal that fails later raises the NMI, which
// resets the chip (Default_Handler), and the start-ups that follow run on HSI without trying the
// crystal again until the power is cut: one that failed once (a cracked or marginal crystal, one
// that stops when cold) would start, fail again and reset the device over and over.
#pragma once

#include <cstdint>

namespace stm32f1::clock {

struct Tree {
  std::uint32_t hclk;   // core, AHB, SysTick
  std::uint32_t pclk1;  // APB1
  std::uint32_t pclk2;  // APB2: USART1, SPI1
  bool hse;             // false: running on the HSI fallback
};

// Safe to call whatever the current clock (e.g. already on the PLL, set by a bootloader).
Tree init();

// Back to the reset state: SYSCLK on HSI 8 MHz, PLL, HSE and CSS off, prescalers /1, no flash wait
// states; what an application started by the bootloader expects to find (a CubeMX/HAL start-up
// cannot reconfigure a PLL that still drives the core). False if the switch to HSI did not happen.
bool reset();

// Called by the handler of unexpected exceptions (startup.cpp) before it resets the chip: if the
// clock security system raised the NMI, init() leaves the crystal alone until the power is cut.
void note_fault();

}  // namespace stm32f1::clock

// The clock sources' start-up times, measured with the DWT cycle counter from the 8 MHz HSI, and
// the rules around them: SWS follows SW to a source only once it is ready, and an oscillator
// that clocks the system cannot be switched off.
#include "fw.hpp"

static uint32_t cycles_until_ready(uint32_t ready_bit) {
  const uint32_t t0 = DWT_CYCCNT;
  while (!(RCC_CR & ready_bit)) {
  }
  return DWT_CYCCNT - t0;
}

int main() {
  DEMCR |= 1u << 24;
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1;
  RCC_CR &= ~1u;  // HSION off while the HSI clocks the system: kept on
  RESULT(0) = RCC_CR & 3u;

  RCC_CR |= 1u << 16;  // HSE on
  RESULT(1) = RCC_CR & (1u << 17);
  RCC_CFGR = 1u;  // SW = HSE before it is ready
  RESULT(2) = RCC_CFGR & 0xFu;
  RESULT(3) = cycles_until_ready(1u << 17);
  RESULT(8) = RCC_CFGR & 0xFu;  // the switch to HSE completed once HSE was ready

  FLASH_ACR = 0x12;
  RCC_CFGR = (7u << 18) | (1u << 16) | (4u << 8);  // PLL = HSE x 9, APB1 = /2, SW = HSI
  RCC_CR |= 1u << 24;
  RESULT(4) = cycles_until_ready(1u << 25);
  RCC_CFGR |= 2u;
  RESULT(5) = RCC_CFGR & 0xFu;  // SW = SWS = PLL

  RCC_CR &= ~1u;  // now the HSI may stop
  RESULT(6) = RCC_CR & 3u;
  RCC_CR |= 1u;
  RESULT(7) = cycles_until_ready(1u << 1);  // at 72 MHz
  return 0;
}

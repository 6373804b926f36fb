// RM0008 3.3.3: SYSCLK above 48 MHz needs FLASH_ACR.LATENCY = 2. Switch to the 72 MHz PLL with
// LATENCY left at 0: the emulator refuses it.
#include "fw.hpp"

int main() {
  RCC_CR |= 1u << 16;
  while (!(RCC_CR & (1u << 17))) {
  }
  FLASH_ACR = 0x10;  // prefetch on, 0 wait states: too few for 72 MHz
  RCC_CFGR = (7u << 18) | (1u << 16) | (4u << 8);
  RCC_CR |= 1u << 24;
  while (!(RCC_CR & (1u << 25))) {
  }
  RCC_CFGR = (RCC_CFGR & ~3u) | 2u;
  while (((RCC_CFGR >> 2) & 3u) != 2u) {
  }
  return 0;
}

// RM0008 9.2.5 (GPIOx_BSRR): "If both BSx and BRx are set, BSx has priority."
#include "fw.hpp"

int main() {
  RCC_APB2ENR |= 1u << 4;
  GPIOC_CRH = (GPIOC_CRH & ~(0xFu << 20)) | (0x2u << 20);
  GPIOC_BSRR = 1u << 29;                // PC13 low
  GPIOC_BSRR = (1u << 13) | (1u << 29);  // set and reset PC13 at once: set wins
  RESULT(0) = GPIOC_ODR;
  return 0;
}

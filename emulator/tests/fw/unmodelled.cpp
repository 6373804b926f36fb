// Touches TIM2, which the board does not model: must be reported.
#include "fw.hpp"

int main() {
  RCC_APB1ENR |= 1;
  REG(0x40000000) = 1;
  return 0;
}

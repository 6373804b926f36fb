// RM0008 9.2: "The peripheral registers have to be accessed as 32-bit words" (GPIO). A byte store
// to GPIOC_BSRR meant to set PC13 (bit 13: byte 1, value 0x20).
#include "fw.hpp"

int main() {
  RCC_APB2ENR |= 1u << 4;
  GPIOC_CRH = (GPIOC_CRH & ~(0xFu << 20)) | (0x2u << 20);
  GPIOC_BSRR = 1u << 29;  // PC13 low
  *reinterpret_cast<volatile uint8_t*>(0x40011011) = 0x20;  // byte write: "set PC13"
  RESULT(0) = GPIOC_ODR;
  return 0;
}

// The CRC unit over three words, and its reset.
#include "fw.hpp"

int main() {
  RCC_AHBENR |= 1u << 6;
  CRC_CR = 1;
  RESULT(0) = CRC_DR;  // 0xFFFFFFFF after reset
  CRC_DR = 0x31323334;
  CRC_DR = 0x35363738;
  CRC_DR = 0xDEADBEEF;
  RESULT(1) = CRC_DR;
  CRC_CR = 1;
  CRC_DR = 0x12345678;
  RESULT(2) = CRC_DR;
  return 0;
}

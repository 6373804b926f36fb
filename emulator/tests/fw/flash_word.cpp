// Illegal: a 32-bit store into flash with PG set (the FPEC takes half-words only).
#include "fw.hpp"

int main() {
  FLASH_KEYR = 0x45670123;
  FLASH_KEYR = 0xCDEF89AB;
  FLASH_CR = 1;
  REG(0x0800F000) = 0x12345678;
  return 0;
}

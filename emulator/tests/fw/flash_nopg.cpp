// Illegal: a store into flash without FLASH_CR.PG.
#include "fw.hpp"

int main() {
  FLASH_KEYR = 0x45670123;
  FLASH_KEYR = 0xCDEF89AB;
  REG16(0x0800F000) = 0x1234;
  return 0;
}

// Erase and program a write-protected page: WRPRTERR, nothing changes.
#include "fw.hpp"

int main() {
  FLASH_KEYR = 0x45670123;
  FLASH_KEYR = 0xCDEF89AB;
  FLASH_CR = 2;
  FLASH_AR = 0x0800F000;
  FLASH_CR = 0x42;
  while (FLASH_SR & 1) {
  }
  RESULT(0) = FLASH_SR;
  FLASH_SR = 0x34;
  FLASH_CR = 1;
  REG16(0x0800F002) = 0;
  RESULT(1) = FLASH_SR;
  RESULT(2) = REG(0x40022020);  // WRPR
  return 0;
}

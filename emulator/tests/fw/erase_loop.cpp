// Programs page 60 to zeros, then erases it, then programs a counter into page 61 forever:
// the host cuts the power in the middle of these operations.
#include "fw.hpp"

static void wait() {
  while (FLASH_SR & 1) {
  }
}

int main() {
  FLASH_KEYR = 0x45670123;
  FLASH_KEYR = 0xCDEF89AB;
  const uint32_t page = 0x0800F000;
  if (REG(page + 1020) != 0) {  // first run: fill page 60 with zeros
    FLASH_CR = 1;
    for (uint32_t a = page; a < page + 1024; a += 2) {
      REG16(a) = 0;
      wait();
    }
  }
  RESULT(0) = 1;  // zeros done
  FLASH_CR = 2;
  FLASH_AR = page;
  FLASH_CR = 0x42;
  wait();
  RESULT(0) = 2;  // erase done
  FLASH_CR = 1;
  for (uint32_t a = page + 1024; a < page + 2048; a += 2) {
    if (REG16(a) != 0xFFFF) continue;
    REG16(a) = 0x0000;
    wait();
  }
  FLASH_CR = 0x80;
  return 0;
}

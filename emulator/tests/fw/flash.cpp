// FPEC rules: lock/unlock, page erase, half-word program, PGERR, 0x0000 over anything, timings
// measured with the DWT cycle counter (the CPU stalls while it executes from flash).
#include "fw.hpp"

static void unlock() {
  FLASH_KEYR = 0x45670123;
  FLASH_KEYR = 0xCDEF89AB;
}

int main() {
  clock_72mhz();
  DEMCR |= 1u << 24;
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1;
  const uint32_t page = 0x0800F000;  // page 60
  RESULT(0) = FLASH_CR;              // locked: 0x80
  unlock();
  RESULT(1) = FLASH_CR;  // 0
  FLASH_CR = 2;          // PER
  FLASH_AR = page;
  uint32_t t0 = DWT_CYCCNT;
  FLASH_CR = 2 | 0x40;  // PER | STRT
  while (FLASH_SR & 1) {
  }
  RESULT(2) = DWT_CYCCNT - t0;  // erase time
  RESULT(3) = FLASH_SR;         // EOP
  FLASH_SR = 0x20;
  RESULT(4) = REG(page);
  FLASH_CR = 1;  // PG
  t0 = DWT_CYCCNT;
  REG16(page) = 0x1234;
  while (FLASH_SR & 1) {
  }
  RESULT(5) = DWT_CYCCNT - t0;  // program time
  RESULT(6) = REG16(page);
  REG16(page + 2) = 0xBEEF;
  while (FLASH_SR & 1) {
  }
  REG16(page) = 0x5678;  // not erased: PGERR, nothing written
  RESULT(7) = FLASH_SR;
  FLASH_SR = 0x24;
  RESULT(8) = REG16(page);
  REG16(page) = 0x0000;  // 0x0000 may be written over anything
  while (FLASH_SR & 1) {
  }
  RESULT(9) = REG(page);
  FLASH_CR = 0x80;  // lock
  RESULT(10) = FLASH_CR;
  FLASH_CR = 1;  // ignored while locked (reported)
  RESULT(11) = FLASH_CR;
  return 0;
}

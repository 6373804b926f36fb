// PM0056 2.2.5 / 4.4.x: LDRD at an address that is not word-aligned always takes a UsageFault
// (escalated to HardFault: SHCSR.USGFAULTENA is clear), whatever CCR.UNALIGN_TRP says.
#include "fault_record.hpp"

int main() {
  RESULT(0) = 0;
  RESULT(1) = 0;
  REG(0x20001000) = 0x11223344;
  REG(0x20001004) = 0x55667788;
  REG(0x20001008) = 0x99AABBCC;
  uint32_t lo, hi;
  const uint32_t p = 0x20001002;  // half-word aligned only
  __asm volatile("ldrd %0, %1, [%2]" : "=r"(lo), "=r"(hi) : "r"(p) : "memory");
  RESULT(0) = lo;  // reached only if the emulator let it through
  RESULT(2) = hi;
  return 0;
}

// PM0056 2.2.5: an LDM at an address that is not word-aligned (what GCC may emit for a struct
// copied through a misaligned pointer) always takes a UsageFault, whatever CCR.UNALIGN_TRP says.
#include "fault_record.hpp"

int main() {
  RESULT(0) = 0;
  RESULT(1) = 0;
  uint32_t a, b;
  const uint32_t p = 0x20001001;
  __asm volatile("mov r3, %2\n ldmia r3, {r0, r1}\n mov %0, r0\n mov %1, r1" : "=r"(a), "=r"(b) : "r"(p) : "r0", "r1", "r3", "memory");
  RESULT(0) = a | 1;
  RESULT(2) = b;
  return 0;
}

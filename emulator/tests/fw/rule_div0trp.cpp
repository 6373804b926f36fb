// PM0056 4.4.7: with CCR.DIV_0_TRP set, UDIV/SDIV by zero takes a UsageFault (HardFault here:
// SHCSR.USGFAULTENA clear) instead of giving 0.
#include "fault_record.hpp"

int main() {
  RESULT(0) = 0;
  RESULT(1) = 0;
  REG(0xE000ED14) = (1u << 9) | (1u << 4);  // STKALIGN, DIV_0_TRP
  __asm volatile("dsb\n isb");
  uint32_t q;
  const uint32_t n = 10, d = 0;
  __asm volatile("udiv %0, %1, %2" : "=r"(q) : "r"(n), "r"(d));
  RESULT(0) = q | 0x100;  // reached only without the trap
  return 0;
}

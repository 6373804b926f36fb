// with SHCSR.USGFAULTENA set, an unaligned LDRD takes the UsageFault (vector 6, here
// start.S's default_handler: BKPT 0xEE), not HardFault, and CFSR.UNALIGNED (bit 24) is set
// (PM0056 4.4.9/4.4.15). Lenient mode only. The HardFault handler records CFSR and HFSR.
#include "fault_record.hpp"

int main() {
  RESULT(0) = 0;
  RESULT(1) = 0;
  REG(0xE000ED24) |= 1u << 18;  // SHCSR.USGFAULTENA
  __asm volatile("dsb\n isb");
  uint32_t lo, hi;
  const uint32_t p = 0x20001002;
  __asm volatile("ldrd %0, %1, [%2]" : "=r"(lo), "=r"(hi) : "r"(p) : "memory");
  RESULT(0) = lo ^ hi;
  return 0;
}

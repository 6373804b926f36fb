// LDMDB Rn with Rn 2 mod 4: address Rn - 8 is unaligned (ARMv7-M A3.2.1).
// Must stop the board with an error (strict); lenient, the HardFault handler stores the stacked
// PC in RESULT(3) and the faulting instruction's address in RESULT(4) for comparison.
#include "fw.hpp"

extern "C" __attribute__((naked)) void hardfault_handler() {
  __asm volatile("mrs r0, msp\n ldr r0, [r0, #24]\n ldr r1, =0x2000400C\n str r0, [r1]\n movs r0, #0xFA\n str r0, [r1, #-8]\n bkpt 0x02\n .ltorg");
}

int main() {
  RESULT(0) = 0;
  RESULT(1) = 0;
  uint32_t at = 0;
  __asm volatile(
      "ldr r0, =0x20002000\n"
      "adds r0, #10\n adr %0, 1f\n 1: ldmdb r0, {r1, r2}\n"
      : "=r"(at) : : "r0", "r1", "r2", "r3", "memory");
  RESULT(4) = at;
  RESULT(0) = 0x600D;  // reached only if the emulator let it through
  return 0;
}

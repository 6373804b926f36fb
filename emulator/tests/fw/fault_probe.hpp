// A test program that runs one instruction the silicon faults on (the rule_*.cpp that use
// FAULT_PROBE). Strict, the board stops with an error at it; lenient, the HardFault handler stores
// the stacked PC in RESULT(3), sets RESULT(1) = 0xFA and stops with BKPT 2. RESULT(4) holds the
// faulting instruction's address, stored just before it runs; RESULT(0) = 0x600D only if it ran.
#pragma once
#include "fw.hpp"

extern "C" __attribute__((naked)) void hardfault_handler() {
  __asm volatile("mrs r0, msp\n ldr r0, [r0, #24]\n ldr r1, =0x2000400C\n str r0, [r1]\n movs r0, #0xFA\n str r0, [r1, #-8]\n bkpt 0x02\n .ltorg");
}

// `setup` starts with r0 = 0x20002000 (SRAM) and may use r0-r3; `insn` is the faulting one.
#define FAULT_PROBE(setup, insn)                                                         \
  int main() {                                                                           \
    RESULT(0) = 0;                                                                       \
    RESULT(1) = 0;                                                                       \
    __asm volatile("ldr r0, =0x20002000\n" setup "\n adr r12, 1f\n str r12, [%0]\n 1: " insn "\n" \
                   : : "r"(&RESULT(4)) : "r0", "r1", "r2", "r3", "r12", "memory");        \
    RESULT(0) = 0x600D; /* reached only if the emulator let it through */                \
    return 0;                                                                            \
  }

// The HardFault handler of the test programs that run one faulting instruction without
// FAULT_PROBE: RESULT(1) = 0xFA, CFSR in RESULT(3), HFSR in RESULT(4), then BKPT 2.
#pragma once
#include "fw.hpp"

extern "C" void hardfault_handler() {
  RESULT(1) = 0xFA;
  RESULT(3) = REG(0xE000ED28);  // CFSR: UNALIGNED (bit 24), DIVBYZERO (bit 25)
  RESULT(4) = REG(0xE000ED2C);  // HFSR: FORCED (bit 30), a UsageFault escalated
  __asm volatile("bkpt 0x02");
}

// SDIV by zero with CCR.DIV_0_TRP (PM0056 4.4.7).
#include "fault_probe.hpp"

FAULT_PROBE("ldr r1, =0xE000ED14\n ldr r2, [r1]\n orr r2, r2, #0x10\n str r2, [r1]\n dsb\n isb\n movs r1, #0\n movs r2, #7", "sdiv r3, r2, r1")

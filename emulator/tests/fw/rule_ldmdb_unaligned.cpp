// LDMDB Rn with Rn 2 mod 4: address Rn - 8 is unaligned (ARMv7-M A3.2.1).
#include "fault_probe.hpp"

FAULT_PROBE("adds r0, #10", "ldmdb r0, {r1, r2}")

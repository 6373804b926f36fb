// STRD pre-index with writeback, Rn 2 mod 4 (ARMv7-M A7.7.163, A3.2.1).
#include "fault_probe.hpp"

FAULT_PROBE("adds r0, #2", "strd r2, r3, [r0, #-8]!")

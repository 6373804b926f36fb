// LDREX at 2 mod 4 (ARMv7-M A3.2.1: always faults).
#include "fault_probe.hpp"

FAULT_PROBE("adds r0, #2", "ldrex r2, [r0]")

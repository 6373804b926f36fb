// LDREXH at an odd address: always faults (ARMv7-M A3.2.1).
#include "fault_probe.hpp"

FAULT_PROBE("adds r0, #1", "ldrexh r2, [r0]")

// 16-bit STMIA r0! with r0 2 mod 4.
#include "fault_probe.hpp"

FAULT_PROBE("adds r0, #2", "stmia r0!, {r1, r2}")

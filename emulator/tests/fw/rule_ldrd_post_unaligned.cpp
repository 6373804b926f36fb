// LDRD post-index, Rn 2 mod 4 (address = Rn).
#include "fault_probe.hpp"

FAULT_PROBE("adds r0, #2", "ldrd r2, r3, [r0], #8")

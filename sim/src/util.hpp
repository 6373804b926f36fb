// Small helpers shared by the simulated parts (private to ota_sim).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace sim::detail {

inline std::string hex(std::uint32_t v, int digits = 8) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*X", digits, static_cast<unsigned>(v));
  return buf;
}

}  // namespace sim::detail

// Shared helpers of the board tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "bluepill/board.hpp"

namespace bptest {

// What fw.hpp's clock_72mhz() waits for at the default Config: the crystal's start-up (2 ms) and
// the PLL's lock (0.2 ms).
inline constexpr double kClockStartUs = 2'000 + 200;

inline std::string fw(const std::string& name) { return std::string(BLUEPILL_TEST_FW) + "/" + name + ".elf"; }

// A factory-fresh board with one test program.
inline std::unique_ptr<bluepill::Board> board_with(const std::string& program, bluepill::Config cfg = {}) {
  auto b = std::make_unique<bluepill::Board>(cfg);
  b->load_image(fw(program));
  b->power_on();
  return b;
}

inline std::uint32_t result(const bluepill::Board& b, int i) {
  std::uint32_t v = 0;
  EXPECT_TRUE(b.read_memory(0x20004000 + 4 * static_cast<std::uint32_t>(i), &v, 4));
  return v;
}

// Runs to main()'s return (bkpt 0). Fails the test on anything else.
inline void run_to_end(bluepill::Board& b, double max_us = 1e6) {
  const bluepill::RunResult r = b.run_for_us(max_us);
  ASSERT_EQ(r.stop, bluepill::Stop::breakpoint) << bluepill::to_string(r.stop) << ": " << r.message
                                                << b.diagnostics().error_text();
  ASSERT_EQ(r.bkpt, 0u) << "stopped at bkpt " << r.bkpt << " (0xEE: unexpected exception), pc=" << std::hex
                        << b.reg(15);
}

}  // namespace bptest

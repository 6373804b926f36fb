// CPU, clock tree, USART1 output timing, LED.
#include <chrono>

#include "helpers.hpp"

using namespace bptest;

TEST(Board, HelloPrintsAtTheConfiguredBaudRate) {
  auto b = board_with("hello");
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "hello from the blue pill\n");
  EXPECT_TRUE(b->led_on());
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
  // The clocks' start-up, then 25 bytes of 10 bits at 115200 baud: 2.17 ms; the program has
  // little else to do.
  EXPECT_GT(b->now_us(), kClockStartUs + 2100.0);
  EXPECT_LT(b->now_us(), kClockStartUs + 2400.0);
}

TEST(Board, NotPoweredDoesNotRun) {
  bluepill::Board b;
  EXPECT_EQ(b.run_instructions(10).stop, bluepill::Stop::off);
}

TEST(Board, ErasedFlashIsReportedAtPowerOn) {
  bluepill::Board b;
  b.power_on();
  const auto r = b.run_instructions(10);
  EXPECT_EQ(r.stop, bluepill::Stop::error);
  EXPECT_NE(r.message.find("reset vector"), std::string::npos) << r.message;
}

TEST(Board, RunsAnExactNumberOfInstructions) {
  auto b = board_with("hello");
  const std::uint64_t i0 = b->instructions();
  ASSERT_EQ(b->run_instructions(1234).stop, bluepill::Stop::limit);
  EXPECT_EQ(b->instructions() - i0, 1234u);
  ASSERT_EQ(b->run_instructions(1).stop, bluepill::Stop::limit);
  EXPECT_EQ(b->instructions() - i0, 1235u);
}

// Each instruction takes Config::cycles_per_instruction core cycles: 1000 instructions on the
// reset clock (HSI, 8 MHz) last 125 us, 250 us at 2 cycles each (slow silicon), and the whole
// program, which prints at a fixed baud rate, lasts about as long either way.
TEST(Board, CyclesPerInstructionSetsTheCoreSpeed) {
  double first_1000_us[2] = {};
  double total_us[2] = {};
  for (int i = 0; i < 2; ++i) {
    bluepill::Config cfg;
    cfg.cycles_per_instruction = i + 1;
    auto b = board_with("hello", cfg);
    const double t0 = b->now_us();
    ASSERT_EQ(b->run_instructions(1000).stop, bluepill::Stop::limit);
    first_1000_us[i] = b->now_us() - t0;
    run_to_end(*b);
    EXPECT_EQ(b->uart_output(), "hello from the blue pill\n");
    total_us[i] = b->now_us();
  }
  EXPECT_NEAR(first_1000_us[0], 125.0, 0.5);
  EXPECT_NEAR(first_1000_us[1], 250.0, 0.5);
  EXPECT_NEAR(total_us[1], total_us[0], 0.05 * total_us[0]) << "the UART, not the CPU, sets the pace";
  bluepill::Config bad;
  bad.cycles_per_instruction = 0.5;
  EXPECT_THROW(bluepill::Board{bad}, std::runtime_error);
}

TEST(Board, RealtimePacesVirtualTimeToTheWallClock) {
  bluepill::Config cfg;
  cfg.realtime = true;
  auto b = board_with("exceptions", cfg);  // 10 ms of SysTick sleeping
  const auto t0 = std::chrono::steady_clock::now();
  run_to_end(*b);
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(wall_ms, 9.0);
  EXPECT_LT(wall_ms, 2000.0);
}

TEST(Board, ASleepingCpuSkipsAhead) {
  auto b = board_with("exceptions");
  run_to_end(*b);
  EXPECT_GT(b->now_us(), 9'900.0);
  EXPECT_LT(b->instructions(), 20'000u) << "10 ms at 72 MHz, but the CPU sleeps in WFI between SysTicks";
}

// An IT block runs each of its instructions under its own condition, whatever stops the emulated
// CPU around it: SysTick every 41 cycles, and runs of a fraction of a microsecond. The block
// straddles a 1 KB boundary, where Unicorn (QEMU) ends a translation block: stopped at its IT
// instruction, the CPU resumed with the block's state one instruction ahead, and a "ls" move ran
// where "hi" held (4,211 of 40,000 calls wrong before the emulator stopped stopping there). An
// application's flash write loop, laid out so by GCC, programmed 0xFF for a byte now and then.
TEST(Exceptions, AnItBlockKeepsItsConditionsWhereverTheCpuStops) {
  auto b = board_with("it_block");
  run_to_end(*b, 20e6);
  EXPECT_EQ((result(*b, 2) & ~1u) % 1024, 0u) << "the block does not straddle the 1 KB boundary the test is for";
  EXPECT_GT(result(*b, 1), 1000u) << "SysTick did not come during the loop";
  EXPECT_EQ(result(*b, 0), 0u) << "calls whose IT block ran an instruction under the wrong condition";
  b = board_with("it_block");
  bluepill::RunResult r{};
  for (int i = 0; i < 20'000'000 && (r = b->run_for_us(0.37)).stop == bluepill::Stop::limit; ++i) {
  }
  ASSERT_EQ(r.stop, bluepill::Stop::breakpoint) << bluepill::to_string(r.stop) << ": " << r.message;
  EXPECT_EQ(result(*b, 0), 0u) << "calls whose IT block ran an instruction under the wrong condition";
}

// Rules of the STM32F103 and its Cortex-M3 that a firmware mistake breaks and that the emulator
// must not let pass: each test runs a program that breaks one (fw/rule_*.cpp) and expects what
// the silicon does (strict: an error that stops the board; lenient: the silicon's behaviour).
#include <vector>

#include "helpers.hpp"

using namespace bptest;

// Correct code next to every encoding the alignment check decodes (TBB/TBH, LDREXB/H, LDRD/STRD
// with writeback, LDRD literal, LDMDB/STMDB, PUSH/POP, 16-bit LDM with Rn in the list, a division
// by non-zero under DIV_0_TRP, faulting instructions skipped by IT) runs without an error.
TEST(SiliconRules, CorrectNeighboursOfTheCheckedEncodingsRun) {
  auto b = board_with("rule_aligned_ok");
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0), 0xC0DEu);
  EXPECT_EQ(result(*b, 1), 0u) << "checks that failed";
  EXPECT_EQ(b->diagnostics().errors(), 0u) << b->diagnostics().error_text();
}

// PM0056 2.2.5: LDM/STM/LDRD/STRD/LDREX/STREX at an address not aligned to their size fault, as
// does a division by zero with CCR.DIV_0_TRP (4.4.7). Strict: the board stops with the reason;
// lenient: the program's HardFault handler runs (BKPT 2), with the stacked PC in flash.
class SiliconFault : public ::testing::TestWithParam<const char*> {};
TEST_P(SiliconFault, StrictStopsWithTheReason) {
  auto b = board_with(GetParam());
  const auto r = b->run_for_us(1000);
  EXPECT_FALSE(r.stop == bluepill::Stop::breakpoint && r.bkpt == 0) << "the access completed";
  ASSERT_EQ(r.stop, bluepill::Stop::error) << bluepill::to_string(r.stop) << " " << r.message;
  EXPECT_TRUE(r.message.find("at unaligned address") != std::string::npos ||
              r.message.find("by zero (CCR.DIV_0_TRP)") != std::string::npos)
      << r.message;
}
namespace {
// Lenient, `program` runs into its HardFault handler, which stops with BKPT 2.
void run_to_hardfault(std::unique_ptr<bluepill::Board>& b, const char* program) {
  bluepill::Config cfg;
  cfg.strict = false;
  b = board_with(program, cfg);
  const auto r = b->run_for_us(1000);
  ASSERT_EQ(r.stop, bluepill::Stop::breakpoint) << r.message;
  ASSERT_EQ(r.bkpt, 2u);
}
}  // namespace
TEST_P(SiliconFault, LenientTakesTheFault) {
  std::unique_ptr<bluepill::Board> b;
  run_to_hardfault(b, GetParam());
}
// The programs made with FAULT_PROBE (fw/fault_probe.hpp).
const std::vector<const char*> kProbes = {"rule_ldmdb_unaligned", "rule_strd_wb_unaligned", "rule_ldrd_post_unaligned",
                                          "rule_ldrex_unaligned", "rule_stm16_unaligned",    "rule_sdiv0_strict",
                                          "rule_ldrexh_odd",      "rule_strexh_odd"};
std::vector<const char*> all_fault_programs() {
  std::vector<const char*> v = {"rule_ldrd", "rule_ldm"};
  v.insert(v.end(), kProbes.begin(), kProbes.end());
  return v;
}
INSTANTIATE_TEST_SUITE_P(Programs, SiliconFault, ::testing::ValuesIn(all_fault_programs()));

// Lenient, the fault is taken at the instruction itself: the stacked PC is its address.
class FaultProbe : public ::testing::TestWithParam<const char*> {};
TEST_P(FaultProbe, LenientStacksTheFaultingInstruction) {
  std::unique_ptr<bluepill::Board> b;
  ASSERT_NO_FATAL_FAILURE(run_to_hardfault(b, GetParam()));
  EXPECT_EQ(result(*b, 1), 0xFAu);
  EXPECT_NE(result(*b, 0), 0x600Du) << "the instruction completed";
  EXPECT_GE(result(*b, 4), 0x08000000u) << "the instruction's address, in flash";
  EXPECT_EQ(result(*b, 3), result(*b, 4)) << std::hex << "stacked PC " << result(*b, 3) << ", instruction at "
                                          << result(*b, 4);
}
INSTANTIATE_TEST_SUITE_P(Programs, FaultProbe, ::testing::ValuesIn(kProbes));

// Lenient, the UsageFault escalates to HardFault (SHCSR.USGFAULTENA clear): CFSR.UNALIGNED and
// HFSR.FORCED are set, as the handler reads them.
TEST(SiliconRules, UnalignedLdrdEscalatesToHardFaultWithItsStatus) {
  std::unique_ptr<bluepill::Board> b;
  ASSERT_NO_FATAL_FAILURE(run_to_hardfault(b, "rule_ldrd"));
  EXPECT_EQ(result(*b, 1), 0xFAu);
  EXPECT_EQ(result(*b, 3) & (1u << 24), 1u << 24) << "CFSR " << std::hex << result(*b, 3);
  EXPECT_EQ(result(*b, 4) & (1u << 30), 1u << 30) << "HFSR " << std::hex << result(*b, 4);
  EXPECT_NE(b->diagnostics().error_text().find("LDRD at unaligned address 0x20001002"), std::string::npos)
      << b->diagnostics().error_text();
}

// With SHCSR.USGFAULTENA the UsageFault handler runs instead (the test program's default
// handler: BKPT 0xEE), not HardFault.
TEST(SiliconRules, UnalignedLdrdTakesTheUsageFaultWhenEnabled) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("rule_usgfault_enabled", cfg);
  const auto r = b->run_for_us(1000);
  ASSERT_EQ(r.stop, bluepill::Stop::breakpoint) << r.message;
  EXPECT_EQ(r.bkpt, 0xEEu) << "HardFault taken; CFSR " << std::hex << result(*b, 3) << " HFSR " << result(*b, 4);
}

// PM0056 4.4.7: with CCR.DIV_0_TRP a division by zero faults.
TEST(SiliconRules, DivideByZeroTrapsWithDiv0Trp) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("rule_div0trp", cfg);
  const auto r = b->run_for_us(1000);
  EXPECT_TRUE(r.stop == bluepill::Stop::breakpoint && r.bkpt == 2u)
      << bluepill::to_string(r.stop) << " bkpt " << r.bkpt << " result " << std::hex << result(*b, 0);
}

// RM0008 9.2: GPIO registers take word writes only. Strict: an error; lenient: what the APB
// bridge does with the byte (0x20 in every lane of BSRR sets PC5 as well as PC13).
TEST(SiliconRules, ByteWriteToGpioIsReported) {
  auto b = board_with("rule_gpio_byte");
  const auto r = b->run_for_us(1000);
  EXPECT_EQ(r.stop, bluepill::Stop::error) << "byte store to GPIOC_BSRR accepted; ODR=" << std::hex << result(*b, 0);
}
TEST(SiliconRules, ByteWriteToGpioIsReplicatedAcrossLanes) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto b = board_with("rule_gpio_byte", cfg);
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0), 0x2020u) << std::hex << result(*b, 0);
  EXPECT_NE(b->diagnostics().error_text().find("1-byte write"), std::string::npos) << b->diagnostics().error_text();
}

// RM0008 9.2.5: with both BSx and BRx set, BSx wins.
TEST(SiliconRules, BsrrSetWinsOverReset) {
  auto b = board_with("rule_bsrr_both");
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0) & (1u << 13), 1u << 13) << "ODR " << std::hex << result(*b, 0);
}

// RM0008 13.4.4: enabling a channel again does not reload CNDTR; at 0 it transfers nothing.
TEST(SiliconRules, DmaReenableDoesNotReloadCndtr) {
  auto b = board_with("rule_dma_reenable");
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0), 0u) << "CNDTR after re-enable";
  EXPECT_EQ(result(*b, 1), 0u) << "a second transfer ran";
}

// RM0008 3.3.3: 72 MHz with no flash wait state is refused.
TEST(SiliconRules, PllAt72MHzWithoutWaitStatesIsRefused) {
  auto b = board_with("rule_pll_nolatency");
  const auto r = b->run_for_us(10'000);
  ASSERT_EQ(r.stop, bluepill::Stop::error);
  EXPECT_NE(r.message.find("needs FLASH_ACR.LATENCY >= 2"), std::string::npos) << r.message;
}

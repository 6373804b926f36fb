// The FLASH controller against RM0008 3.3.3 / PM0075, and power cuts during its operations.
#include <algorithm>

#include "bluepill/chip.hpp"
#include "helpers.hpp"
#include "sim/internal_flash.hpp"

using namespace bptest;

TEST(FlashCtrl, EraseProgramPgerrLockAndTimings) {
  bluepill::Config cfg;
  cfg.strict = false;  // the program provokes PGERR on purpose
  auto b = board_with("flash", cfg);
  run_to_end(*b);
  EXPECT_EQ(result(*b, 0), 0x80u) << "FLASH_CR resets locked";
  EXPECT_EQ(result(*b, 1), 0x00u) << "KEY1, KEY2 unlock";
  // Page erase: 30 ms (midpoint of DS5319's 20..40 ms), CPU stalled meanwhile.
  EXPECT_NEAR(result(*b, 2), 30e-3 * 72e6, 200.0);
  EXPECT_EQ(result(*b, 3) & 0x21u, 0x20u) << "EOP set, BSY clear";
  EXPECT_EQ(result(*b, 4), 0xFFFFFFFFu);
  EXPECT_NEAR(result(*b, 5), 52.5e-6 * 72e6, 50.0) << "half-word program takes tPROG typ 52.5 us";
  EXPECT_EQ(result(*b, 6), 0x1234u);
  EXPECT_EQ(result(*b, 7) & 0x04u, 0x04u) << "PGERR over a programmed half-word";
  EXPECT_EQ(result(*b, 8), 0x1234u) << "PGERR writes nothing";
  EXPECT_EQ(result(*b, 9), 0xBEEF0000u) << "0x0000 over anything";
  EXPECT_EQ(result(*b, 10), 0x80u);
  EXPECT_EQ(result(*b, 11), 0x80u) << "CR writes ignored while locked";
  // Both rule breaks were reported loudly, nothing else.
  const std::string errors = b->diagnostics().error_text();
  EXPECT_EQ(b->diagnostics().errors(), 2u) << errors;
  EXPECT_NE(errors.find("PGERR"), std::string::npos) << errors;
  EXPECT_NE(errors.find("while locked"), std::string::npos) << errors;
}

TEST(FlashCtrl, MaximumTimingOption) {
  bluepill::Config cfg;
  cfg.strict = false;
  cfg.timing = bluepill::TimingMode::maximum;
  auto b = board_with("flash", cfg);
  run_to_end(*b);
  EXPECT_NEAR(result(*b, 2), 40e-3 * 72e6, 200.0);
  EXPECT_NEAR(result(*b, 5), 70e-6 * 72e6, 50.0);
}

TEST(FlashCtrl, StoreWithoutPgIsCaught) {
  auto b = board_with("flash_nopg");
  const auto r = b->run_for_us(1000);
  ASSERT_EQ(r.stop, bluepill::Stop::error);
  EXPECT_NE(r.message.find("without FLASH_CR.PG"), std::string::npos) << r.message;
  std::uint16_t v = 0;
  b->read_memory(0x0800F000, &v, 2);
  EXPECT_EQ(v, 0xFFFF) << "nothing written";
}

TEST(FlashCtrl, WordStoreIsCaught) {
  auto b = board_with("flash_word");
  const auto r = b->run_for_us(1000);
  ASSERT_EQ(r.stop, bluepill::Stop::error);
  EXPECT_NE(r.message.find("half-words only"), std::string::npos) << r.message;
  std::uint32_t v = 0;
  b->read_memory(0x0800F000, &v, 4);
  EXPECT_EQ(v, 0xFFFFFFFFu) << "the raw store must not reach the flash";
}

namespace {
int count_bytes(const bluepill::Board& b, std::uint32_t addr, std::uint32_t len, std::uint8_t value) {
  int n = 0;
  for (std::uint32_t i = 0; i < len; ++i) {
    std::uint8_t v = 0;
    b.read_memory(addr + i, &v, 1);
    n += v == value;
  }
  return n;
}
}  // namespace

TEST(FlashCtrl, CutMidEraseLeavesATornPage) {
  auto b = board_with("erase_loop");
  bluepill::Chip* chip = b->chip();
  // Run until the erase of page 60 has started (the zeros are written first).
  auto r = b->run_until([&] { return chip->flash.busy() && b->chip()->flash.busy_until() - chip->now() > 1'000'000; }, 1e6);
  ASSERT_EQ(r.stop, bluepill::Stop::condition) << r.message;
  EXPECT_EQ(result(*b, 0), 1u);
  ASSERT_EQ(b->run_for_us(10'000).stop, bluepill::Stop::limit);  // a third of the way through
  b->power_cut();
  const int ff = count_bytes(*b, 0x0800F000, 1024, 0xFF), zero = count_bytes(*b, 0x0800F000, 1024, 0x00);
  EXPECT_GT(ff, 0) << "some bits erased";
  EXPECT_LT(ff, 1024) << "not all";
  EXPECT_LT(zero, 1024);
  // Power again: the program finds a torn page and goes on (it re-erases it).
  b->power_on();
  run_to_end(*b, 2e6);
  EXPECT_EQ(count_bytes(*b, 0x0800F000, 1024, 0xFF), 1024);
  EXPECT_EQ(count_bytes(*b, 0x0800F400, 1024, 0x00), 1024);
}

TEST(FlashCtrl, CutMidProgramTearsOneHalfWord) {
  auto b = board_with("erase_loop");
  bluepill::Chip* chip = b->chip();
  // Stop in the middle of the 100th half-word program of the zero fill.
  int programs = 0;
  bool was_busy = false;
  auto r = b->run_until(
      [&] {
        const bool busy = chip->flash.busy();
        if (busy && !was_busy) ++programs;
        was_busy = busy;
        return programs == 100;
      },
      1e6);
  ASSERT_EQ(r.stop, bluepill::Stop::condition) << r.message;
  b->run_for_us(20);
  b->power_cut();
  EXPECT_EQ(count_bytes(*b, 0x0800F000, 198, 0x00), 198) << "the first 99 half-words are programmed";
  EXPECT_EQ(count_bytes(*b, 0x0800F000 + 200, 1024 - 200, 0xFF), 1024 - 200) << "the rest untouched";
}

TEST(FlashCtrl, ThousandsOfCutsInOneProcess) {
  // Cut the power at pseudo-random instants over and over; each power-on resumes the program.
  // The model must neither crash nor report errors, and the program must eventually finish.
  bluepill::Board b;
  b.load_image(fw("erase_loop"));
  std::mt19937_64 rng(7);
  int finished = 0;
  for (int i = 0; i < 2000; ++i) {
    b.power_on();
    const auto r = b.run_instructions(std::uniform_int_distribution<std::uint64_t>(1, 3000)(rng));
    ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
    finished += r.stop == bluepill::Stop::breakpoint;
    b.power_cut();
  }
  b.power_on();
  run_to_end(b, 10e6);
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
  EXPECT_EQ(count_bytes(b, 0x0800F400, 1024, 0x00), 1024);
}

TEST(FlashCtrl, WriteProtectedPageSetsWrprterr) {
  bluepill::Config cfg;
  cfg.strict = false;
  cfg.write_protect = 1u << 15;  // pages 60..63
  bluepill::Board b(cfg);
  b.load_image(fw("flash_wrp"));
  auto mem = b.flash().bytes();
  std::fill(mem.begin() + 0xF000, mem.begin() + 0xF400, 0x5A);
  b.power_on();
  run_to_end(b);
  EXPECT_EQ(result(b, 0) & 0x30u, 0x10u) << "erase: WRPRTERR, no EOP";
  EXPECT_EQ(result(b, 1) & 0x30u, 0x10u) << "program: WRPRTERR";
  EXPECT_EQ(result(b, 2), ~(1u << 15));
  EXPECT_EQ(count_bytes(b, 0x0800F000, 1024, 0x5A), 1024) << "nothing changed";
  EXPECT_EQ(b.diagnostics().errors(), 2u) << b.diagnostics().error_text();
}

namespace {
std::uint32_t word(const bluepill::Board& b, std::uint32_t addr) {
  std::uint32_t w = 0;
  EXPECT_TRUE(b.read_memory(addr, &w, 4));
  return w;
}
}  // namespace

// A worn page (Config::worn_pages, named by any address in it): its erase ends as a good one's,
// EOP and no error flag (the FPEC does not check its work), yet the words at offsets 0x000,
// 0x100, 0x200 and 0x300 keep their 0 bits under FlashCtrl::kWornBits; only a read-back tells.
TEST(FlashCtrl, AWornPageErasesWithEopButKeepsSomeBitsProgrammed) {
  bluepill::Config cfg;
  cfg.worn_pages = {0x0800F123};  // page 60
  bluepill::Board b(cfg);
  b.load_image(fw("flash_wrp"));  // erases page 60, then programs 0 at 0x0800F002
  auto mem = b.flash().bytes();
  std::fill(mem.begin() + 0xF000, mem.begin() + 0xF400, 0x5A);
  b.power_on();
  run_to_end(b);
  EXPECT_EQ(result(b, 0) & 0x35u, 0x20u) << "erase: EOP, no BSY, PGERR or WRPRTERR";
  EXPECT_EQ(result(b, 1) & 0x35u, 0x20u) << "program: EOP";
  static_assert(bluepill::FlashCtrl::kWornBits == 0x0F0F0F0F);
  EXPECT_EQ(word(b, 0x0800F000), 0x0000FAFAu) << "0x5A5A5A5A | 0xF0F0F0F0, then zeros over its high half";
  for (std::uint32_t at : {0x0800F100u, 0x0800F200u, 0x0800F300u}) EXPECT_EQ(word(b, at), 0xFAFAFAFAu) << std::hex << at;
  int erased = 0;
  for (std::uint32_t at = 0x0800F000; at < 0x0800F400; at += 4) erased += word(b, at) == 0xFFFFFFFFu;
  EXPECT_EQ(erased, 256 - 4) << "the rest of the page erased";
  EXPECT_EQ(count_bytes(b, 0x0800F400, 1024, 0xFF), 1024) << "page 61 untouched";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();

  // No longer worn (Board::set_worn_pages): the next erase clears the whole page.
  b.set_worn_pages({});
  b.power_cut();
  std::fill(mem.begin() + 0xF000, mem.begin() + 0xF400, 0x5A);
  b.power_on();
  run_to_end(b);
  EXPECT_EQ(result(b, 0) & 0x35u, 0x20u);
  EXPECT_EQ(word(b, 0x0800F000), 0x0000FFFFu);
  EXPECT_EQ(count_bytes(b, 0x0800F004, 1020, 0xFF), 1020);
}

// RM0008 3.3.3 on FLASH_ACR: the wait states may not drop below what SYSCLK needs, and the
// prefetch buffer may be switched only below 24 MHz. At the reset clock (HSI, 8 MHz) both are
// free; at 72 MHz each is an error.
TEST(FlashAcr, WaitStatesAndPrefetchFollowTheClockRules) {
  bluepill::Config cfg;
  cfg.strict = false;
  auto write_acr = [](bluepill::Board& b, std::uint32_t v) { ASSERT_TRUE(b.debug_write(0x40022000, &v, 4)); };
  auto slow = board_with("hello", cfg);  // powered, not yet run: 8 MHz
  write_acr(*slow, 0x00);
  write_acr(*slow, 0x12);
  EXPECT_EQ(slow->diagnostics().errors(), 0u) << slow->diagnostics().error_text();
  std::uint32_t acr = 0;
  ASSERT_TRUE(slow->debug_read(0x40022000, &acr, 4));
  EXPECT_EQ(acr, 0x32u) << "PRFTBS follows PRFTBE";

  auto fast = board_with("hello", cfg);
  run_to_end(*fast);  // 72 MHz, LATENCY 2, prefetch on
  write_acr(*fast, 0x11);
  EXPECT_EQ(fast->diagnostics().errors(), 1u);
  EXPECT_NE(fast->diagnostics().error_text().find("LATENCY lowered to 1 while SYSCLK runs at 72000000"), std::string::npos)
      << fast->diagnostics().error_text();
  write_acr(*fast, 0x02);
  EXPECT_EQ(fast->diagnostics().errors(), 2u);
  EXPECT_NE(fast->diagnostics().error_text().find("PRFTBE switched at SYSCLK 72000000"), std::string::npos)
      << fast->diagnostics().error_text();
}

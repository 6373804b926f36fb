// The flag store and the journal on both media, including what torn writes and erases read as.
#include <gtest/gtest.h>

#include <random>

#include "ota/flags.hpp"
#include "support.hpp"

namespace {

using test::Parts;

class FlagsTest : public ::testing::TestWithParam<const ota::Layout*> {};

TEST_P(FlagsTest, TextsAreWrittenAtOffsetZeroAndReadBack) {
  Parts p(*GetParam());
  ota::FlagStore flags(p.map);
  EXPECT_EQ(flags.read(), ota::Flag::none);
  ASSERT_TRUE(flags.set(ota::Flag::start));
  EXPECT_EQ(flags.read(), ota::Flag::start);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.region(p.layout.flags).data()), 9), "OTA-START");
  ASSERT_TRUE(flags.set(ota::Flag::success));  // needs an erase in between
  EXPECT_EQ(flags.read(), ota::Flag::success);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.region(p.layout.flags).data()), 11), "OTA-SUCCESS");
  ASSERT_TRUE(flags.clear());
  EXPECT_EQ(flags.read(), ota::Flag::none);
  EXPECT_EQ(p.internal.violations() + p.chip.violations(), 0u);
}

TEST_P(FlagsTest, TornTextsReadAsNeitherFlag) {
  // Every torn program of one text over blank, and every torn erase of one text, must read as
  // "torn" or as the state it came from or went to: never as the other flag.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    Parts p(*GetParam());
    ota::FlagStore flags(p.map);
    const bool from_start = i % 2 == 0;
    const ota::Flag text = from_start ? ota::Flag::start : ota::Flag::success;
    const ota::Flag other = from_start ? ota::Flag::success : ota::Flag::start;
    const bool tear_erase = i % 4 >= 2;
    if (tear_erase) {
      ASSERT_TRUE(flags.set(text));
    }
    p.power.plan_cut(p.power.count(), sim::CutMode::torn);
    if (tear_erase) flags.clear();
    else flags.set(text);
    p.power.power_on();
    const ota::Flag f = flags.read();
    EXPECT_NE(f, other) << "iteration " << i;
  }
}

TEST_P(FlagsTest, JournalRecordsMarkersAndSurvivesTornMarkers) {
  Parts p(*GetParam());
  ota::Journal j(p.map);
  ota::JournalRecord r;
  EXPECT_FALSE(j.read(r));
  const ota::JournalRecord rec{20000, 0xDEADBEEF, 7, 256, 79};
  ASSERT_TRUE(j.begin(rec));
  ASSERT_TRUE(j.read(r));
  EXPECT_EQ(r, rec);
  EXPECT_EQ(j.units_done(), 0u);
  ASSERT_TRUE(j.mark_unit_done(0));
  ASSERT_TRUE(j.mark_unit_done(1));
  ASSERT_TRUE(j.mark_unit_done(3));  // a gap: counting stops at the first unset marker
  EXPECT_EQ(j.units_done(), 2u);
  EXPECT_FALSE(j.installed());
  ASSERT_TRUE(j.mark_installed());
  EXPECT_TRUE(j.installed());
  EXPECT_FALSE(j.mark_unit_done(j.units_for(p.layout.image_limit)));  // beyond the last unit
  ASSERT_TRUE(j.clear());
  EXPECT_FALSE(j.read(r));
  EXPECT_EQ(p.internal.violations() + p.chip.violations(), 0u);
}

TEST_P(FlagsTest, TornRecordIsNoRecord) {
  int valid = 0;
  for (int i = 0; i < 300; ++i) {
    Parts p(*GetParam());
    ota::Journal j(p.map);
    ASSERT_TRUE(j.clear());
    // begin() = erase (op 0) then program the record (op 1): tear the program.
    p.power.reset_count();
    p.power.rng().discard(static_cast<unsigned long long>(i));  // a different tear each time
    p.power.plan_cut(1, sim::CutMode::torn);
    EXPECT_FALSE(j.begin(ota::JournalRecord{1000, 42u + static_cast<unsigned>(i), 1, 128, 8}));
    p.power.power_on();
    ota::JournalRecord r;
    if (j.read(r)) {
      ++valid;
      // only a complete record reads as one: every field, not just those before the tear
      EXPECT_EQ(r, (ota::JournalRecord{1000, 42u + static_cast<unsigned>(i), 1, 128, 8}));
    }
  }
  EXPECT_LT(valid, 300);  // tearing did tear
}

INSTANTIATE_TEST_SUITE_P(Layouts, FlagsTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

}  // namespace

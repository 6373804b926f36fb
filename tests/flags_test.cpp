// The flag store and the journal on both media, including what torn writes and erases read as.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

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

// The flag area holds the spec's texts padded with the erased value, all 12 bytes: what a
// bootloader in the field, never updated, compares with.
TEST_P(FlagsTest, TextsArePaddedWithTheErasedValue) {
  Parts p(*GetParam());
  ota::FlagStore flags(p.map);
  const auto area = p.region(p.layout.flags);
  ASSERT_TRUE(flags.set(ota::Flag::start));
  const std::uint8_t start[12] = {'O', 'T', 'A', '-', 'S', 'T', 'A', 'R', 'T', 0xFF, 0xFF, 0xFF};
  EXPECT_TRUE(std::equal(start, start + 12, area.begin()));
  ASSERT_TRUE(flags.set(ota::Flag::success));
  const std::uint8_t success[12] = {'O', 'T', 'A', '-', 'S', 'U', 'C', 'C', 'E', 'S', 'S', 0xFF};
  EXPECT_TRUE(std::equal(success, success + 12, area.begin()));
}

// Setting the flag the area already holds costs no erase or program (the flag page wears).
TEST_P(FlagsTest, SettingTheFlagAlreadyHeldTouchesNothing) {
  Parts p(*GetParam());
  ota::FlagStore flags(p.map);
  ASSERT_TRUE(flags.set(ota::Flag::start));
  const std::uint64_t ops = p.power.count();
  EXPECT_TRUE(flags.set(ota::Flag::start));
  EXPECT_EQ(p.power.count(), ops);
}

// Only "OTA-START", "OTA-SUCCESS" and blank can be set: a torn or unknown flag is refused, and the
// area keeps what it held.
TEST_P(FlagsTest, ATornOrUnknownFlagCannotBeSet) {
  Parts p(*GetParam());
  ota::FlagStore flags(p.map);
  ASSERT_TRUE(flags.set(ota::Flag::start));
  EXPECT_FALSE(flags.set(ota::Flag::torn));
  EXPECT_FALSE(flags.set(ota::Flag::unknown));
  EXPECT_EQ(flags.read(), ota::Flag::start);
}

// The journal on flash, as a bootloader in the field (never updated) reads what a newer
// application's client writes: "OTAJ" and the record from +0, its CRC-32 at +20, the "installed"
// marker at +32, unit markers from +64, copy markers from +128.
TEST_P(FlagsTest, TheJournalsLayoutOnFlash) {
  Parts p(*GetParam());
  ota::Journal j(p.map);
  ASSERT_TRUE(j.begin(ota::JournalRecord{20000, 0xDEADBEEF, 7, 256, 79}));
  ASSERT_TRUE(j.mark_installed());
  ASSERT_TRUE(j.mark_unit_done(1));
  ASSERT_TRUE(j.mark_copy_begun(2));
  const auto b = p.region(p.layout.journal());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), 4), "OTAJ");
  EXPECT_EQ(ota::get_u32(b.data() + 4), 20000u);
  EXPECT_EQ(ota::get_u32(b.data() + 8), 0xDEADBEEFu);
  EXPECT_EQ(ota::get_u32(b.data() + 12), 7u);
  EXPECT_EQ(ota::get_u16(b.data() + 16), 256u);
  EXPECT_EQ(ota::get_u16(b.data() + 18), 79u);
  EXPECT_EQ(ota::get_u32(b.data() + 20), ota::crc32(b.data(), 20));
  for (std::uint32_t i = 24; i < p.layout.staging_unit; ++i) {
    const bool marker = i == 32 || i == 33 || i == 64 + 2 || i == 64 + 3 || i == 128 + 4 || i == 128 + 5;
    EXPECT_EQ(b[i], marker ? 0x00 : 0xFF) << "journal byte " << i;
  }
}

// A block with a right CRC-32 but without the journal's magic is no record.
TEST_P(FlagsTest, ARecordWithoutTheJournalsMagicIsNoRecord) {
  Parts p(*GetParam());
  ota::Journal j(p.map);
  ASSERT_TRUE(j.begin(ota::JournalRecord{20000, 0xDEADBEEF, 7, 256, 79}));
  auto b = p.region(p.layout.journal());
  b[0] = 'X';
  ota::put_u32(b.data() + 20, ota::crc32(b.data(), 20));
  ota::JournalRecord r;
  EXPECT_FALSE(j.read(r));
}

// clear() leaves the journal blank whatever it held, a single torn marker byte anywhere included.
TEST_P(FlagsTest, ClearErasesAJournalHoldingOnlyATornByte) {
  for (const std::uint32_t at : {40u, 127u, 200u, 1023u}) {
    Parts p(*GetParam());
    ota::Journal j(p.map);
    auto b = p.region(p.layout.journal());
    b[at] = 0xFE;
    ASSERT_TRUE(j.clear());
    EXPECT_TRUE(std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0xFF; })) << "byte " << at;
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, FlagsTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

}  // namespace

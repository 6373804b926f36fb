// sim::InternalFlash and sim::PowerSupply: the STM32F1 programming rules and power cuts.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <csignal>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sim/internal_flash.hpp"
#include "sim/power.hpp"

namespace {

using sim::CutMode;
using sim::InternalFlash;
using sim::PowerSupply;

constexpr std::uint32_t kBase = InternalFlash::kBase;
constexpr std::uint32_t kPage = InternalFlash::kPage;

std::uint16_t hw(const InternalFlash& f, std::uint32_t addr) {
  const auto b = f.bytes();
  return static_cast<std::uint16_t>(b[addr - kBase] | b[addr - kBase + 1] << 8);
}

bool write16(InternalFlash& f, std::uint32_t addr, std::uint16_t v) {
  const std::uint8_t b[2] = {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8)};
  return f.write(addr, b, 2);
}

bool all_ff(const InternalFlash& f) {
  for (auto b : f.bytes())
    if (b != 0xFF) return false;
  return true;
}

TEST(SimInternalFlash, StartsErasedWithStm32f1Geometry) {
  PowerSupply power;
  InternalFlash f(power);
  EXPECT_EQ(f.geometry().base, 0x08000000u);
  EXPECT_EQ(f.geometry().size, 64u * 1024);
  EXPECT_EQ(f.geometry().erase_size, 1024u);
  EXPECT_EQ(f.geometry().write_size, 2u);
  EXPECT_EQ(f.bytes().size(), 64u * 1024);
  EXPECT_TRUE(all_ff(f));
}

TEST(SimInternalFlash, WriteReadRoundTripIsLittleEndianAndOneOperation) {
  PowerSupply power;
  InternalFlash f(power);
  const std::uint8_t data[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(f.write(kBase + 0x100, data, sizeof data));
  EXPECT_EQ(power.count(), 1u);
  EXPECT_EQ(hw(f, kBase + 0x100), 0x0201);
  std::uint8_t back[5] = {};
  ASSERT_TRUE(f.read(kBase + 0x101, back, sizeof back));  // reads: any alignment
  EXPECT_EQ(back[0], 2);
  EXPECT_EQ(back[4], 6);
  EXPECT_EQ(power.count(), 1u);  // reads are not operations
  EXPECT_EQ(f.violations(), 0u);
}

TEST(SimInternalFlash, ProgrammingANonErasedHalfWordIsPgerrAndLeavesIt) {
  PowerSupply power;
  InternalFlash f(power);
  ASSERT_TRUE(write16(f, kBase, 0x1234));
  EXPECT_FALSE(write16(f, kBase, 0x1230));  // even clearing bits only: not erased -> PGERR
  EXPECT_EQ(hw(f, kBase), 0x1234);
  EXPECT_EQ(f.violations(), 1u);
  EXPECT_NE(f.last_violation().find("PGERR"), std::string::npos);
  EXPECT_FALSE(write16(f, kBase, 0xFFFF));  // 0xFFFF over a programmed one is refused as well
  EXPECT_EQ(f.violations(), 2u);
}

TEST(SimInternalFlash, ZeroMayBeProgrammedOverAnything) {
  PowerSupply power;
  InternalFlash f(power);
  ASSERT_TRUE(write16(f, kBase + 2, 0xA5C3));
  EXPECT_TRUE(write16(f, kBase + 2, 0x0000));
  EXPECT_TRUE(write16(f, kBase + 2, 0x0000));
  EXPECT_EQ(hw(f, kBase + 2), 0x0000);
  EXPECT_EQ(f.violations(), 0u);
}

TEST(SimInternalFlash, WriteStopsAtTheFirstPgerr) {
  PowerSupply power;
  InternalFlash f(power);
  ASSERT_TRUE(write16(f, kBase + 2, 0x1111));
  const std::uint8_t data[8] = {0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x04, 0x00};
  EXPECT_FALSE(f.write(kBase, data, sizeof data));
  EXPECT_EQ(hw(f, kBase), 0x0001);
  EXPECT_EQ(hw(f, kBase + 2), 0x1111);
  EXPECT_EQ(hw(f, kBase + 4), 0xFFFF);
  EXPECT_EQ(hw(f, kBase + 6), 0xFFFF);
  EXPECT_EQ(f.violations(), 1u);
}

TEST(SimInternalFlash, MisalignedOrOutOfRangeAccessFailsAndIsCounted) {
  PowerSupply power;
  InternalFlash f(power);
  const std::uint8_t data[4] = {0, 0, 0, 0};
  std::uint8_t buf[4];
  EXPECT_FALSE(f.write(kBase + 1, data, 2));                    // odd address
  EXPECT_FALSE(f.write(kBase + InternalFlash::kSize - 2, data, 4));  // past the end
  EXPECT_FALSE(f.write(kBase - 2, data, 2));                    // before the start
  EXPECT_FALSE(f.read(kBase + InternalFlash::kSize - 2, buf, 4));
  EXPECT_FALSE(f.erase(kBase + 2));                             // not a page boundary
  EXPECT_FALSE(f.erase(kBase + InternalFlash::kSize));          // no such page
  EXPECT_EQ(f.violations(), 6u);
  EXPECT_TRUE(all_ff(f));
  f.clear_violations();
  EXPECT_EQ(f.violations(), 0u);
  EXPECT_TRUE(f.last_violation().empty());
}

// The ota::Flash contract: a last odd byte is programmed as a half-word padded with 0xFF.
TEST(SimInternalFlash, OddLengthWriteIsPaddedWithTheErasedValue) {
  PowerSupply power;
  InternalFlash f(power);
  const std::uint8_t data[3] = {0x11, 0x22, 0x33};
  ASSERT_TRUE(f.write(kBase + 8, data, 3));
  EXPECT_EQ(f.bytes()[8], 0x11);
  EXPECT_EQ(f.bytes()[9], 0x22);
  EXPECT_EQ(f.bytes()[10], 0x33);
  EXPECT_EQ(f.bytes()[11], 0xFF);
  EXPECT_EQ(f.violations(), 0u);
  // The padded half-word (0xFF33 at +10) was really programmed: programming it again fails.
  const std::uint8_t x44[1] = {0x44};
  EXPECT_FALSE(f.write(kBase + 10, x44, 1));
  EXPECT_EQ(f.bytes()[10], 0x33);
}

TEST(SimInternalFlash, EraseClearsExactlyOnePage) {
  PowerSupply power;
  InternalFlash f(power);
  std::vector<std::uint8_t> zeros(3 * kPage, 0);
  ASSERT_TRUE(f.write(kBase + 4 * kPage, zeros.data(), zeros.size()));
  ASSERT_TRUE(f.erase(kBase + 5 * kPage));
  EXPECT_EQ(f.bytes()[4 * kPage + kPage - 1], 0x00);
  for (std::uint32_t i = 0; i < kPage; ++i) ASSERT_EQ(f.bytes()[5 * kPage + i], 0xFF) << i;
  EXPECT_EQ(f.bytes()[6 * kPage], 0x00);
  EXPECT_EQ(power.count(), 2u);
  EXPECT_EQ(f.violations(), 0u);
}

TEST(SimInternalFlash, PrimitivesForTheEmulator) {
  PowerSupply power;
  InternalFlash f(power);
  using P = InternalFlash::Program;
  EXPECT_EQ(f.program_halfword(kBase + 8, 0xBEEF), P::ok);
  EXPECT_EQ(hw(f, kBase + 8), 0xBEEF);
  EXPECT_EQ(f.program_halfword(kBase + 8, 0x1234), P::pgerr);
  EXPECT_EQ(hw(f, kBase + 8), 0xBEEF);
  EXPECT_EQ(f.program_halfword(kBase + 8, 0x0000), P::ok);
  EXPECT_EQ(f.program_halfword(kBase + 9, 0x0000), P::misaligned);
  EXPECT_EQ(f.program_halfword(kBase + InternalFlash::kSize, 0x0000), P::misaligned);
  EXPECT_FALSE(f.erase_page(kBase + 8));
  EXPECT_TRUE(f.erase_page(kBase));
  EXPECT_EQ(hw(f, kBase + 8), 0xFFFF);
  EXPECT_EQ(f.violations(), 4u);
  EXPECT_EQ(power.count(), 0u);  // primitives leave power to the emulator
}

TEST(SimInternalFlash, TearProgramClearsARandomSubsetOfTheBitsToClear) {
  PowerSupply power;
  InternalFlash f(power);
  std::mt19937_64 rng(7);
  std::uint16_t seen_and = 0xFFFF, seen_or = 0;
  for (std::uint32_t i = 0; i < 64; ++i) {
    const std::uint32_t a = kBase + 2 * i;
    f.tear_program(a, 0xF0F0, rng);
    const std::uint16_t v = hw(f, a);
    EXPECT_EQ(v & 0xF0F0, 0xF0F0);  // bits staying 1 stay 1
    seen_and &= v;
    seen_or |= v;
  }
  EXPECT_EQ(seen_and & 0x0F0F, 0);       // every bit to clear was cleared at least once
  EXPECT_EQ(seen_or & 0x0F0F, 0x0F0F);   // and left at 1 at least once
  f.tear_program(kBase, 0x1234, rng);    // not erased, not zero: PGERR, nothing happens
  EXPECT_EQ(f.violations(), 1u);
}

TEST(SimInternalFlash, TearEraseSetsARandomSubsetOfTheZeroBits) {
  PowerSupply power;
  InternalFlash f(power);
  std::vector<std::uint8_t> zeros(kPage, 0);
  ASSERT_TRUE(f.write(kBase + kPage, zeros.data(), zeros.size()));
  std::mt19937_64 rng(3);
  f.tear_erase(kBase + kPage, rng);
  std::size_t ones = 0;
  for (std::uint32_t i = 0; i < kPage; ++i) ones += std::popcount(f.bytes()[kPage + i]);
  EXPECT_GT(ones, 0u);
  EXPECT_LT(ones, 8u * kPage);
  EXPECT_EQ(f.bytes()[0], 0xFF);
  EXPECT_EQ(f.bytes()[2 * kPage], 0xFF);
}

TEST(SimInternalFlash, CutBeforeLeavesTheOperationUndoneAndEverythingFailsAfter) {
  PowerSupply power;
  InternalFlash f(power);
  const std::uint8_t data[2] = {0x12, 0x34};
  power.plan_cut(1, CutMode::before);
  ASSERT_TRUE(f.write(kBase, data, 2));    // op 0
  EXPECT_FALSE(f.write(kBase + 2, data, 2));  // op 1: cut before it
  EXPECT_TRUE(power.dead());
  EXPECT_EQ(hw(f, kBase + 2), 0xFFFF);
  std::uint8_t buf[2];
  EXPECT_FALSE(f.read(kBase, buf, 2));
  EXPECT_FALSE(f.write(kBase + 4, data, 2));
  EXPECT_FALSE(f.erase(kBase));
  EXPECT_EQ(hw(f, kBase), 0x3412);
  EXPECT_EQ(hw(f, kBase + 4), 0xFFFF);
  EXPECT_EQ(power.count(), 2u);  // nothing is counted while the power is gone
  power.power_on();
  EXPECT_TRUE(f.read(kBase, buf, 2));
  EXPECT_TRUE(f.write(kBase + 4, data, 2));
  EXPECT_EQ(power.count(), 3u);
  EXPECT_EQ(f.violations(), 0u);
}

// A torn write: a prefix of half-words programmed, one torn, the rest untouched; then no power.
TEST(SimInternalFlash, TornWriteLeavesPrefixTornHalfWordAndUntouchedRest) {
  std::set<std::size_t> prefixes;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    PowerSupply power(seed);
    InternalFlash f(power);
    std::vector<std::uint8_t> zeros(64, 0);
    power.plan_cut(0, CutMode::torn);
    EXPECT_FALSE(f.write(kBase, zeros.data(), zeros.size()));
    EXPECT_TRUE(power.dead());
    std::size_t p = 0;
    while (p < 32 && hw(f, kBase + 2 * static_cast<std::uint32_t>(p)) == 0x0000) ++p;
    ASSERT_LT(p, 32u);
    for (std::size_t i = p + 1; i < 32; ++i)
      ASSERT_EQ(hw(f, kBase + 2 * static_cast<std::uint32_t>(i)), 0xFFFF) << "seed " << seed;
    prefixes.insert(p);
    EXPECT_FALSE(f.write(kBase + 100, zeros.data(), 2));
    EXPECT_EQ(hw(f, kBase + 100), 0xFFFF);
  }
  EXPECT_GT(prefixes.size(), 5u);  // the cut lands at various points
}

TEST(SimInternalFlash, TornEraseLeavesAMixAndPowerIsGone) {
  PowerSupply power(11);
  InternalFlash f(power);
  std::vector<std::uint8_t> zeros(kPage, 0);
  ASSERT_TRUE(f.write(kBase, zeros.data(), zeros.size()));
  power.plan_cut(power.count(), CutMode::torn);
  EXPECT_FALSE(f.erase(kBase));
  EXPECT_TRUE(power.dead());
  std::size_t ff = 0, zero = 0;
  for (std::uint32_t i = 0; i < kPage; ++i) {
    ff += f.bytes()[i] == 0xFF;
    zero += f.bytes()[i] == 0x00;
  }
  EXPECT_LT(ff, kPage);
  EXPECT_LT(zero, kPage);
  EXPECT_FALSE(f.erase(kBase));
}

TEST(SimPowerSupply, CountsOperationsOfAllPartsAndCutsThemAll) {
  PowerSupply power;
  InternalFlash a(power), b(power);
  const std::uint8_t data[2] = {0, 0};
  power.plan_cut(3, CutMode::before);
  EXPECT_TRUE(a.write(kBase, data, 2));  // 0
  EXPECT_TRUE(b.erase(kBase));           // 1
  EXPECT_TRUE(b.write(kBase, data, 2));  // 2
  EXPECT_EQ(power.count(), 3u);
  EXPECT_FALSE(a.erase(kBase));          // 3: cut
  EXPECT_TRUE(power.dead());
  EXPECT_FALSE(b.erase(kBase));          // the other part is dead too
  EXPECT_EQ(hw(a, kBase), 0x0000);
  EXPECT_EQ(hw(b, kBase), 0x0000);
  power.power_on();
  power.reset_count();
  EXPECT_EQ(power.count(), 0u);
  EXPECT_TRUE(b.erase(kBase));
  EXPECT_EQ(power.count(), 1u);
}

TEST(SimPowerSupply, PowerOnDropsThePlan) {
  PowerSupply power;
  InternalFlash f(power);
  power.plan_cut(0, CutMode::before);
  power.power_on();
  EXPECT_TRUE(f.erase(kBase));
  power.plan_cut(1, CutMode::torn);
  power.cancel_cut();
  EXPECT_TRUE(f.erase(kBase));
  EXPECT_FALSE(power.dead());
  power.cut();
  EXPECT_TRUE(power.dead());
  EXPECT_FALSE(f.erase(kBase));
}

TEST(SimInternalFlash, FileRoundTrip) {
  PowerSupply power;
  InternalFlash f(power);
  for (std::uint32_t i = 0; i < InternalFlash::kSize; i += 2)
    ASSERT_EQ(f.program_halfword(kBase + i, static_cast<std::uint16_t>(i * 2654435761u >> 7)),
              InternalFlash::Program::ok);
  const std::filesystem::path file = ::testing::TempDir() + "sim_internal_flash_round_trip.bin";
  ASSERT_TRUE(f.save(file));
  EXPECT_EQ(std::filesystem::file_size(file), InternalFlash::kSize);
  InternalFlash g(power);
  ASSERT_TRUE(g.load(file));
  EXPECT_TRUE(std::equal(f.bytes().begin(), f.bytes().end(), g.bytes().begin()));
  std::filesystem::resize_file(file, 1000);
  InternalFlash h(power);
  EXPECT_FALSE(h.load(file));  // wrong size: refused, unchanged
  EXPECT_TRUE(all_ff(h));
  EXPECT_FALSE(h.load(file.string() + ".missing"));
  std::filesystem::remove(file);
}

// A save the disk cannot take (here: the file size limit, as a full disk) fails, keeps the old
// file whole and leaves no part file behind to fill the disk further.
TEST(SimInternalFlash, ASaveThatCannotBeWrittenLeavesTheOldFileAndNoPartFile) {
  PowerSupply power;
  InternalFlash f(power);
  const std::filesystem::path file = ::testing::TempDir() + "sim_internal_flash_full.bin";
  ASSERT_TRUE(f.save(file));  // the old contents: erased
  ASSERT_EQ(f.program_halfword(kBase, 0x1234), InternalFlash::Program::ok);
  rlimit was{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &was), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
  rlimit small = was;
  small.rlim_cur = InternalFlash::kSize / 2;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const bool saved = f.save(file);
  ::setrlimit(RLIMIT_FSIZE, &was);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(saved);
  EXPECT_FALSE(std::filesystem::exists(file.string() + ".part"));
  InternalFlash old(power);
  EXPECT_TRUE(old.load(file));
  EXPECT_TRUE(all_ff(old));
  std::filesystem::remove(file);
}

// The hook sees the new copy written whole while the name still leads to the old contents, and
// the copy it saw is the one that takes the name (so a lock taken there covers the name at once).
TEST(SimInternalFlash, SaveCallsItsHookOnTheWholeNewCopyBeforeItTakesTheName) {
  PowerSupply power;
  InternalFlash f(power);
  const std::filesystem::path file = ::testing::TempDir() + "sim_internal_flash_hook.bin";
  ASSERT_TRUE(f.save(file));  // the old contents: erased
  ASSERT_EQ(f.program_halfword(kBase, 0x1234), InternalFlash::Program::ok);
  int calls = 0;
  struct stat copy {};
  ASSERT_TRUE(f.save(file, [&](const std::filesystem::path& part) {
    ++calls;
    EXPECT_NE(part, file);
    EXPECT_EQ(std::filesystem::file_size(part), InternalFlash::kSize);
    InternalFlash seen(power);
    EXPECT_TRUE(seen.load(part));
    EXPECT_EQ(seen.bytes()[0], 0x34);  // the new contents, whole
    InternalFlash old(power);
    EXPECT_TRUE(old.load(file));
    EXPECT_EQ(old.bytes()[0], 0xFF);  // the name: still the old file
    EXPECT_EQ(::stat(part.c_str(), &copy), 0);
  }));
  EXPECT_EQ(calls, 1);
  struct stat now {};
  ASSERT_EQ(::stat(file.c_str(), &now), 0);
  EXPECT_EQ(now.st_ino, copy.st_ino);
  EXPECT_FALSE(std::filesystem::exists(file.string() + ".part"));
  std::filesystem::remove(file);
}

}  // namespace

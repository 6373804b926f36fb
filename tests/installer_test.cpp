// The bootloader's install logic on its own: what it checks before touching the application,
// what it skips, and how it finishes an install cut after the copy.
#include <gtest/gtest.h>

#include <cstring>
#include <utility>

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/client.hpp"
#include "ota/crc.hpp"
#include "ota/installer.hpp"
#include "sim/device.hpp"
#include "support.hpp"

namespace {

class InstallerTest : public ::testing::TestWithParam<const ota::Layout*> {
 protected:
  const ota::Layout& L = *GetParam();
  test::Parts parts{L};
  ota::FlagStore flags{parts.map};
  ota::Journal journal{parts.map};
  std::vector<std::uint8_t> v1 = sim::make_app_image(L, 1, 9000);

  void SetUp() override { std::copy(v1.begin(), v1.end(), parts.region(L.app).begin()); }

  void stage(const std::vector<std::uint8_t>& img, std::uint32_t crc = 0) { test::stage(parts, img, crc); }
  bool app_is(const std::vector<std::uint8_t>& img) {
    auto app = parts.region(L.app);
    return std::equal(img.begin(), img.end(), app.begin());
  }
};

TEST_P(InstallerTest, NothingStagedNothingDone) {
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::nothing);
  EXPECT_TRUE(inst.app_valid());
  EXPECT_TRUE(app_is(v1));
  EXPECT_EQ(parts.power.count(), 0u);  // not one flash operation
}

TEST_P(InstallerTest, InstallsVerifiesAndMovesTheFlag) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(flags.read(), ota::Flag::success);
  ota::JournalRecord r;
  EXPECT_FALSE(journal.read(r));  // "clear the other flag information"
  EXPECT_TRUE(inst.app_valid());
  EXPECT_EQ(parts.violations(), 0u);
}

TEST_P(InstallerTest, WrongStagedChecksumIsRefusedAndTheAppUntouched) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2, 0x12345678);
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::refused);
  EXPECT_TRUE(app_is(v1));
  EXPECT_EQ(flags.read(), ota::Flag::none);
  EXPECT_TRUE(inst.app_valid());
}

// A refused image leaves nothing behind: its journal record goes with the flag, so that no
// later boot or download takes the refused image for one under way.
TEST_P(InstallerTest, ARefusedImageLeavesNoJournalRecord) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2, 0x12345678);
  ASSERT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::refused);
  ota::JournalRecord r;
  EXPECT_FALSE(journal.read(r));
  EXPECT_EQ(flags.read(), ota::Flag::none);
}

// The 4 bytes that, after bytes whose CRC-32 is `prefix`, make the CRC-32 `target` (CRC-32 is
// affine in them over GF(2): a 32 x 32 system, solved by elimination).
std::uint32_t crc32_forging(std::uint32_t prefix, std::uint32_t target) {
  const auto crc_with = [prefix](std::uint32_t x) {
    std::uint8_t b[4];
    ota::put_u32(b, x);
    return ota::crc32(b, 4, prefix);
  };
  const std::uint32_t c0 = crc_with(0);
  std::uint32_t basis[32] = {}, inputs[32] = {};  // by pivot bit: a column sum and its inputs
  for (int i = 0; i < 32; ++i) {
    std::uint32_t v = crc_with(1u << i) ^ c0, in = 1u << i;
    for (int bit = 31; bit >= 0 && v != 0; --bit) {
      if ((v >> bit & 1u) == 0) continue;
      if (basis[bit] == 0) {
        basis[bit] = v;
        inputs[bit] = in;
        break;
      }
      v ^= basis[bit];
      in ^= inputs[bit];
    }
  }
  std::uint32_t t = target ^ c0, x = 0;
  for (int bit = 31; bit >= 0; --bit)
    if ((t >> bit & 1u) != 0) {
      t ^= basis[bit];
      x ^= inputs[bit];
    }
  return x;
}

// A journal record whose image size reaches past image_limit (into the journal itself) is refused,
// even with a CRC-32 that matches what staging holds there and a sane vector table: the install
// would copy the journal into the application.
TEST_P(InstallerTest, AnImageLargerThanTheImageLimitIsRefused) {
  ASSERT_EQ(L.staging.base + L.image_limit, L.journal().base);
  const std::uint32_t size = L.image_limit + 32;  // the record and the 8 bytes after it
  const auto v2 = sim::make_app_image(L, 2, L.image_limit);
  auto staged = parts.region(L.staging);
  std::copy(v2.begin(), v2.end(), staged.begin());
  constexpr std::uint32_t kCrc = 0x5EED1234;
  ASSERT_TRUE(journal.begin({size, kCrc, 2, 256, static_cast<std::uint16_t>(ota::packet_count_for(size, 256))}));
  ASSERT_TRUE(flags.set(ota::Flag::start));
  // Journal bytes 28-31 (unused) chosen so that the CRC-32 of the staged `size` bytes is kCrc.
  ota::put_u32(staged.data() + size - 4, crc32_forging(ota::crc32(staged.data(), size - 4), kCrc));
  ASSERT_EQ(ota::crc32(staged.data(), size), kCrc);
  ota::JournalRecord r;
  ASSERT_TRUE(journal.read(r));
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::refused);
  EXPECT_TRUE(app_is(v1));
}

TEST_P(InstallerTest, InvalidVectorTableIsRefusedAndTheAppUntouched) {
  auto v2 = sim::make_app_image(L, 2, 20000);
  ota::put_u32(v2.data(), 0xFFFFFFFF);
  stage(v2);
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::refused);
  EXPECT_TRUE(app_is(v1));
}

// A reset handler inside the application area but beyond the image's end would run whatever the
// rest of the area holds (here v1's code, after the install: a crash loop on a real board).
TEST_P(InstallerTest, ResetHandlerBeyondTheImageIsRefusedAndTheAppUntouched) {
  auto v2 = sim::make_app_image(L, 2, 2048);
  ota::put_u32(v2.data() + 4, L.app.base + 20 * 1024 + 1);
  stage(v2);
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::refused);
  EXPECT_TRUE(app_is(v1));
  EXPECT_TRUE(inst.app_valid());
}

// Staging holds the image's first 4 KB only (a download cut short, its flag set all the same):
// refused on its CRC-32, the application untouched.
TEST_P(InstallerTest, IncompleteImageIsRefused) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  auto staged = parts.region(L.staging);
  std::fill(staged.begin() + 4096, staged.begin() + 20000, 0xFF);
  ASSERT_TRUE(journal.begin({20000, ota::crc32(v2.data(), v2.size()), 2, 256, 79}));  // no unit marked
  ASSERT_TRUE(flags.set(ota::Flag::start));
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::refused);
  EXPECT_TRUE(app_is(v1));
}

TEST_P(InstallerTest, IdenticalPagesAreNotRewritten) {
  auto v2 = v1;
  v2[5000] ^= 0xFF;  // one byte in one page differs
  stage(v2);
  const std::uint64_t ops_before = parts.power.count();
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  // The page that differs and the vector table page (always rewritten, last): its copy marker,
  // an erase and eight programs (128-byte chunks of a 1 KB page) each, the two that zero the old
  // vector table first and the new table's own program, + the install's "began" mark +
  // installed marker + flag move + journal.
  const std::uint64_t ops = parts.power.count() - ops_before;
  EXPECT_LE(ops, 2 * (1u + 1u + 8u) + 2u + 1u + 1u + 1u + 2u + 1u);
}

// An install cut after a page's erase finds it blank. An erase cut near its end reads blank but
// may not hold (a weakly erased cell reads 1 now and 0 later, under the code programmed over it):
// a blank page is erased again before it is programmed, not trusted.
TEST_P(InstallerTest, APageThatReadsBlankIsErasedAgainBeforeItIsProgrammed) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  const std::uint32_t page5 = L.app.base + 5 * ota::kFlashPage - sim::InternalFlash::kBase;
  auto app = parts.region(L.app);
  std::fill(app.begin() + 5 * ota::kFlashPage, app.begin() + 6 * ota::kFlashPage, 0xFF);
  const std::uint32_t before = parts.internal.erases(page5);
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.internal.erases(page5), before + 1);
}

// The application already holds the image (the same build pushed again, --force), and no page
// of this install began: nothing is erased or copied again, only the flag moves.
TEST_P(InstallerTest, TheImageTheApplicationAlreadyHoldsIsNotCopiedAgain) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  std::copy(v2.begin(), v2.end(), parts.region(L.app).begin());
  const std::uint64_t ops_before = parts.power.count();
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_LE(parts.power.count() - ops_before, 1u + 2u + 1u);  // marker, flag move, journal
}

TEST_P(InstallerTest, RollsForwardWhenTheCopyWasMarkedInstalled) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  std::copy(v2.begin(), v2.end(), parts.region(L.app).begin());  // the copy had completed
  ASSERT_TRUE(journal.mark_installed());
  ASSERT_TRUE(flags.clear());  // and the flag erase was cut: flag blank
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::finished);
  EXPECT_EQ(flags.read(), ota::Flag::success);
  EXPECT_TRUE(app_is(v2));
}

// A page of the old application that is blank only at its start (erased-fill in the old image,
// or an erase torn by a cut) must still be erased before it is programmed: checking less than the
// whole page would program over old bytes, fail, and fail again at every boot.
TEST_P(InstallerTest, APageBlankOnlyAtItsStartIsErasedBeforeItIsWritten) {
  const std::uint32_t page = parts.internal.geometry().erase_size;
  auto app = parts.region(L.app);
  std::fill_n(app.begin() + 4 * page, 128, 0xFF);  // the rest of page 4 still holds v1
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.violations(), 0u);
}

// The staged image is whole but its last unit's marker reads unset (a marker whose program a cut
// ended can read set while the download goes on and unset later): the CRC-32 says it is whole,
// and it is installed, not refused and thrown away.
TEST_P(InstallerTest, AWholeImageIsInstalledWhateverItsUnitMarkersRead) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  ASSERT_TRUE(journal.begin({20000, ota::crc32(v2.data(), v2.size()), 2, 256,
                             static_cast<std::uint16_t>(ota::packet_count_for(20000, 256))}));
  for (std::uint32_t u = 0; u + 1 < journal.units_for(20000); ++u) ASSERT_TRUE(journal.mark_unit_done(u));
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// An "installed" marker with no valid record (a journal erase torn after the install, the flag
// since acknowledged and cleared) is no install to finish: the flag must not come back as
// OTA-SUCCESS, which would report an upgrade a second time.
TEST_P(InstallerTest, AnInstalledMarkerWithoutARecordIsNothing) {
  ASSERT_TRUE(journal.begin({20000, 0x12345678, 2, 256, 79}));
  ASSERT_TRUE(journal.mark_installed());
  parts.region(L.journal())[ota::Journal::kRecordOffset + 20] ^= 0x01;  // the record's CRC no longer matches
  ota::JournalRecord r;
  ASSERT_FALSE(journal.read(r));
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::nothing);
  EXPECT_EQ(flags.read(), ota::Flag::none);
  EXPECT_TRUE(app_is(v1));
}

// An application flashed by a programmer is not bound by the largest update image: one whose reset
// handler lies past image_limit, still inside the application area, is started.
TEST_P(InstallerTest, AnApplicationMayFillTheWholeApplicationArea) {
  ota::put_u32(parts.region(L.app).data() + 4, L.app.base + L.app.size - ota::kFlashPage + 1);
  EXPECT_TRUE(ota::Installer(parts.map).app_valid());
}

// A flag area a cut left torn (neither text nor blank) is nothing pending, even with a whole image
// and its record in staging: the cut may have been the clear that withdrew that image.
TEST_P(InstallerTest, ATornFlagInstallsNothingWhateverIsStaged) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  parts.region(L.flags)[4] &= 0x0F;  // "OTA-START" with bits of its 'S' cleared
  ASSERT_EQ(flags.read(), ota::Flag::torn);
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::nothing);
  EXPECT_TRUE(app_is(v1));
}

TEST_P(InstallerTest, BlankApplicationIsNotValid) {
  auto app = parts.region(L.app);
  std::fill(app.begin(), app.end(), 0xFF);
  EXPECT_FALSE(ota::Installer(parts.map).app_valid());
}

// An install that could not start (or could not move the flag) leaves a whole application, which
// is started: the device keeps working, and the next boot tries the install again. Only a missing
// vector table (the install got to the application) stops the jump.
TEST_P(InstallerTest, AWholeApplicationIsValidAlsoWithAnInstallPending) {
  ASSERT_TRUE(flags.set(ota::Flag::start));
  EXPECT_TRUE(ota::Installer(parts.map).app_valid());
  auto first_page = parts.region(L.app).subspan(0, ota::kFlashPage);
  std::fill(first_page.begin(), first_page.end(), 0xFF);  // as the copy leaves it until its end
  EXPECT_FALSE(ota::Installer(parts.map).app_valid());
}

// A flash part with faults that come and go (not power cuts): reads of one range fail, or the
// erase of one address.
struct Faulty final : ota::Flash {
  explicit Faulty(ota::Flash& f) : ota::Flash(f.geometry()), inner(f) {}
  ota::Flash& inner;
  ota::Region unreadable{ota::Medium::internal, 0, 0};
  int unreadable_times = -1;  // how many reads of `unreadable` fail (-1: all)
  int unreadable_skip = 0;    // reads of `unreadable` that pass before those that fail
  std::uint32_t bad_erase = 0xFFFFFFFF;
  std::uint32_t flaky_bit = 0xFFFFFFFF;  // reads of this byte after the first have bit 0 flipped
  int flaky_reads = 0;
  std::uint32_t lying_write = 0xFFFFFFFF;  // the next write here takes but reports a failure
                                           // (the port's read-back glitched)
  int lying_skip = 0;                      // writes at lying_write that pass before the one that lies
  std::uint32_t half_erase = 0xFFFFFFFF;   // erases of this page fail with its first 8 bytes kept
  bool read(std::uint32_t a, void* d, std::size_t n) override {
    if (a < unreadable.base + unreadable.size && a + n > unreadable.base && unreadable_times != 0 &&
        unreadable_skip-- <= 0) {
      if (unreadable_times > 0) --unreadable_times;
      return false;
    }
    if (!inner.read(a, d, n)) return false;
    if (flaky_bit >= a && flaky_bit - a < n && flaky_reads++ > 0) static_cast<std::uint8_t*>(d)[flaky_bit - a] ^= 1;
    return true;
  }
  bool write(std::uint32_t a, const void* src, std::size_t n) override {
    const bool lie = a == lying_write && lying_skip-- <= 0;
    if (lie) lying_write = 0xFFFFFFFF;
    return inner.write(a, src, n) && !lie;
  }
  bool erase(std::uint32_t a) override {
    if (a != half_erase) return a != bad_erase && inner.erase(a);
    std::uint8_t kept[8];
    if (inner.read(a, kept, sizeof kept) && inner.erase(a)) inner.write(a, kept, sizeof kept);
    return false;
  }
};

class InstallerFaultTest : public InstallerTest {
 protected:
  Faulty internal{parts.internal};
  Faulty external{parts.external};
  ota::FlashMap faulty{L, internal, &external};
  Faulty& part_of(const ota::Region& r) { return r.medium == ota::Medium::internal ? internal : external; }
  Faulty& staging_part() { return part_of(L.staging); }
  // The marker of unit 0 takes but reports a failure: `client` stores unit 0 of `img` and NAKs
  // flash_error with `next` back at packet 0.
  void store_unit0_with_a_lying_marker(ota::UpdateClient& client, test::FrameWire& wire,
                                       const std::vector<std::uint8_t>& img) {
    part_of(L.journal()).lying_write = L.journal().base + ota::Journal::kUnitsOffset;
    test::FrameWire::start(client, test::start_for(img, 2));
    ASSERT_EQ(wire.reply<ota::StartReply>().status, ota::Status::ok);
    for (std::uint16_t i = 0; i < L.staging_unit / 256; ++i) test::FrameWire::data(client, img, i);
    const ota::Nak nak = wire.reply<ota::Nak>();
    ASSERT_EQ(nak.status, ota::Status::flash_error);
    ASSERT_EQ(nak.next, 0);
  }
};

// The erase of the application's first page fails half done: the page is erased but for its
// first 8 bytes, the vector table (a worn page; an erase cut short by a sagging supply). The old
// application is no longer whole and must not start on a table that still looks sane; the
// device stays in recovery mode, and a boot whose erase works installs v2.
TEST_P(InstallerFaultTest, AFirstPageEraseThatKeepsTheVectorTableStartsNothing) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  internal.half_erase = L.app.base;
  ota::Installer inst(faulty);
  EXPECT_EQ(inst.run(), ota::Installer::Result::failed);
  EXPECT_FALSE(inst.app_valid()) << "a half-erased application would start";
  internal.half_erase = 0xFFFFFFFF;
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.violations(), 0u);
}

// A read error is no verdict on the staged image: it is kept, and the next boot installs it.
TEST_P(InstallerFaultTest, UnreadableStagingIsRetriedNotRefused) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  staging_part().unreadable = ota::Region{L.staging.medium, L.staging.base + 4096, 16};
  ota::Installer inst(faulty);
  EXPECT_EQ(inst.run(), ota::Installer::Result::failed);
  EXPECT_EQ(flags.read(), ota::Flag::start);
  ota::JournalRecord r;
  EXPECT_TRUE(journal.read(r));
  EXPECT_TRUE(app_is(v1));
  staging_part().unreadable = {};
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// The flag area cannot be read (a W25Q not answering yet) with the application half copied: no
// verdict either. Taken as "nothing pending", the bootloader would wait in recovery mode for a
// server while a whole image waits in staging; failed, it tries again.
TEST_P(InstallerFaultTest, AFlagThatCannotBeReadIsNoVerdict) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  auto app = parts.region(L.app);
  std::fill(app.begin(), app.begin() + ota::kFlashPage, 0xFF);  // the copy had begun
  part_of(L.flags).unreadable = ota::Region{L.flags.medium, L.flags.base, 1};
  part_of(L.flags).unreadable_times = 1;
  ota::Installer inst(faulty);
  EXPECT_EQ(inst.run(), ota::Installer::Result::failed);
  EXPECT_FALSE(inst.app_valid());
  EXPECT_EQ(flags.read(), ota::Flag::start);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// The journal lives in staging too: a read error on its record is no verdict either. Taken as
// "no record", it would clear OTA-START and the journal, and throw away a download the server was
// told had succeeded. (The units' markers are not read by the install at all.)
TEST_P(InstallerFaultTest, UnreadableJournalIsRetriedNotRefused) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  const ota::Region j = L.journal();
  {
    const ota::Region part{j.medium, j.base + ota::Journal::kRecordOffset, ota::Journal::kRecordSize};
    stage(v2);
    staging_part().unreadable = part;
    staging_part().unreadable_times = 1;  // one glitch
    EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed) << std::hex << part.base;
    EXPECT_EQ(flags.read(), ota::Flag::start);
    ota::JournalRecord r;
    EXPECT_TRUE(journal.read(r)) << "the journal was erased";
    EXPECT_TRUE(app_is(v1));
    EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
    EXPECT_TRUE(app_is(v2));
    staging_part().unreadable = {};
    std::copy(v1.begin(), v1.end(), parts.region(L.app).begin());
    ASSERT_TRUE(flags.clear());
  }
}

using test::FrameWire;
using test::start_for;

// A unit's marker write that took but reported a failure: the device NAKs flash_error and the
// server goes back to the start of the unit. The unit is marked done, so a reset now resumes
// after it: it must not have been erased again by the packets that followed the NAK.
TEST_P(InstallerFaultTest, AMarkerThatTookDespiteItsErrorKeepsItsUnit) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  const auto per_unit = static_cast<std::uint16_t>(L.staging_unit / 256);
  const auto count = static_cast<std::uint16_t>(ota::packet_count_for(20000, 256));
  {
    FrameWire wire;
    ota::UpdateClient client(faulty, wire, ota::DeviceInfo{});
    ASSERT_NO_FATAL_FAILURE(store_unit0_with_a_lying_marker(client, wire, v2));
    FrameWire::data(client, v2, 0);  // the server goes back, and the link drops here
  }
  FrameWire wire;
  ota::UpdateClient client(faulty, wire, ota::DeviceInfo{});  // after a reset
  FrameWire::start(client, start_for(v2, 2));
  const ota::StartReply r = wire.reply<ota::StartReply>();
  ASSERT_EQ(r.status, ota::Status::ok);
  EXPECT_EQ(r.next, per_unit) << "unit 0 is marked done";
  for (std::uint16_t i = r.next; i < count; ++i) FrameWire::data(client, v2, i);
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::ok) << "unit 0 was erased again after its marker";
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// The same marker, and a glitch on the first read of it after the NAK: not knowing whether the
// unit is done is no reason to erase it (the packets after the first would then be skipped as
// already stored). The packet fails instead, and the server sends it again.
TEST_P(InstallerFaultTest, AMarkerThatCannotBeReadIsNoReasonToEraseItsUnit) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  const ota::Region j = L.journal();
  Faulty& journal_part = part_of(j);
  const auto count = static_cast<std::uint16_t>(ota::packet_count_for(20000, 256));
  FrameWire wire;
  ota::UpdateClient client(faulty, wire, ota::DeviceInfo{});
  ASSERT_NO_FATAL_FAILURE(store_unit0_with_a_lying_marker(client, wire, v2));
  journal_part.unreadable = ota::Region{j.medium, j.base + ota::Journal::kUnitsOffset, 2};
  journal_part.unreadable_times = 1;
  FrameWire::data(client, v2, 0);  // the server goes back
  EXPECT_EQ(wire.reply<ota::Nak>().status, ota::Status::flash_error);
  for (std::uint16_t i = 0; i < count; ++i) FrameWire::data(client, v2, i);  // and again
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::ok) << "unit 0 was erased again";
  EXPECT_TRUE(client.reset_requested());
}

// A device whose install failed (v1 runs, v2 staged with OTA-START) is offered another image
// whose packet 0 contradicts its START: refused, and refused before anything is erased. The
// staged v2 and its flag are still there, and the next boot installs it.
TEST_P(InstallerTest, AnImageRefusedAtPacket0LeavesThePendingInstallAlone) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  const auto v3 = sim::make_app_image(L, 3, 20000);
  ota::Start s = start_for(v3, 3);
  s.reset_vector = L.app.base + 0x201;  // sane, but not what packet 0 carries
  test::FrameWire wire;
  ota::UpdateClient client(parts.map, wire, ota::DeviceInfo{});
  test::FrameWire::start(client, s);
  ASSERT_EQ(wire.reply<ota::StartReply>().status, ota::Status::ok);
  test::FrameWire::data(client, v3, 0);
  ASSERT_EQ(wire.reply<ota::Nak>().status, ota::Status::invalid_image);
  EXPECT_EQ(flags.read(), ota::Flag::start);
  ota::JournalRecord r;
  EXPECT_TRUE(journal.read(r)) << "the staged image's journal was erased";
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// The same device is offered v3, and the read of its flag area fails once at packet 0: the flag
// may say OTA-START, so it is cleared all the same. Left standing over v3's download, it would make
// the bootloader refuse v3's unfinished journal at the next reset, and wipe it.
TEST_P(InstallerFaultTest, AFlagReadErrorWhenANewImageBeginsStillClearsTheFlag) {
  stage(sim::make_app_image(L, 2, 20000));
  const auto v3 = sim::make_app_image(L, 3, 20000);
  FrameWire wire;
  ota::DeviceInfo info;
  info.role = ota::Role::recovery;
  ota::UpdateClient client(faulty, wire, info);
  FrameWire::start(client, start_for(v3, 3));
  ASSERT_EQ(wire.reply<ota::StartReply>().status, ota::Status::ok);
  part_of(L.flags).unreadable = ota::Region{L.flags.medium, L.flags.base, 1};
  part_of(L.flags).unreadable_times = 1;
  const auto per_unit = static_cast<std::uint16_t>(L.staging_unit / 256);
  for (std::uint16_t i = 0; i < per_unit + 1; ++i) FrameWire::data(client, v3, i);  // unit 0 done
  // a reset here (a power cut, or recovery's idle reset)
  EXPECT_NE(flags.read(), ota::Flag::start) << "OTA-START stands over v3's download";
  EXPECT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::nothing);
  FrameWire again;
  ota::UpdateClient after(faulty, again, info);
  FrameWire::start(after, start_for(v3, 3));
  const ota::StartReply r = again.reply<ota::StartReply>();
  EXPECT_EQ(r.status, ota::Status::ok);
  EXPECT_EQ(r.next, per_unit) << "v3's download did not resume";
}

// After the CRC-32, the client reads the image's first bytes again for its app info, which must
// not name the other layout. A read error there is no verdict: not a pass (the image would be
// installed and run on the wrong flash map), but a flash error that keeps the download, whose
// next offer checks again and refuses it.
TEST_P(InstallerFaultTest, AnAppInfoThatCannotBeReadIsNoPassForTheOtherLayout) {
  auto img = sim::make_app_image(L, 2, 20000);
  const auto info = ota::AppInfo::make(L.id == ota::LayoutId::internal ? ota::LayoutId::external
                                                                       : ota::LayoutId::internal, 2);
  std::memcpy(img.data() + 0x150, &info, sizeof info);
  const ota::Start s = start_for(img, 2);
  FrameWire wire;
  ota::UpdateClient client(faulty, wire, ota::DeviceInfo{});
  FrameWire::start(client, s);
  ASSERT_EQ(wire.reply<ota::StartReply>().status, ota::Status::ok);
  for (std::uint16_t i = 0; i + 1 < s.packet_count; ++i) FrameWire::data(client, img, i);
  staging_part().unreadable = ota::Region{L.staging.medium, L.staging.base, 1};
  staging_part().unreadable_skip = 1;  // the CRC-32's read, then the app info's fails once
  staging_part().unreadable_times = 1;
  FrameWire::data(client, img, static_cast<std::uint16_t>(s.packet_count - 1));
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::flash_error);
  EXPECT_NE(flags.read(), ota::Flag::start);
  FrameWire::start(client, s);  // offered again: every packet is there, the check reads it now
  const ota::StartReply again = wire.reply<ota::StartReply>();
  ASSERT_EQ(again.status, ota::Status::ok);
  ASSERT_EQ(again.next, s.packet_count) << "the download was kept";
  FrameWire::data(client, img, static_cast<std::uint16_t>(s.packet_count - 1));
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::invalid_image);
  EXPECT_NE(flags.read(), ota::Flag::start);
  EXPECT_TRUE(app_is(v1));
}

// The last flag write takes but the port reports a failure (its read-back glitched). The flag
// says OTA-START, so the bootloader will install the image: the server must hear "ok", and the
// application must reset, not refuse every START as "busy" while telling the server it waits for
// a reset that never comes.
TEST_P(InstallerFaultTest, AFlagWriteThatTookDespiteItsErrorCounts) {
  const auto v2 = sim::make_app_image(L, 2, 3000);
  part_of(L.flags).lying_write = L.flags.base;
  FrameWire wire;
  ota::DeviceInfo info;
  info.app_version = 1;
  ota::UpdateClient client(faulty, wire, info);
  FrameWire::start(client, start_for(v2, 2));
  ASSERT_EQ(wire.reply<ota::StartReply>().status, ota::Status::ok);
  for (std::uint16_t i = 0; i < 12; ++i) FrameWire::data(client, v2, i);
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::ok);
  EXPECT_TRUE(client.reset_requested());
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// A flash error opens a gap (the device goes back to the unit's start): the frames of the window
// that follow it get no NAK of their own, or the server would go back once for each.
TEST_P(InstallerFaultTest, AFlashErrorIsTheOnlyNakOfItsGap) {
  const auto img = sim::make_app_image(L, 2, 12000);
  const auto per_unit = static_cast<std::uint16_t>(L.staging_unit / 256);
  staging_part().bad_erase = L.staging.base + L.staging_unit;
  FrameWire wire;
  ota::UpdateClient client(faulty, wire, ota::DeviceInfo{});
  FrameWire::start(client, start_for(img, 2));
  wire.out.clear();
  for (std::uint16_t i = 0; i < per_unit + 3; ++i) FrameWire::data(client, img, i);  // unit 1's erase fails
  ota::FrameDecoderBuffer<64> dec;
  std::vector<ota::Nak> naks;
  for (std::uint8_t b : wire.out)
    if (ota::Nak k; dec.feed(b) == ota::FrameDecoder::Event::frame && ota::decode(dec.frame(), k)) naks.push_back(k);
  ASSERT_EQ(naks.size(), 1u);
  EXPECT_EQ(naks[0].status, ota::Status::flash_error);
  EXPECT_EQ(naks[0].next, per_unit);
}

// An install that fails on a flash operation: the application is not started (its vector table
// is gone), the bootloader's recovery client says why and takes the image again instead of
// answering "busy" forever, and once the fault is gone the next boot installs it.
TEST_P(InstallerFaultTest, AFailedInstallLeavesARecoveryThatTakesTheImageAgain) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  internal.bad_erase = L.app.base + 4 * ota::kFlashPage;
  ota::Installer inst(faulty);
  ASSERT_EQ(inst.run(), ota::Installer::Result::failed);
  EXPECT_FALSE(inst.app_valid());
  EXPECT_EQ(flags.read(), ota::Flag::start);

  FrameWire wire;
  ota::DeviceInfo info;
  info.role = ota::Role::recovery;
  ota::UpdateClient client(faulty, wire, info);
  client.boot();
  EXPECT_EQ(wire.reply<ota::Hello>().report, ota::Report::install_failed);
  FrameWire::start(client, start_for(v2, 2));
  // The staged image is whole: the download resumes after its last packet and ends at once.
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::ok);
  EXPECT_TRUE(client.reset_requested());

  internal.bad_erase = 0xFFFFFFFF;
  ota::Installer again(faulty);
  EXPECT_EQ(again.run(), ota::Installer::Result::installed);
  EXPECT_TRUE(again.app_valid());
  EXPECT_TRUE(app_is(v2));
}

// The staged image reads right for the check and wrong for the copy (a marginal cell, a glitch on
// the SPI bus): the copy fails its CRC-32, and its vector table must not be written, since the
// flag that keeps it from starting can be lost afterwards. Here it is: in recovery, another image
// is offered (it clears the flag, so that its own download resumes across resets) and the push
// stops half-way; the next boots find nothing to install and must not start the bad copy.
TEST_P(InstallerFaultTest, ACopyThatReadsBackWrongIsNeverStarted) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  staging_part().flaky_bit = L.staging.base + 5000;
  ota::Installer inst(faulty);
  ASSERT_EQ(inst.run(), ota::Installer::Result::failed);
  std::uint8_t vt[8];
  ASSERT_TRUE(parts.internal.read(L.app.base, vt, 8));
  EXPECT_FALSE(ota::vector_table_sane(L, ota::get_u32(vt), ota::get_u32(vt + 4), L.app.size));

  const auto v3 = sim::make_app_image(L, 3, 20000);
  std::uint16_t resumed_at = 0;
  for (int boot = 0; boot < 2; ++boot) {
    FrameWire wire;
    ota::DeviceInfo info;
    info.role = ota::Role::recovery;
    ota::UpdateClient client(parts.map, wire, info);
    client.boot();
    EXPECT_EQ(wire.reply<ota::Hello>().report, boot == 0 ? ota::Report::install_failed : ota::Report::none);
    FrameWire::start(client, start_for(v3, 3));
    const ota::StartReply r = wire.reply<ota::StartReply>();
    ASSERT_EQ(r.status, ota::Status::ok);
    resumed_at = r.next;
    for (std::uint16_t i = r.next; i < r.next + 20; ++i) FrameWire::data(client, v3, i);  // then the server goes away
    EXPECT_EQ(flags.read(), ota::Flag::none) << "the failed install's flag is gone with the new image";
    ota::Installer next(parts.map);  // reset
    EXPECT_EQ(next.run(), ota::Installer::Result::nothing);
    EXPECT_FALSE(next.app_valid()) << "the copy that failed its CRC-32 would be started";
  }
  EXPECT_GT(resumed_at, 0u) << "the second push did not resume the first one's download";
}

// The vector table's own program fails (here: it took, but the port's read-back reported a
// failure): design.md says the table is "zeroed again if its own program fails", so that nothing
// a failed program left can be started once the flag is lost.
TEST_P(InstallerFaultTest, AFailedVectorTableProgramLeavesNoVectorTable) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  internal.lying_write = L.app.base;  // the first write at the area's base zeros the old table,
  internal.lying_skip = 1;            // the second is the new table's program
  ota::Installer inst(faulty);
  ASSERT_EQ(inst.run(), ota::Installer::Result::failed);
  std::uint8_t vt[8];
  ASSERT_TRUE(parts.internal.read(L.app.base, vt, 8));
  EXPECT_FALSE(ota::vector_table_sane(L, ota::get_u32(vt), ota::get_u32(vt + 4), L.app.size))
      << "a vector table whose program reported a failure was left in place";
  EXPECT_EQ(flags.read(), ota::Flag::start);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);  // the next boot
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.violations(), 0u);
}

// RESULT ok promises that "OTA-START" is written: when it could not be (here the erase of the
// flag area, which still holds the previous update's unacknowledged OTA-SUCCESS, fails), the
// device must say flash_error and must not reset into an install that will not happen.
TEST_P(InstallerFaultTest, AFlagThatCannotBeWrittenIsNoSuccess) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  ASSERT_TRUE(flags.set(ota::Flag::success));
  part_of(L.flags).bad_erase = L.flags.base;
  FrameWire wire;
  ota::UpdateClient client(faulty, wire, ota::DeviceInfo{});
  FrameWire::start(client, start_for(v2, 2));
  ASSERT_EQ(wire.reply<ota::StartReply>().status, ota::Status::ok);
  const auto count = static_cast<std::uint16_t>(ota::packet_count_for(20000, 256));
  for (std::uint16_t i = 0; i < count; ++i) FrameWire::data(client, v2, i);
  EXPECT_EQ(wire.reply<ota::Result>().status, ota::Status::flash_error);
  EXPECT_FALSE(client.reset_requested());
  EXPECT_NE(flags.read(), ota::Flag::start);
}

// A page that no longer erases (worn) but holds what both images have there is skipped by
// the install that begins; a power cut later in that install must not turn it into an install
// that can never end. The old code skipped equal pages on resume too; "every page again when
// resumed" erases the worn page and fails at every boot from then on, the device stuck in
// recovery mode with the whole image staged.
TEST_P(InstallerFaultTest, AWornPageBothImagesShareDoesNotStopAResumedInstall) {
  auto v2 = sim::make_app_image(L, 2, 20000);
  constexpr std::uint32_t kShared = 3;  // page 3: the same bytes in v1 and v2 (a library unchanged)
  std::copy_n(v1.begin() + kShared * ota::kFlashPage, ota::kFlashPage, v2.begin() + kShared * ota::kFlashPage);
  stage(v2);
  internal.bad_erase = L.app.base + kShared * ota::kFlashPage;  // worn: its erase fails
  // The install begins (v1 valid: page 3 is equal and skipped) and a power cut ends it further on.
  parts.power.reset_count();
  parts.power.plan_cut(60, sim::CutMode::before);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  ASSERT_TRUE(parts.power.dead()) << "the cut did not come";
  parts.power.cancel_cut();
  parts.power.power_on();
  ASSERT_FALSE(ota::Installer(faulty).app_valid()) << "the cut came before the install began";
  // The next boots resume the install.
  ota::Installer::Result r = ota::Installer::Result::failed;
  for (int boot = 0; boot < 3 && r == ota::Installer::Result::failed; ++boot) r = ota::Installer(faulty).run();
  EXPECT_EQ(r, ota::Installer::Result::installed)
      << "the resumed install erases the worn page the image does not change, fails, and does so at every boot";
  EXPECT_TRUE(app_is(v2));
}

// The same worn page both images share, with the cut early: after the old vector table was zeroed
// and before the first page's copy marker (or a W25Q read glitch in the first page's compare:
// any failure there). The next boot finds no page begun and no sane vector table, takes it for
// "an install the journal forgot" and writes every page: it erases the worn page, marks it
// begun, fails, and from then on writes it again as "the last page begun" at every boot.
TEST_P(InstallerFaultTest, AWornSharedPageDoesNotStopAnInstallCutBeforeItsFirstPage) {
  auto v2 = sim::make_app_image(L, 2, 20000);
  constexpr std::uint32_t kShared = 3;
  std::copy_n(v1.begin() + kShared * ota::kFlashPage, ota::kFlashPage, v2.begin() + kShared * ota::kFlashPage);
  stage(v2);
  internal.bad_erase = L.app.base + kShared * ota::kFlashPage;  // worn: its erase fails
  parts.power.reset_count();
  parts.power.plan_cut(2, sim::CutMode::before);  // ops 0-1 zero the table; op 2 is page 1's marker
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  ASSERT_TRUE(parts.power.dead()) << "the cut did not come";
  parts.power.cancel_cut();
  parts.power.power_on();
  ASSERT_FALSE(ota::Installer(faulty).app_valid()) << "the cut came before the table was zeroed";
  for (std::uint32_t p = 0; p < 20; ++p) ASSERT_EQ(journal.copy_mark(p), ota::Found::no) << "page " << p;
  ota::Installer::Result r = ota::Installer::Result::failed;
  int boot = 0;
  for (; boot < 5 && r == ota::Installer::Result::failed; ++boot) r = ota::Installer(faulty).run();
  EXPECT_EQ(r, ota::Installer::Result::installed)
      << "after " << boot << " boots: the install cut before its first page went to 'every page', "
         "erased the worn page both images share, and fails at every boot";
  EXPECT_TRUE(app_is(v2));
}

// An install of the very image the application already holds (a copy finished but for its
// marker, or a push of the same build with --force) used to leave the application as it was. Now
// its vector table is zeroed and its first page erased: on a first page that no longer erases the
// working application is destroyed, and the device is left in recovery mode for ever.
TEST_P(InstallerFaultTest, AnInstallOfTheImageTheApplicationHoldsDoesNotDestroyIt) {
  stage(v1);  // the application holds exactly the staged image
  internal.bad_erase = L.app.base;  // its first page no longer erases
  ota::Installer inst(faulty);
  const ota::Installer::Result r = inst.run();
  EXPECT_TRUE(inst.app_valid()) << "the running application, the staged image itself, was destroyed ("
                                << ota::to_string(r) << ")";
  EXPECT_TRUE(app_is(v1));
}

// An install of v2 cut in page 3's last program (page 3 reads whole, marginal), pages 1-3 marked
// begun; the application's vector table zeroed. `marked`: the pages whose copy marker took.
static void leave_install_cut_in_page_3(test::Parts& parts, const ota::Layout& L, const std::vector<std::uint8_t>& v2,
                                        std::initializer_list<std::uint32_t> marked) {
  auto app = parts.region(L.app);
  std::fill_n(app.begin(), 8, 0);
  std::copy_n(v2.begin() + ota::kFlashPage, 3 * ota::kFlashPage, app.begin() + ota::kFlashPage);
  ota::Journal j{parts.map};
  // The install marked that it began, as it does before its first erase: without that mark (and
  // with the vector table zeroed) every page would be written again, whatever the markers say.
  ASSERT_TRUE(j.set_install_mark(ota::Journal::kBeganOffset));
  for (std::uint32_t p : marked) ASSERT_TRUE(j.mark_copy_begun(p));
}

// One read of page 0's copy marker fails (a W25Q read glitch). Taken as set, it made page 0 the
// last page begun, and page 3, the page the cut may have left marginal, read equal and was
// skipped. A read error is no verdict: the boot fails, and the next one writes page 3 again.
TEST_P(InstallerFaultTest, AMarkerReadErrorDoesNotLetTheLastPageBegunBeSkipped) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  leave_install_cut_in_page_3(parts, L, v2, {1, 2, 3});
  auto& j = part_of(L.journal());
  j.unreadable = ota::Region{L.journal().medium, L.journal().base + ota::Journal::kCopyOffset, 2};
  j.unreadable_times = 1;
  const std::uint32_t page3 = L.app.base - sim::InternalFlash::kBase + 3 * ota::kFlashPage;
  const std::uint32_t erases = parts.internal.erases(page3);
  ota::Installer::Result r = ota::Installer::Result::failed;
  for (int boot = 0; boot < 2 && r == ota::Installer::Result::failed; ++boot) r = ota::Installer(faulty).run();
  ASSERT_EQ(r, ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.internal.erases(page3), erases + 1)
      << "the last page begun, which a cut may have left marginal, was trusted because it reads equal";
}

// The same read error, but one that stays (a W25Q region that no longer reads, a marker cell gone
// bad): every boot fails before it writes anything, the application has no vector table, and the
// device waits in recovery mode for ever. The recovery client takes the same image again (it
// resumes: the journal is kept, the bad marker with it), and another image cannot help either:
// the marker is read at every install of more than 3 pages. Before, the marker counted as set and
// the install ended; a marker that cannot be read could count as "begun" for the rewrite (every
// page from it written again) instead of stopping the install.
TEST_P(InstallerFaultTest, ACopyMarkerThatNeverReadsDoesNotStopTheInstallForEver) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  leave_install_cut_in_page_3(parts, L, v2, {1, 2, 3});
  auto& j = part_of(L.journal());
  j.unreadable = ota::Region{L.journal().medium, L.journal().base + ota::Journal::kCopyOffset + 2 * 3, 2};
  j.unreadable_times = -1;  // for good
  ota::JournalRecord rec;
  ASSERT_TRUE(ota::Journal(faulty).read(rec)) << "the record itself reads";
  ota::Installer::Result r = ota::Installer::Result::failed;
  int boot = 0;
  for (; boot < 10 && r == ota::Installer::Result::failed; ++boot) r = ota::Installer(faulty).run();
  EXPECT_EQ(r, ota::Installer::Result::installed)
      << "after " << boot << " boots (" << ota::to_string(r, L.staging.medium)
      << "): one copy marker that cannot be read fails every boot, the device in recovery for ever";
  EXPECT_TRUE(app_is(v2));
  EXPECT_TRUE(ota::Installer(faulty).app_valid());
}

// "Page 0, copied last, stays last" assumes no other page is begun after page 0's marker. One is
// when a copy failed its CRC-32 (a staging read that glitched while page 4 was copied: page 0
// was marked and written, the verify failed): the next boot finds page 4 different, marks it
// and writes it again, and a cut ends its last program (page 4 reads whole, marginal). The boot
// after takes page 0 for the last page begun and skips page 4 because it reads equal.
TEST_P(InstallerFaultTest, APageBegunAfterThePage0MarkerIsStillWrittenAgainAfterACut) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  constexpr std::uint32_t kPage = ota::kFlashPage;
  staging_part().flaky_bit = L.staging.base + 4 * kPage + 100;  // page 4 copied wrong
  ASSERT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  ASSERT_EQ(journal.copy_mark(0), ota::Found::yes) << "page 0 was begun";
  staging_part().flaky_bit = 0xFFFFFFFF;
  // Boot 2: zero the table (2), page 4's marker, erase, 8 programs: cut before the last program.
  parts.power.reset_count();
  parts.power.plan_cut(2 + 1 + 1 + 7, sim::CutMode::before);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  ASSERT_TRUE(parts.power.dead());
  parts.power.cancel_cut();
  parts.power.power_on();
  auto app = parts.region(L.app);
  ASSERT_FALSE(std::equal(v2.begin() + 4 * kPage, v2.begin() + 5 * kPage, app.begin() + 4 * kPage))
      << "the cut did not come in page 4's last program";
  std::copy(v2.begin() + 4 * kPage, v2.begin() + 5 * kPage, app.begin() + 4 * kPage);  // cut program, reading whole
  const std::uint32_t page4 = L.app.base - sim::InternalFlash::kBase + 4 * kPage;
  const std::uint32_t erases = parts.internal.erases(page4);
  ASSERT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.internal.erases(page4), erases + 1)
      << "page 4, the page a cut may have left marginal, was trusted: page 0's older marker was taken for the last page begun";
  EXPECT_EQ(parts.violations(), 0u);
}

// Zeroing the old vector table reports an error (here: it took, but the port's read-back said
// no): the install stops there, before any page of the application is erased.
TEST_P(InstallerFaultTest, AVectorTableZeroThatReportsAnErrorErasesNothing) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  internal.lying_write = L.app.base + 6;  // the reset vector's high half-word, zeroed first
  const std::uint32_t page1 = L.app.base - sim::InternalFlash::kBase + ota::kFlashPage;
  const std::uint32_t erases = parts.internal.erases(page1);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  EXPECT_EQ(parts.internal.erases(page1), erases) << "pages were erased after the table's zero failed";
  EXPECT_EQ(flags.read(), ota::Flag::start);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);  // the next boot
  EXPECT_TRUE(app_is(v2));
}

// A program of one page of the copy reports an error (it took, but the port's read-back said no):
// the install fails there, its vector table is not written, and the next boot installs.
TEST_P(InstallerFaultTest, APageProgramThatReportsAnErrorFailsTheInstall) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  internal.lying_write = L.app.base + 5 * ota::kFlashPage;
  ota::Installer inst(faulty);
  EXPECT_EQ(inst.run(), ota::Installer::Result::failed);
  EXPECT_FALSE(inst.app_valid());
  EXPECT_EQ(flags.read(), ota::Flag::start);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// The "installed" marker reports an error (it took, but the read-back said no): the flag area is
// not erased on a marker not known to hold, since a cut in that erase would then lose the install.
// The boot fails with OTA-START kept, and the next one finds the marker and finishes.
TEST_P(InstallerFaultTest, AnInstalledMarkerThatReportsAnErrorKeepsTheFlag) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  part_of(L.journal()).lying_write = L.journal().base + ota::Journal::kInstalledOffset;
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  EXPECT_EQ(flags.read(), ota::Flag::start);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::finished);
  EXPECT_EQ(flags.read(), ota::Flag::success);
  EXPECT_TRUE(app_is(v2));
}

// One read of the copy marker of page 3, the last page begun, fails: the journal cannot say which
// page is the last begun, so every page is written again, page 3 (which a cut may have left
// marginal) among them, not skipped because it reads equal.
TEST_P(InstallerFaultTest, AnUnreadableMarkerOfTheLastPageBegunStillHasItWrittenAgain) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  leave_install_cut_in_page_3(parts, L, v2, {1, 2, 3});
  auto& j = part_of(L.journal());
  j.unreadable = ota::Region{L.journal().medium, L.journal().base + ota::Journal::kCopyOffset + 2 * 3, 2};
  j.unreadable_times = 1;
  const std::uint32_t page3 = L.app.base - sim::InternalFlash::kBase + 3 * ota::kFlashPage;
  const std::uint32_t erases = parts.internal.erases(page3);
  ota::Installer::Result r = ota::Installer::Result::failed;
  for (int boot = 0; boot < 2 && r == ota::Installer::Result::failed; ++boot) r = ota::Installer(faulty).run();
  ASSERT_EQ(r, ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.internal.erases(page3), erases + 1) << "the last page begun was trusted because it reads equal";
}

// An install cut in the last program of the image's last page, a partial one (20000 B: page 19
// holds 544 B): that page is the last begun and is written again, not trusted because it reads
// whole.
TEST_P(InstallerTest, APartialLastPageCutInItsProgramIsWrittenAgain) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  auto app = parts.region(L.app);
  std::fill_n(app.begin(), 8, 0);
  std::copy(v2.begin() + ota::kFlashPage, v2.end(), app.begin() + ota::kFlashPage);
  for (std::uint32_t p = 1; p <= 19; ++p) ASSERT_TRUE(journal.mark_copy_begun(p));
  ASSERT_TRUE(journal.set_install_mark(ota::Journal::kBeganOffset));  // the install had begun
  const std::uint32_t page19 = L.app.base - sim::InternalFlash::kBase + 19 * ota::kFlashPage;
  const std::uint32_t erases = parts.internal.erases(page19);
  ASSERT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.internal.erases(page19), erases + 1) << "the partial last page, begun last, was trusted";
}

// An install cut in its first page, the one copied last (every other page copied and marked
// begun before it): the boot after writes that page again and no other, since page 0 is the
// last page begun whatever the numbers of the others.
TEST_P(InstallerTest, AnInstallCutInItsFirstPageWritesOnlyThatPageAgain) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  auto app = parts.region(L.app);
  std::copy(v2.begin(), v2.end(), app.begin());
  std::fill_n(app.begin(), 8, 0);  // the table zeroed until the very end
  for (std::uint32_t p = 0; p <= 19; ++p) ASSERT_TRUE(journal.mark_copy_begun(p));
  ASSERT_TRUE(journal.set_install_mark(ota::Journal::kBeganOffset));
  const std::uint32_t page19 = L.app.base - sim::InternalFlash::kBase + 19 * ota::kFlashPage;
  const std::uint32_t page0 = L.app.base - sim::InternalFlash::kBase;
  const std::uint32_t erases19 = parts.internal.erases(page19), erases0 = parts.internal.erases(page0);
  ASSERT_EQ(ota::Installer(parts.map).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
  EXPECT_EQ(parts.internal.erases(page0), erases0 + 1);
  EXPECT_EQ(parts.internal.erases(page19), erases19) << "a page copied before page 0 was written again";
}

// A read error while a page is compared with staging (a W25Q glitch) is no verdict that the page
// is equal: the boot stops there, before any later page is erased, and the next one installs.
TEST_P(InstallerFaultTest, AReadErrorWhileComparingAPageStopsTheInstallThere) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  auto& s = staging_part();
  s.unreadable = ota::Region{L.staging.medium, L.staging.base + 5 * ota::kFlashPage, 16};
  s.unreadable_skip = 1;  // the staged image's check reads it whole; the compare fails
  s.unreadable_times = 1;
  const std::uint32_t page6 = L.app.base - sim::InternalFlash::kBase + 6 * ota::kFlashPage;
  const std::uint32_t erases = parts.internal.erases(page6);
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::failed);
  EXPECT_EQ(parts.internal.erases(page6), erases) << "the install went on past a page it could not compare";
  EXPECT_EQ(ota::Installer(faulty).run(), ota::Installer::Result::installed);
  EXPECT_TRUE(app_is(v2));
}

// Journal::clear() on a journal it cannot read (a W25Q read glitch) does not take it for blank:
// it erases it.
TEST_P(InstallerFaultTest, AJournalThatCannotBeReadIsErasedNotTakenForBlank) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
  auto& j = part_of(L.journal());
  j.unreadable = ota::Region{L.journal().medium, L.journal().base, 2};
  j.unreadable_times = 1;
  EXPECT_TRUE(ota::Journal(faulty).clear());
  ota::JournalRecord r;
  EXPECT_FALSE(journal.read(r)) << "the record survived a clear";
}

INSTANTIATE_TEST_SUITE_P(Layouts, InstallerFaultTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

INSTANTIATE_TEST_SUITE_P(Layouts, InstallerTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

TEST(VectorTable, Rules) {
  const auto& L = ota::kInternalLayout;
  const std::uint32_t area = L.app.size;
  EXPECT_TRUE(ota::vector_table_sane(L, 0x20005000, 0x08002101, area));
  EXPECT_TRUE(ota::vector_table_sane(L, 0x20001000, 0x08008FFF, area));
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005004, 0x08002101, area));  // above SRAM
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20000000, 0x08002101, area));  // empty stack
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20004FFE, 0x08002101, area));  // misaligned
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08002100, area));  // ARM, not Thumb
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08001001, area));  // in the bootloader
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08009001, area));  // in staging
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08002001, area));  // on the table's own two words
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08002007, area));
  EXPECT_TRUE(ota::vector_table_sane(L, 0x20005000, 0x08002009, area));   // just past them
  EXPECT_TRUE(ota::vector_table_sane(ota::kExternalLayout, 0x20005000, 0x08009001, ota::kExternalLayout.app.size));
  EXPECT_FALSE(ota::vector_table_sane(L, 0xFFFFFFFF, 0xFFFFFFFF, area));  // erased flash
  // The reset handler lies inside the image, not just inside the application area.
  EXPECT_TRUE(ota::vector_table_sane(L, 0x20005000, 0x08002000 + 0x7FE + 1, 0x800));   // its last half-word
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08002000 + 0x800 + 1, 0x800));  // just past its end
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08002101, area + 2));           // larger than the area
}

}  // namespace

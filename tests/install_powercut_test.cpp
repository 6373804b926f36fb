// Power cuts inside the install itself, two at a time, with the flag lost after a cut (a refusal,
// a dead W25Q, a torn flag area: a half-copied application must never be started), and inside
// a recovery download that replaces an image whose install failed. tests/powercut_test.cpp cuts
// whole updates once; this goes deeper into the bootloader's part: after every cut the device must
// end with exactly v2 installed, and whatever it is left with must never start a mixed copy.
#include <gtest/gtest.h>

#include <functional>

#include "ota/installer.hpp"
#include "sim/device.hpp"
#include "support.hpp"

namespace {

using test::FrameWire;
using test::start_for;
using Result = ota::Installer::Result;

// A board with v1 installed and v2 staged with "OTA-START", as the client leaves it.
struct Staged {
  Staged(const ota::Layout& l, std::uint64_t seed, const std::vector<std::uint8_t>& v1,
         const std::vector<std::uint8_t>& v2)
      : L(l), p(l) {
    p.power.rng().seed(seed);
    std::copy(v1.begin(), v1.end(), p.region(L.app).begin());
    test::stage(p, v2);
    p.power.reset_count();
  }
  bool app_is(const std::vector<std::uint8_t>& img) {
    auto app = p.region(L.app);
    return std::equal(img.begin(), img.end(), app.begin());
  }
  // Runs the install with a cut planned at operation k (counted from now); true if it came.
  bool install_cut_at(std::uint64_t k, sim::CutMode mode) {
    p.power.reset_count();
    p.power.plan_cut(k, mode);
    ota::Installer(p.map).run();
    const bool cut = p.power.dead();
    p.power.cancel_cut();
    p.power.power_on();
    return cut;
  }
  const ota::Layout& L;
  test::Parts p;
};

constexpr std::size_t kPage = sim::InternalFlash::kPage;

// Whether the application area holds page `page` of `img`.
bool app_page_is(Staged& s, const std::vector<std::uint8_t>& img, std::size_t page) {
  const auto a = s.p.region(s.L.app);
  return std::equal(img.begin() + page * kPage, img.begin() + (page + 1) * kPage, a.begin() + page * kPage);
}

// The first operation of v2's install (on a board as Staged(L, seed, v1, v2) leaves it) before
// which a cut leaves `holds` true; 0, and the test failed, if the install ends first.
std::uint64_t first_cut_where(const ota::Layout& L, std::uint64_t seed, const std::vector<std::uint8_t>& v1,
                              const std::vector<std::uint8_t>& v2, const std::function<bool(Staged&)>& holds) {
  for (std::uint64_t k = 1;; ++k) {
    Staged t(L, seed, v1, v2);
    if (!t.install_cut_at(k, sim::CutMode::before)) {
      ADD_FAILURE() << "the install ended before the state looked for";
      return 0;
    }
    if (holds(t)) return k;
  }
}

class InstallPowerCut : public ::testing::TestWithParam<const ota::Layout*> {};

// Sizes of one page or less, a page and a bit, and many pages with a partial last one.
TEST_P(InstallPowerCut, TwoCutsThenABootInstallsV2AndALostFlagNeverStartsAMix) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  std::uint64_t pairs = 0;
  for (std::uint32_t size : {100u, 1030u, 20001u}) {
    const auto v2 = sim::make_app_image(L, 2, size);
    for (auto mode : {sim::CutMode::torn, sim::CutMode::before}) {
      for (std::uint64_t k = 0;; ++k) {
        const std::string where = std::to_string(size) + " B, first cut at " + std::to_string(k) +
                                  (mode == sim::CutMode::torn ? " (torn)" : " (before)");
        {  // the flag and the journal are lost after the cut: no mixed copy may be started
          Staged s(L, k, v1, v2);
          if (!s.install_cut_at(k, mode)) break;
          ASSERT_TRUE(ota::FlagStore(s.p.map).clear());
          ASSERT_TRUE(ota::Journal(s.p.map).clear());
          EXPECT_TRUE(s.app_is(v1) || s.app_is(v2) || !ota::Installer(s.p.map).app_valid()) << where;
        }
        // A second cut at every operation of the boot after (for the small images: the pairs grow
        // with the square of the operations), then a clean boot.
        for (std::uint64_t j = size <= 1030 ? 0 : 1u << 30;; ++j) {
          Staged s(L, k * 1000 + j, v1, v2);
          ASSERT_TRUE(s.install_cut_at(k, mode));
          const bool cut_again = s.install_cut_at(j, mode);
          ota::Installer last(s.p.map);
          const Result r = last.run();
          ASSERT_TRUE(r == Result::installed || r == Result::finished || r == Result::nothing)
              << where << ", second at " << j << ": " << ota::to_string(r);
          EXPECT_TRUE(s.app_is(v2) && last.app_valid()) << where << ", second at " << j;
          ++pairs;
          if (!cut_again) break;
        }
      }
    }
  }
  EXPECT_GT(pairs, 500u);
}

// The same lost flag after one cut, when a torn operation changes few bits (odds 1 in 32: cut
// early). A torn erase of the application's first page then leaves most of the old vector
// table, which must not make a half-erased application look whole. Many seeds per cut.
TEST_P(InstallPowerCut, ALostFlagNeverStartsAMixWhenACutChangesFewBits) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 3000);
  std::uint64_t cuts = 0;
  for (std::uint64_t k = 0;; ++k) {
    bool came = false;
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
      Staged s(L, k * 1000 + seed, v1, v2);
      s.p.internal.set_tear_odds(32);
      if (!s.install_cut_at(k, sim::CutMode::torn)) break;
      came = true;
      ++cuts;
      ASSERT_TRUE(ota::FlagStore(s.p.map).clear());
      ASSERT_TRUE(ota::Journal(s.p.map).clear());
      ASSERT_TRUE(s.app_is(v1) || s.app_is(v2) || !ota::Installer(s.p.map).app_valid())
          << "cut at " << k << ", seed " << seed;
    }
    if (!came) break;
  }
  EXPECT_GT(cuts, 400u);
}

// An install cut part-way (its flag still "OTA-START"), as if it then failed for good: the recovery
// client takes another image, cut at each of its flash operations. After the cut the device must
// not start a mixed copy, and a whole push of v3 must then install.
TEST_P(InstallPowerCut, RecoveryDownloadReplacingAFailedInstallUnderCuts) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 20000);
  const auto v3 = sim::make_app_image(L, 3, 20000);
  const ota::Start start3 = start_for(v3, 3);
  for (std::uint64_t install_cut : {3u, 30u, 100u, 170u}) {
    for (auto mode : {sim::CutMode::torn, sim::CutMode::before}) {
      for (std::uint64_t k = 0;; ++k) {
        const std::string where = "install cut at " + std::to_string(install_cut) + ", recovery cut at " + std::to_string(k);
        Staged s(L, k + 7, v1, v2);
        ASSERT_TRUE(s.install_cut_at(install_cut, sim::CutMode::torn));
        ASSERT_EQ(ota::FlagStore(s.p.map).read(), ota::Flag::start);
        s.p.power.reset_count();
        s.p.power.plan_cut(k, mode);
        {
          FrameWire w;
          ota::DeviceInfo info;
          info.role = ota::Role::recovery;
          ota::UpdateClient c(s.p.map, w, info);
          c.boot();
          FrameWire::start(c, start3);
          for (std::uint16_t i = 0; i < 30 && !s.p.power.dead(); ++i) FrameWire::data(c, v3, i);
        }
        const bool cut = s.p.power.dead();
        s.p.power.cancel_cut();
        s.p.power.power_on();
        ota::Installer boot(s.p.map);
        const Result r = boot.run();
        const bool valid = boot.app_valid();
        EXPECT_TRUE(!valid || s.app_is(v1) || s.app_is(v2)) << where << ": " << ota::to_string(r);
        {
          FrameWire w;
          ota::DeviceInfo info;
          info.role = valid ? ota::Role::application : ota::Role::recovery;
          ota::UpdateClient c(s.p.map, w, info);
          c.boot();
          FrameWire::start(c, start3);
          for (std::uint16_t i = 0; i < start3.packet_count; ++i) FrameWire::data(c, v3, i);
          EXPECT_TRUE(c.reset_requested()) << where;
        }
        EXPECT_EQ(ota::Installer(s.p.map).run(), Result::installed) << where;
        EXPECT_TRUE(s.app_is(v3)) << where;
        if (!cut) break;
      }
    }
  }
}

// A unit marker whose program was cut after clearing one bit: a partially programmed half-word,
// which reads as set (0xFFFE) while the download resumes past it and the first install begins,
// and which may read back as erased (0xFFFF) later (a marginal cell). The download was verified
// by its CRC-32 and the install has already zeroed the application's vector table: a marker that
// now reads unset must not make the next boot refuse and wipe the only whole image, leaving the
// device with a half-copied application and nothing to install.
TEST_P(InstallPowerCut, ATornUnitMarkerThatReadsErasedLaterDoesNotLoseAnInstallUnderWay) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 20000);
  Staged s(L, 3, v1, v2);
  auto journal = s.p.region(L.journal());
  const std::uint32_t marker = ota::Journal::kUnitsOffset + 2 * 3;  // unit 3's marker
  journal[marker] = 0xFE;  // torn: one bit of 0x0000 programmed, the rest still erased
  journal[marker + 1] = 0xFF;
  ASSERT_TRUE(ota::Journal(s.p.map).unit_done(3));
  ASSERT_TRUE(s.install_cut_at(100, sim::CutMode::torn));  // the install has begun
  ASSERT_FALSE(ota::Installer(s.p.map).app_valid()) << "the cut left the application half copied";
  journal[marker] = 0xFF;  // the marginal bit now reads erased
  ota::Installer boot(s.p.map);
  const Result r = boot.run();
  EXPECT_TRUE(r == Result::installed || r == Result::failed) << ota::to_string(r);
  EXPECT_EQ(ota::FlagStore(s.p.map).read() == ota::Flag::start || s.app_is(v2), true)
      << "neither the install is still pending nor v2 installed";
  ota::JournalRecord rec;
  EXPECT_TRUE(boot.app_valid() || ota::Journal(s.p.map).read(rec))
      << "the application is half copied and the staged image's journal was wiped: no whole image left";
}

// A program cut near its end can leave cells that read programmed but hold too little charge: a
// marginal cell reads right at the next boot and may read erased later. Whatever such a program
// wrote must be erased and written again, not trusted because it reads right. Two places: the
// vector table, the install's very last program (cut there, the copy's CRC-32 matches at the next
// boot), and a page of the body (cut in its last half-word, the page reads equal to staging).

// The vector table's program cut in its last half-word, every bit of it reading programmed.
TEST_P(InstallPowerCut, AVectorTableProgramCutAtItsEndIsWrittenAgainNotTrusted) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 3000);
  Staged s(L, 9, v1, v2);
  auto app = s.p.region(L.app);
  // The operation that programs the vector table: the first whose cut leaves the rest of v2 in
  // place and the table erased.
  const std::uint64_t vt_op = first_cut_where(L, 9, v1, v2, [&](Staged& t) {
    const auto a = t.p.region(L.app);
    return std::equal(v2.begin() + 8, v2.end(), a.begin() + 8) && a[7] == 0xFF;
  });
  ASSERT_GT(vt_op, 0u);
  ASSERT_TRUE(s.install_cut_at(vt_op, sim::CutMode::before));
  std::copy_n(v2.begin(), 8, app.begin());  // the cut program, reading whole
  const std::uint32_t erases = s.p.internal.erases(L.app.base - sim::InternalFlash::kBase);
  ota::Installer boot(s.p.map);
  const Result r = boot.run();
  ASSERT_EQ(r, Result::installed) << ota::to_string(r);
  EXPECT_TRUE(boot.app_valid() && s.app_is(v2));
  EXPECT_EQ(s.p.internal.erases(L.app.base - sim::InternalFlash::kBase), erases + 1)
      << "the vector table a cut program left was trusted, not erased and written again";
  EXPECT_EQ(s.p.violations(), 0u);
}

// A page of the body whose last program was cut, every bit of it reading programmed.
TEST_P(InstallPowerCut, APageProgramCutAtItsEndIsWrittenAgainNotTrusted) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 3000);
  const auto page1_done = [&](Staged& t) { return app_page_is(t, v2, 1); };
  // The operation after the last program of page 1 (the first cut before which page 1 is whole).
  const std::uint64_t after = first_cut_where(L, 4, v1, v2, page1_done);
  ASSERT_GT(after, 0u);
  Staged s(L, 4, v1, v2);
  ASSERT_TRUE(s.install_cut_at(after - 1, sim::CutMode::before));
  auto app = s.p.region(L.app);
  ASSERT_FALSE(page1_done(s));
  std::copy(v2.begin() + kPage, v2.begin() + 2 * kPage, app.begin() + kPage);  // the cut program, reading whole
  const std::uint32_t page1 = L.app.base - sim::InternalFlash::kBase + kPage;
  const std::uint32_t erases = s.p.internal.erases(page1);
  ota::Installer boot(s.p.map);
  ASSERT_EQ(boot.run(), Result::installed);
  EXPECT_TRUE(boot.app_valid() && s.app_is(v2));
  EXPECT_EQ(s.p.internal.erases(page1), erases + 1)
      << "a page a cut program may have left marginal was trusted, not erased and written again";
  EXPECT_EQ(s.p.violations(), 0u);
}

// A cut while the old vector table is zeroed (the install's first programs of the application)
// leaves that table whole or insane, never a sane table torn into another one (a stack pointer or
// reset vector with a few bits cleared, which would start the old application wrongly): the
// reset vector's high half-word, whose one set bit makes its program all or nothing, goes first.
// Torn programs that change few bits, many seeds.
TEST_P(InstallPowerCut, ACutWhileTheOldVectorTableIsZeroedLeavesItWholeOrInsane) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 3000);
  for (std::uint64_t k = 1; k <= 2; ++k) {  // op 0: the install's "began" mark
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
      Staged s(L, k * 1000 + seed, v1, v2);
      s.p.internal.set_tear_odds(32);
      ASSERT_TRUE(s.install_cut_at(k, sim::CutMode::torn));
      const auto a = s.p.region(L.app);
      ASSERT_TRUE(std::equal(v1.begin(), v1.begin() + 8, a.begin()) || !ota::Installer(s.p.map).app_valid())
          << "cut at " << k << ", seed " << seed << ": a torn vector table is sane";
    }
  }
}

// A supply that sags again and again (a radio's transmit bursts) stops the install at
// about the same point after every boot (the flash drivers refuse to start an operation below the
// detector's threshold: "before"). Each boot used to get further, the pages already written
// skipped; an install that writes every page again once resumed never gets past that point.
TEST_P(InstallPowerCut, AnInstallStoppedEveryFewOperationsStillEnds) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 20000);
  Staged s(L, 5, v1, v2);
  constexpr std::uint64_t kOpsPerBoot = 80;  // about 8 of the image's 20 pages
  int boots = 0;
  bool cut = true;
  while (cut && boots < 30) {
    cut = s.install_cut_at(kOpsPerBoot, sim::CutMode::before);
    ++boots;
  }
  EXPECT_FALSE(cut) << "after " << boots << " boots, each stopped " << kOpsPerBoot
                    << " flash operations in, the install has not ended";
  EXPECT_TRUE(s.app_is(v2) && ota::Installer(s.p.map).app_valid());
}

// The copy markers are the only record of which page a cut program may have left
// marginal, and they live in the journal, which a recovery download of another image erases
// (Journal::begin). An install of v2 cut at the end of page 1's last program (page 1 reads whole,
// marginal), whose next boot fails (a W25Q that does not answer once: recovery mode), then the
// server pushes v3, a rebuild that differs from v2 in its last page only. v3's install finds no
// marker and skips page 1 because it reads equal: the marginal cells are trusted for good. (Before
// the markers, an application without a sane vector table had every page written again.)
TEST_P(InstallPowerCut, AMarginalPageLeftByAFailedInstallIsWrittenAgainByTheRecoveryImage) {
  const ota::Layout& L = *GetParam();
  const auto v1 = sim::make_app_image(L, 1, 9000);
  const auto v2 = sim::make_app_image(L, 2, 20000);
  auto v3 = v2;
  v3[19 * 1024 + 100] ^= 0x5A;  // a rebuild: only the last page differs from v2
  const auto page1_done = [&](Staged& t) { return app_page_is(t, v2, 1); };
  const std::uint64_t after = first_cut_where(L, 4, v1, v2, page1_done);  // page 1 whole before it
  ASSERT_GT(after, 0u);
  Staged s(L, 4, v1, v2);
  ASSERT_TRUE(s.install_cut_at(after - 1, sim::CutMode::before));
  auto app = s.p.region(L.app);
  ASSERT_FALSE(page1_done(s));
  std::copy(v2.begin() + kPage, v2.begin() + 2 * kPage, app.begin() + kPage);  // cut program, reading whole
  ASSERT_FALSE(ota::Installer(s.p.map).app_valid());
  // Recovery mode: the server pushes v3 (the client clears the flag and begins a new journal).
  const ota::Start start3 = start_for(v3, 3);
  {
    FrameWire w;
    ota::DeviceInfo info;
    info.role = ota::Role::recovery;
    ota::UpdateClient c(s.p.map, w, info);
    c.boot();
    FrameWire::start(c, start3);
    for (std::uint16_t i = 0; i < start3.packet_count; ++i) FrameWire::data(c, v3, i);
    ASSERT_TRUE(c.reset_requested());
  }
  const std::uint32_t page1 = L.app.base - sim::InternalFlash::kBase + kPage;
  const std::uint32_t erases = s.p.internal.erases(page1);
  ota::Installer boot(s.p.map);
  ASSERT_EQ(boot.run(), Result::installed);
  EXPECT_TRUE(boot.app_valid() && s.app_is(v3));
  EXPECT_EQ(s.p.internal.erases(page1), erases + 1)
      << "the page v2's cut install may have left marginal was trusted by v3's install: its marker "
         "was erased with v2's journal";
  EXPECT_EQ(s.p.violations(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, InstallPowerCut, ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

}  // namespace

// The bootloader's install logic on its own: what it checks before touching the application,
// what it skips, and how it finishes an install cut after the copy.
#include <gtest/gtest.h>

#include "ota/bytes.hpp"
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

  // Puts an image in staging with a complete journal and "OTA-START", as the client leaves it.
  void stage(const std::vector<std::uint8_t>& img, std::uint32_t crc_override = 0) {
    auto st = parts.region(L.staging);
    std::copy(img.begin(), img.end(), st.begin());
    const std::uint32_t crc = crc_override ? crc_override : ota::crc32(img.data(), img.size());
    ASSERT_TRUE(journal.begin({static_cast<std::uint32_t>(img.size()), crc, 2, 256,
                               static_cast<std::uint16_t>(ota::packet_count_for(static_cast<std::uint32_t>(img.size()), 256))}));
    for (std::uint32_t u = 0; u < journal.units_for(static_cast<std::uint32_t>(img.size())); ++u)
      ASSERT_TRUE(journal.mark_unit_done(u));
    ASSERT_TRUE(flags.set(ota::Flag::start));
  }
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

TEST_P(InstallerTest, InvalidVectorTableIsRefusedAndTheAppUntouched) {
  auto v2 = sim::make_app_image(L, 2, 20000);
  ota::put_u32(v2.data(), 0xFFFFFFFF);
  stage(v2);
  ota::Installer inst(parts.map);
  EXPECT_EQ(inst.run(), ota::Installer::Result::refused);
  EXPECT_TRUE(app_is(v1));
}

TEST_P(InstallerTest, IncompleteJournalIsRefused) {
  const auto v2 = sim::make_app_image(L, 2, 20000);
  stage(v2);
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
  // One page erase + its programs (128-byte chunks of a 1 KB page) + marker + flag move + journal.
  const std::uint64_t ops = parts.power.count() - ops_before;
  EXPECT_LE(ops, 1u + 8u + 1u + 2u + 1u);
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

TEST_P(InstallerTest, BlankApplicationIsNotValid) {
  auto app = parts.region(L.app);
  std::fill(app.begin(), app.end(), 0xFF);
  EXPECT_FALSE(ota::Installer(parts.map).app_valid());
}

TEST_P(InstallerTest, PendingInstallIsNotValidToJumpTo) {
  ASSERT_TRUE(flags.set(ota::Flag::start));
  EXPECT_FALSE(ota::Installer(parts.map).app_valid());
}

INSTANTIATE_TEST_SUITE_P(Layouts, InstallerTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

TEST(VectorTable, Rules) {
  const auto& L = ota::kInternalLayout;
  EXPECT_TRUE(ota::vector_table_sane(L, 0x20005000, 0x08002101));
  EXPECT_TRUE(ota::vector_table_sane(L, 0x20001000, 0x08008FFF));
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005004, 0x08002101));  // above SRAM
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20000000, 0x08002101));  // empty stack
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20004FFE, 0x08002101));  // misaligned
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08002100));  // ARM, not Thumb
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08001001));  // in the bootloader
  EXPECT_FALSE(ota::vector_table_sane(L, 0x20005000, 0x08009001));  // in staging
  EXPECT_TRUE(ota::vector_table_sane(ota::kExternalLayout, 0x20005000, 0x08009001));
  EXPECT_FALSE(ota::vector_table_sane(L, 0xFFFFFFFF, 0xFFFFFFFF));  // erased flash
}

}  // namespace

// Persistence of the flash parts across a power cycle and power cuts during W25Q operations.
#include <filesystem>
#include <fstream>

#include "bluepill/chip.hpp"
#include "helpers.hpp"
#include "sim/internal_flash.hpp"
#include "sim/w25q_chip.hpp"

using namespace bptest;

namespace {
std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("bluepill-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}
}  // namespace

TEST(Power, FlashAndW25qContentsLiveInFiles) {
  const auto dir = temp_dir("persist");
  bluepill::Config cfg;
  cfg.flash_file = dir / "flash.bin";
  cfg.w25q_file = dir / "w25q.bin";
  {
    bluepill::Board b(cfg);
    b.load_image(fw("spi_w25q"));
    b.power_on();
    run_to_end(b, 2e6);
  }  // the board is unplugged: files written
  ASSERT_EQ(std::filesystem::file_size(cfg.flash_file), 64u * 1024);
  ASSERT_EQ(std::filesystem::file_size(cfg.w25q_file), 2u * 1024 * 1024);
  bluepill::Board b(cfg);  // no image loaded: the program is still in the flash
  EXPECT_EQ(b.w25q().bytes()[0x10F0], 0xA0);
  b.power_on();
  run_to_end(b, 2e6);
  EXPECT_EQ(result(b, 0), 0xEF4015u);
  std::filesystem::remove_all(dir);
}

TEST(Power, CutSavesTheFiles) {
  const auto dir = temp_dir("cut");
  bluepill::Config cfg;
  cfg.flash_file = dir / "flash.bin";
  bluepill::Board b(cfg);
  b.load_image(fw("erase_loop"));
  b.power_on();
  ASSERT_EQ(b.run_for_us(40'000).stop, bluepill::Stop::limit);  // zeros written, erase running
  b.power_cut();
  sim::PowerSupply ps;
  sim::InternalFlash copy(ps);
  ASSERT_TRUE(copy.load(cfg.flash_file));
  EXPECT_EQ(copy.bytes()[0xF000 + 1022], b.flash().bytes()[0xF000 + 1022]);
  int zero = 0;
  for (std::uint32_t i = 0; i < 1024; ++i) zero += copy.bytes()[0xF000 + i] == 0;
  EXPECT_GT(zero, 0) << "the torn page is in the file";
  EXPECT_LT(zero, 1024);
  std::filesystem::remove_all(dir);
}

TEST(Power, CutMidW25qSectorEraseLeavesATornSector) {
  bluepill::Board b;
  b.load_image(fw("spi_w25q"));
  auto mem = b.w25q().bytes();
  std::fill(mem.begin() + 0x1000, mem.begin() + 0x2000, 0x00);
  b.power_on();
  ASSERT_EQ(b.run_until([&] { return b.w25q().busy(); }, 1e6).stop, bluepill::Stop::condition);
  ASSERT_EQ(b.run_for_us(10'000).stop, bluepill::Stop::limit);  // tSE is 45 ms
  b.power_cut();
  int ff = 0, zero = 0;
  for (std::uint32_t i = 0x1000; i < 0x2000; ++i) {
    ff += mem[i] == 0xFF;
    zero += mem[i] == 0x00;
  }
  EXPECT_GT(ff, 0);
  EXPECT_LT(ff, 4096);
  EXPECT_LT(zero, 4096);
  // Power again: the chip answers (WEL and BUSY gone), the program runs to its end.
  b.power_on();
  run_to_end(b, 2e6);
  EXPECT_EQ(result(b, 0), 0xEF4015u);
}

TEST(Power, ResetPinRestartsTheProgram) {
  auto b = board_with("hello");
  run_to_end(*b);
  b->reset_pin();
  run_to_end(*b);
  EXPECT_EQ(b->uart_output(), "hello from the blue pill\nhello from the blue pill\n");
  EXPECT_EQ(b->resets(), 1u);
  EXPECT_EQ(b->last_reset(), bluepill::ResetCause::pin);
}

// An image with a segment outside the internal flash is refused before any page is erased, even
// for a segment that came before it and was fine.
TEST(Power, AnImageWithASegmentOutsideTheFlashErasesNothing) {
  const auto dir = temp_dir("badimage");
  bluepill::Board b;
  b.load_image(fw("hello"));
  const std::vector<std::uint8_t> before(b.flash().bytes().begin(), b.flash().bytes().end());
  const auto hex = dir / "ram.hex";
  std::ofstream(hex) << ":020000040800F2\n:04000000DEADBEEFC4\n:020000042000DA\n:0400000001020304F2\n:00000001FF\n";
  EXPECT_THROW(b.load_image(hex.string()), std::runtime_error);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), b.flash().bytes().begin())) << "page 0 was erased";
  std::filesystem::remove_all(dir);
}

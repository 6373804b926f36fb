// sim::W25qChip at SPI command level: the W25Q rules, timing and power cuts.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "sim/internal_flash.hpp"
#include "sim/power.hpp"
#include "sim/w25q_chip.hpp"

namespace {

using sim::CutMode;
using sim::PowerSupply;
using sim::W25qChip;
using Bytes = std::vector<std::uint8_t>;

// One /CS-low transaction: sends tx then `extra` dummy bytes; returns everything received.
Bytes xfer(W25qChip& chip, Bytes tx, std::size_t extra = 0) {
  tx.resize(tx.size() + extra, 0xFF);
  Bytes rx(tx.size());
  chip.select(true);
  chip.transfer(tx.data(), rx.data(), tx.size());
  chip.select(false);
  return rx;
}
Bytes with_addr(std::uint8_t op, std::uint32_t a) {
  return {op, static_cast<std::uint8_t>(a >> 16), static_cast<std::uint8_t>(a >> 8),
          static_cast<std::uint8_t>(a)};
}
std::uint8_t status(W25qChip& c) { return xfer(c, {0x05}, 1)[1]; }
void wren(W25qChip& c) { xfer(c, {0x06}); }
void program(W25qChip& c, std::uint32_t a, const Bytes& data) {
  Bytes tx = with_addr(0x02, a);
  tx.insert(tx.end(), data.begin(), data.end());
  xfer(c, tx);
}
void erase(W25qChip& c, std::uint32_t a) { xfer(c, with_addr(0x20, a)); }
Bytes read(W25qChip& c, std::uint32_t a, std::size_t n) {
  Bytes rx = xfer(c, with_addr(0x03, a), n);
  return Bytes(rx.begin() + 4, rx.end());
}

TEST(SimW25q, JedecIdDeviceIdAndErasedContents) {
  PowerSupply power;
  W25qChip chip(power);
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xEF, 0x40, 0x15}));
  EXPECT_EQ(xfer(chip, {0xAB}, 4)[4], 0x14);
  EXPECT_EQ(chip.bytes().size(), 2u << 20);
  EXPECT_EQ(read(chip, 0x1234, 3), (Bytes{0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(status(chip), 0x00);
  W25qChip big(power, sim::kW25Q64JV);
  EXPECT_EQ(xfer(big, {0x9F}, 3), (Bytes{0xFF, 0xEF, 0x40, 0x17}));
  EXPECT_EQ(big.bytes().size(), 8u << 20);
  EXPECT_EQ(chip.violations() + big.violations(), 0u);
}

TEST(SimW25q, WriteEnableLatch) {
  PowerSupply power;
  W25qChip chip(power);
  wren(chip);
  EXPECT_EQ(status(chip), 0x02);
  EXPECT_EQ(xfer(chip, {0x05}, 3), (Bytes{0xFF, 0x02, 0x02, 0x02}));  // repeats while /CS low
  xfer(chip, {0x04});
  EXPECT_EQ(status(chip), 0x00);
  EXPECT_EQ(chip.violations(), 0u);
}

TEST(SimW25q, ProgramAndEraseAreIgnoredWithoutWel) {
  PowerSupply power;
  W25qChip chip(power);
  program(chip, 0x100, {0x12});
  EXPECT_EQ(chip.bytes()[0x100], 0xFF);
  EXPECT_EQ(chip.violations(), 1u);
  EXPECT_NE(chip.last_violation().find("without WEL"), std::string::npos);
  wren(chip);
  program(chip, 0x100, {0x12});
  EXPECT_EQ(chip.bytes()[0x100], 0x12);
  EXPECT_EQ(status(chip), 0x00);  // WEL cleared by the program
  erase(chip, 0x000);
  EXPECT_EQ(chip.bytes()[0x100], 0x12);
  EXPECT_EQ(chip.violations(), 2u);
  wren(chip);
  erase(chip, 0x000);
  EXPECT_EQ(chip.bytes()[0x100], 0xFF);
  EXPECT_EQ(status(chip), 0x00);
  EXPECT_EQ(power.count(), 2u);  // only executed program/erase commands are operations
}

// A protected range (status register bits, WPS block locks): program and erase there are not
// executed, silently (WEL stays set), and the sectors outside are written as ever.
TEST(SimW25q, ProgramAndEraseInAProtectedRangeAreNotExecuted) {
  PowerSupply power;
  W25qChip chip(power);
  wren(chip);
  program(chip, 0x10000, {0x34});  // outside: written
  chip.protect(0, 0x10000);
  wren(chip);
  program(chip, 0x100, {0x12});
  EXPECT_EQ(chip.bytes()[0x100], 0xFF);
  EXPECT_EQ(status(chip), 0x02) << "WEL is left set";
  erase(chip, 0x10000);  // outside: erased
  EXPECT_EQ(chip.bytes()[0x10000], 0xFF);
  chip.protect(0, 0);
  wren(chip);
  program(chip, 0x100, {0x12});
  EXPECT_EQ(chip.bytes()[0x100], 0x12);
  chip.protect(0, 0x10000);
  wren(chip);
  erase(chip, 0x000);
  EXPECT_EQ(chip.bytes()[0x100], 0x12);
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
  EXPECT_EQ(power.count(), 3u);  // the two writes outside and the one unprotected program
}

TEST(SimW25q, ProgramOnlyClearsBitsAndFlagsContractBreaches) {
  PowerSupply power;
  W25qChip chip(power);
  wren(chip);
  program(chip, 0x10, {0xF0, 0x5A});
  wren(chip);
  program(chip, 0x10, {0x0F});  // silicon ANDs: 0xF0 & 0x0F = 0x00
  EXPECT_EQ(chip.bytes()[0x10], 0x00);
  EXPECT_EQ(chip.violations(), 1u);  // but the ota::Flash contract forbids it
  EXPECT_NE(chip.last_violation().find("contract"), std::string::npos);
  wren(chip);
  program(chip, 0x11, {0x00});  // 0x00 over anything is allowed by the contract
  wren(chip);
  program(chip, 0x11, {0xFF});  // sending 0xFF changes nothing
  EXPECT_EQ(chip.bytes()[0x11], 0x00);
  EXPECT_EQ(chip.violations(), 1u);
}

TEST(SimW25q, PageProgramWrapsInsideItsPage) {
  PowerSupply power;
  W25qChip chip(power);
  Bytes data(10);
  for (std::uint8_t i = 0; i < 10; ++i) data[i] = static_cast<std::uint8_t>(0xA0 + i);
  wren(chip);
  program(chip, 0x3FA, data);  // page 0x300: offsets 0xFA..0xFF, then 0x00..0x03
  EXPECT_EQ(read(chip, 0x3FA, 6), Bytes(data.begin(), data.begin() + 6));
  EXPECT_EQ(read(chip, 0x300, 4), Bytes(data.begin() + 6, data.end()));
  EXPECT_EQ(chip.bytes()[0x400], 0xFF);  // the next page is untouched
  EXPECT_EQ(chip.violations(), 1u);
  EXPECT_NE(chip.last_violation().find("wraps"), std::string::npos);
}

TEST(SimW25q, MoreThan256BytesKeepsTheLast256) {
  PowerSupply power;
  W25qChip chip(power);
  Bytes data(300);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i < 256 ? 0xFF : 0x00);
  wren(chip);
  program(chip, 0x200, data);  // bytes 256..299 overwrite offsets 0..43 with 0x00
  EXPECT_EQ(chip.bytes()[0x200 + 43], 0x00);
  EXPECT_EQ(chip.bytes()[0x200 + 44], 0xFF);
}

TEST(SimW25q, SectorEraseClearsThe4KbSectorHoldingTheAddress) {
  PowerSupply power;
  W25qChip chip(power);
  std::fill(chip.bytes().begin(), chip.bytes().begin() + 0x3000, std::uint8_t{0});
  wren(chip);
  erase(chip, 0x1234);
  EXPECT_EQ(chip.bytes()[0x0FFF], 0x00);
  EXPECT_TRUE(std::all_of(chip.bytes().begin() + 0x1000, chip.bytes().begin() + 0x2000,
                          [](std::uint8_t b) { return b == 0xFF; }));
  EXPECT_EQ(chip.bytes()[0x2000], 0x00);
  EXPECT_EQ(chip.violations(), 0u);
}

TEST(SimW25q, ReadContinuesAcrossTheChipAndWraps) {
  PowerSupply power;
  W25qChip chip(power);
  auto b = chip.bytes();
  for (std::size_t i = 0; i < 600; ++i) b[i] = static_cast<std::uint8_t>(i * 7);
  b[b.size() - 1] = 0x42;
  const Bytes long_read = read(chip, 0, 600);  // across pages in one command
  EXPECT_TRUE(std::equal(long_read.begin(), long_read.end(), b.begin()));
  EXPECT_EQ(read(chip, static_cast<std::uint32_t>(b.size() - 1), 3), (Bytes{0x42, 0x00, 0x07}));
  EXPECT_EQ(chip.violations(), 0u);
}

TEST(SimW25q, ChipSelectRisingMidCommandAbortsIt) {
  PowerSupply power;
  W25qChip chip(power);
  wren(chip);
  xfer(chip, {0x02, 0x00, 0x01});  // address incomplete
  EXPECT_EQ(chip.violations(), 1u);
  xfer(chip, with_addr(0x02, 0x100));  // no data byte
  EXPECT_EQ(chip.violations(), 2u);
  xfer(chip, {0x20, 0x00, 0x00, 0x00, 0x00});  // one byte too many
  EXPECT_EQ(chip.violations(), 3u);
  EXPECT_EQ(status(chip), 0x02);  // nothing ran: WEL still set
  EXPECT_EQ(power.count(), 0u);
  xfer(chip, {0x06, 0x00});  // write enable with an extra byte
  EXPECT_EQ(chip.violations(), 4u);
  xfer(chip, {0x03, 0x00});
  EXPECT_EQ(chip.violations(), 5u);
  EXPECT_NE(chip.last_violation().find("/CS rose"), std::string::npos);
}

TEST(SimW25q, UnknownCommandsAndTransfersWithoutChipSelectAreCounted) {
  PowerSupply power;
  W25qChip chip(power);
  xfer(chip, {0xC7});  // chip erase: not modelled
  EXPECT_EQ(chip.violations(), 1u);
  const std::uint8_t tx[2] = {0x9F, 0xFF};
  std::uint8_t rx[2] = {};
  chip.transfer(tx, rx, 2);
  EXPECT_EQ(rx[1], 0xFF);
  EXPECT_EQ(chip.violations(), 2u);
  EXPECT_NE(chip.last_violation().find("/CS high"), std::string::npos);
  chip.transfer(nullptr, rx, 2);  // bare clocks (0xFF) with /CS high: a driver waiting, ignored
  EXPECT_EQ(chip.violations(), 2u);
}

// 0xB9: only 0xAB is recognised until it comes, and /CS must stay high for tRES1 after it.
// Power-down survives everything but a power cycle.
TEST(SimW25q, PowerDownRecognisesOnlyTheReleaseWhichNeedsTres1) {
  PowerSupply power;
  W25qChip chip(power);
  std::uint64_t now = 1'000;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  xfer(chip, {0xB9});
  EXPECT_TRUE(chip.powered_down());
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(xfer(chip, {0x05}, 2), (Bytes{0xFF, 0xFF, 0xFF}));  // BUSY to a driver that polls
  wren(chip);
  erase(chip, 0);
  EXPECT_EQ(chip.violations(), 4u);
  EXPECT_NE(chip.last_violation().find("power-down"), std::string::npos);
  EXPECT_EQ(chip.erases(0), 0u);

  xfer(chip, {0xAB});
  EXPECT_FALSE(chip.powered_down());
  now += 2'000;  // within tRES1: ignored
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(chip.violations(), 5u);
  EXPECT_NE(chip.last_violation().find("tRES1"), std::string::npos);
  now += 1'000;
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xEF, 0x40, 0x15}));
  xfer(chip, {0xAB});  // not powered down: harmless, and no tRES1 wait
  EXPECT_EQ(xfer(chip, {0x05}, 1), (Bytes{0xFF, 0x00}));

  // While BUSY, 0xAB is ignored without a violation (the datasheet says so) and B9 is refused.
  wren(chip);
  erase(chip, 0);
  xfer(chip, {0xAB});
  xfer(chip, {0xB9});
  EXPECT_EQ(chip.violations(), 6u) << chip.last_violation();  // the 0xB9 only
  EXPECT_FALSE(chip.powered_down());

  now += 500'000'000;
  xfer(chip, {0xB9});
  ASSERT_TRUE(chip.powered_down());
  chip.power_cut();  // power-down is volatile: the chip always powers up in normal operation
  power.power_on();
  EXPECT_FALSE(chip.powered_down());
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xEF, 0x40, 0x15}));
  EXPECT_EQ(chip.violations(), 6u) << chip.last_violation();
}

TEST(SimW25q, BusyLastsTheProgramAndEraseTimesOnTheClock) {
  PowerSupply power;
  W25qChip chip(power);
  std::uint64_t now = 1'000;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  wren(chip);
  program(chip, 0x20, {0x00});
  EXPECT_EQ(status(chip), 0x03);  // BUSY and WEL until it completes
  EXPECT_EQ(chip.bytes()[0x20], 0x00);
  // Everything but 0x05 is ignored while BUSY.
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(read(chip, 0x20, 1), Bytes{0xFF});
  xfer(chip, {0x04});
  EXPECT_EQ(chip.violations(), 3u);
  EXPECT_NE(chip.last_violation().find("BUSY"), std::string::npos);
  now += 699'999;
  EXPECT_TRUE(chip.busy());
  now += 1;
  EXPECT_EQ(status(chip), 0x00);  // done, WEL cleared
  EXPECT_EQ(read(chip, 0x20, 1), Bytes{0x00});

  wren(chip);
  erase(chip, 0x0);
  now += 44'999'999;
  EXPECT_TRUE(chip.busy());
  now += 1;
  EXPECT_FALSE(chip.busy());
  EXPECT_EQ(read(chip, 0x20, 1), Bytes{0xFF});
  EXPECT_EQ(chip.violations(), 3u);
}

bool has_mix(std::span<const std::uint8_t> s) {
  std::size_t ones = 0;
  for (auto b : s) ones += static_cast<std::size_t>(std::popcount(b));
  return ones > 0 && ones < 8 * s.size();
}

// 0x75 suspends a running erase or program: SUS (status register 2 bit 7) sets, BUSY clears
// within tSUS; erase and program are refused while it is suspended; 0x7A resumes it for the
// time it had left (a program elsewhere may run meanwhile). Either is ignored, silently, when
// there is nothing to suspend or resume.
// A power cycle clears SUS and tears the suspended operation.
TEST(SimW25q, SuspendAndResume) {
  PowerSupply power(3);
  W25qChip chip(power);
  std::uint64_t now = 1'000;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  const auto sus = [&] { return xfer(chip, {0x35}, 1)[1]; };
  xfer(chip, {0x75});
  xfer(chip, {0x7A});
  EXPECT_FALSE(chip.suspended());
  EXPECT_EQ(sus(), 0x00);
  wren(chip);
  program(chip, 0x1000, {0x00});
  now += 700'000;
  wren(chip);
  erase(chip, 0x1000);
  now += 10'000'000;  // 10 of 45 ms
  xfer(chip, {0x75});
  EXPECT_TRUE(chip.suspended());
  EXPECT_TRUE(chip.busy()) << "for tSUS";
  now += 20'000;
  EXPECT_FALSE(chip.busy());
  EXPECT_EQ(sus(), 0x80);
  wren(chip);
  erase(chip, 0x2000);
  EXPECT_EQ(chip.violations(), 1u);
  EXPECT_NE(chip.last_violation().find("suspend"), std::string::npos) << chip.last_violation();
  program(chip, 0x1010, {0x00});  // into the suspended sector: refused too
  EXPECT_EQ(chip.violations(), 2u);
  program(chip, 0x5000, {0x00});  // elsewhere: taken, as silicon does during an erase suspend
  now += 700'000;
  EXPECT_EQ(read(chip, 0x5000, 1), Bytes{0x00});
  EXPECT_EQ(chip.violations(), 2u);
  xfer(chip, {0x7A});
  EXPECT_FALSE(chip.suspended());
  now += 34'999'999;
  EXPECT_TRUE(chip.busy()) << "the 35 ms the erase had left";
  now += 1;
  EXPECT_EQ(status(chip), 0x00);
  EXPECT_EQ(read(chip, 0x1000, 1), Bytes{0xFF});

  wren(chip);
  program(chip, 0x3000, Bytes(256, 0x00));
  now += 700'000;
  wren(chip);
  erase(chip, 0x3000);
  now += 1'000'000;
  xfer(chip, {0x75});
  now += 20'000;
  ASSERT_TRUE(chip.suspended());
  chip.power_cut();
  power.power_on();
  EXPECT_FALSE(chip.suspended());
  EXPECT_EQ(sus(), 0x00);
  EXPECT_TRUE(has_mix(chip.bytes().subspan(0x3000, 256))) << "the suspended erase is torn";
  EXPECT_EQ(chip.violations(), 2u);
}

TEST(SimW25q, PowerCutWhileBusyTearsTheOperation) {
  PowerSupply power(5);
  W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now; }, sim::kW25qMax);
  wren(chip);
  program(chip, 0x100, Bytes(256, 0x00));
  now += 1'000'000;  // 1 of 3 ms
  chip.power_cut();
  EXPECT_TRUE(power.dead());
  EXPECT_TRUE(has_mix(chip.bytes().subspan(0x100, 256)));
  const Bytes torn(chip.bytes().begin() + 0x100, chip.bytes().begin() + 0x200);
  EXPECT_EQ(chip.bytes()[0x0FF], 0xFF);
  EXPECT_EQ(chip.bytes()[0x200], 0xFF);
  // Without power nothing happens and the chip does not drive its output.
  EXPECT_EQ(xfer(chip, {0x9F}, 3), (Bytes{0xFF, 0xFF, 0xFF, 0xFF}));
  wren(chip);
  erase(chip, 0x000);
  EXPECT_TRUE(std::equal(torn.begin(), torn.end(), chip.bytes().begin() + 0x100));
  power.power_on();
  EXPECT_EQ(status(chip), 0x00);  // not BUSY any more, WEL lost
  EXPECT_EQ(read(chip, 0x100, 256), torn);
  EXPECT_EQ(chip.violations(), 0u);
}

TEST(SimW25q, PowerCutAfterCompletionTearsNothing) {
  PowerSupply power;
  W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now; }, sim::kW25qMax);
  wren(chip);
  erase(chip, 0x000);
  now += 400'000'000;
  chip.power_cut();
  EXPECT_TRUE(std::all_of(chip.bytes().begin(), chip.bytes().begin() + 4096,
                          [](std::uint8_t b) { return b == 0xFF; }));
}

TEST(SimW25q, ACutThroughTheSupplyWhileBusyTearsTooAndClearsWel) {
  PowerSupply power(9);
  W25qChip chip(power);
  std::fill(chip.bytes().begin(), chip.bytes().begin() + 4096, std::uint8_t{0});
  std::uint64_t now = 0;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  wren(chip);
  erase(chip, 0x000);
  power.cut();  // e.g. another part's planned cut
  power.power_on();
  EXPECT_EQ(status(chip), 0x00);
  EXPECT_TRUE(has_mix(chip.bytes().subspan(0, 4096)));
  wren(chip);
  power.cut();
  power.power_on();
  EXPECT_EQ(status(chip), 0x00);  // WEL is volatile
}

TEST(SimW25q, PlannedCutsBeforeAndTorn) {
  {
    PowerSupply power;
    W25qChip chip(power);
    power.plan_cut(0, CutMode::before);
    wren(chip);
    program(chip, 0x0, Bytes(16, 0x00));
    EXPECT_TRUE(power.dead());
    EXPECT_EQ(chip.bytes()[0], 0xFF);
    power.power_on();
    EXPECT_EQ(status(chip), 0x00);
  }
  {
    PowerSupply power(21);
    W25qChip chip(power);
    std::fill(chip.bytes().begin(), chip.bytes().begin() + 4096, std::uint8_t{0});
    power.plan_cut(0, CutMode::torn);
    wren(chip);
    erase(chip, 0x0);
    EXPECT_TRUE(power.dead());
    EXPECT_TRUE(has_mix(chip.bytes().subspan(0, 4096)));
    EXPECT_EQ(chip.bytes()[4096], 0xFF);
    power.power_on();
    EXPECT_EQ(status(chip), 0x00);
  }
}

TEST(SimW25q, OperationsAreCountedWithTheInternalFlashOnOneSupply) {
  PowerSupply power;
  W25qChip chip(power);
  sim::InternalFlash internal(power);
  const std::uint8_t zero[2] = {0, 0};
  power.plan_cut(3, CutMode::before);
  wren(chip);
  erase(chip, 0x0);                                     // 0
  EXPECT_TRUE(internal.write(0x08000000, zero, 2));     // 1
  wren(chip);
  program(chip, 0x0, {0x00});                           // 2
  read(chip, 0, 16);
  EXPECT_EQ(power.count(), 3u);
  wren(chip);
  program(chip, 0x1, {0x00});                           // 3: cut before
  EXPECT_TRUE(power.dead());
  EXPECT_EQ(chip.bytes()[1], 0xFF);
  EXPECT_FALSE(internal.erase(0x08000000));
  EXPECT_EQ(internal.bytes()[0], 0x00);
  EXPECT_EQ(chip.violations() + internal.violations(), 0u);
}

TEST(SimW25q, FileRoundTrip) {
  PowerSupply power;
  W25qChip chip(power);
  for (std::size_t i = 0; i < chip.bytes().size(); i += 4093) chip.bytes()[i] = static_cast<std::uint8_t>(i);
  const std::filesystem::path file = ::testing::TempDir() + "sim_w25q_round_trip.bin";
  ASSERT_TRUE(chip.save(file));
  EXPECT_EQ(std::filesystem::file_size(file), 2u << 20);
  W25qChip copy(power);
  ASSERT_TRUE(copy.load(file));
  EXPECT_TRUE(std::equal(chip.bytes().begin(), chip.bytes().end(), copy.bytes().begin()));
  W25qChip other(power, sim::kW25Q32JV);
  EXPECT_FALSE(other.load(file));  // wrong size
  EXPECT_EQ(other.bytes()[0], 0xFF);
  std::filesystem::remove(file);
}

// W25Q16JV datasheet 8.2.4, Read Status Register-1 (05h), -2 (35h) and -3 (15h): "The Read
// Status Register instructions may be used at any time, even while a Program, Erase or Write
// Status Register cycle is in progress". (The model took only 0x05 while BUSY: 0x35 counted as
// a firmware violation and read 0xFF, SUS = 1 during a plain erase, which silicon never shows.)
TEST(SimW25q, StatusRegister2IsReadableWhileBusy) {
  PowerSupply power;
  W25qChip chip(power);
  std::uint64_t now = 1'000;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  wren(chip);
  erase(chip, 0x0);
  ASSERT_TRUE(chip.busy());
  EXPECT_EQ(xfer(chip, {0x35}, 1)[1], 0x00) << "SUS reads 0: nothing is suspended";
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

}  // namespace

// ota::W25qFlash (the portable driver) against sim::W25qChip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "ota/w25q.hpp"
#include "sim/power.hpp"
#include "sim/w25q_chip.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint32_t kSize = 64 * 1024;
constexpr std::uint32_t kPolls = 1000;

// Forwards to the chip and records each /CS-low transaction (bytes sent).
class RecordingBus final : public ota::SpiBus {
 public:
  explicit RecordingBus(ota::SpiBus& inner) : inner_(inner) {}
  void select(bool asserted) override {
    if (asserted) log.emplace_back();
    inner_.select(asserted);
  }
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) override {
    for (std::size_t i = 0; i < len; ++i) log.back().push_back(tx != nullptr ? tx[i] : 0xFF);
    inner_.transfer(tx, rx, len);
  }
  std::vector<Bytes> log;

 private:
  ota::SpiBus& inner_;
};

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 13);
  return b;
}

// Erases the sector holding addr, writes n pattern bytes at addr and reads them back.
void expect_erase_write_read(ota::Flash& flash, std::uint32_t addr, std::size_t n, std::uint8_t seed) {
  const Bytes data = pattern(n, seed);
  ASSERT_TRUE(flash.erase(addr & ~std::uint32_t{4095}));
  ASSERT_TRUE(flash.write(addr, data.data(), data.size()));
  Bytes back(n);
  ASSERT_TRUE(flash.read(addr, back.data(), back.size()));
  EXPECT_EQ(back, data);
}

TEST(W25qDriver, GeometryAndProbe) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  ota::W25qFlash flash(chip, kSize, kPolls);
  EXPECT_EQ(flash.geometry().base, 0u);
  EXPECT_EQ(flash.geometry().size, kSize);
  EXPECT_EQ(flash.geometry().erase_size, 4096u);
  EXPECT_EQ(flash.geometry().write_size, 1u);
  std::uint32_t id = 0;
  EXPECT_TRUE(flash.probe(&id));
  EXPECT_EQ(id, 0xEF4015u);
  EXPECT_TRUE(flash.probe(nullptr));
  ota::W25qFlash too_big(chip, 4u << 20, kPolls);  // a 2 MB chip cannot hold 4 MB
  EXPECT_FALSE(too_big.probe(&id));
  EXPECT_EQ(chip.violations(), 0u);
}

// Up to 16 MB (W25Q128) a part is used; above (W25Q256: capacity code 0x19, W25Q512: 0x20) it
// is refused, its id still reported: such a part may be in 4-byte address mode (set at power-up
// by its ADP bit, or by an application's 0xB7, which an MCU reset does not undo), where a 3-byte
// program lands elsewhere in the chip.
TEST(W25qDriver, PartsAbove16MbAreRefused) {
  for (const auto& [part, usable] : {std::pair{sim::kW25Q128JV, true}, std::pair{sim::W25qPart{0xEF4019, 32u << 20}, false},
                                     std::pair{sim::W25qPart{0xEF4020, 64u << 20}, false}}) {
    SCOPED_TRACE(part.jedec_id);
    sim::PowerSupply power;
    sim::W25qChip chip(power, part);
    ota::W25qFlash flash(chip, kSize, kPolls);
    std::uint32_t id = 0;
    EXPECT_EQ(flash.probe(&id), usable);
    EXPECT_EQ(id, part.jedec_id);
    Bytes b(4);
    EXPECT_EQ(flash.read(0, b.data(), b.size()), usable);
  }
}

TEST(W25qDriver, ProbeFailsWithoutAChip) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  ota::W25qFlash flash(chip, kSize, kPolls);
  power.cut();  // an unpowered (or absent) chip reads 0xFF: BUSY forever
  std::uint32_t id = 0;
  EXPECT_FALSE(flash.probe(&id));
}

TEST(W25qDriver, AfterAFailedProbeAccessesFailWithoutPollingTheBus) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  RecordingBus bus(chip);
  ota::W25qFlash flash(bus, kSize, kPolls);
  power.cut();
  EXPECT_FALSE(flash.probe(nullptr));
  bus.log.clear();
  std::uint8_t b[4];
  EXPECT_FALSE(flash.read(0, b, sizeof b));
  EXPECT_FALSE(flash.write(0, b, sizeof b));
  EXPECT_FALSE(flash.erase(0));
  ASSERT_EQ(bus.log.size(), 3u) << "one transaction per access";
  for (const auto& t : bus.log) EXPECT_EQ(t, (Bytes{0x9F, 0xFF, 0xFF, 0xFF})) << "only the JEDEC id, no polling";
  // The chip comes back (powered, fitted, a loose contact that holds again): the next access
  // finds it, without a probe of its own.
  power.power_on();
  EXPECT_TRUE(flash.read(0, b, sizeof b));
  EXPECT_EQ(b[0], 0xFF);
}

// A bus with write_allowed() (the port's supply watch) vetoes program and erase: they fail
// before any command reaches the chip; reads go on.
struct GuardedBus {
  sim::W25qChip& chip;
  bool allowed = true;
  int commands = 0;
  void select(bool asserted) {
    commands += asserted;
    chip.select(asserted);
  }
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) { chip.transfer(tx, rx, len); }
  bool write_allowed() const { return allowed; }
};

TEST(W25qDriver, ABusThatVetoesWritesStopsProgramAndErase) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  GuardedBus bus{chip};
  ota::BasicW25qFlash<GuardedBus> flash(bus, kSize, kPolls);
  ASSERT_TRUE(flash.probe(nullptr));
  const Bytes data = pattern(300, 7);
  ASSERT_TRUE(flash.write(0x1000, data.data(), data.size()));
  bus.allowed = false;
  const int before = bus.commands;
  EXPECT_FALSE(flash.erase(0x1000));
  EXPECT_FALSE(flash.write(0x2000, data.data(), data.size()));
  EXPECT_EQ(bus.commands, before) << "a command reached the chip";
  Bytes back(data.size());
  EXPECT_TRUE(flash.read(0x1000, back.data(), back.size()));
  EXPECT_EQ(back, data) << "the sector was not erased";
  bus.allowed = true;
  EXPECT_TRUE(flash.erase(0x1000));
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

TEST(W25qDriver, WriteSplitsAtPageBoundaries) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  ota::W25qFlash flash(chip, kSize, kPolls);
  const Bytes data = pattern(1000, 1);
  ASSERT_TRUE(flash.write(200, data.data(), data.size()));  // 200..1199: 5 pages touched
  EXPECT_EQ(power.count(), 5u);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), chip.bytes().begin() + 200));
  EXPECT_EQ(chip.bytes()[199], 0xFF);
  EXPECT_EQ(chip.bytes()[1200], 0xFF);
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();  // in particular no page wrap

  ASSERT_TRUE(flash.write(0x2000, data.data(), 256));  // one whole page: one command
  EXPECT_EQ(power.count(), 6u);
  ASSERT_TRUE(flash.write(0x2100, data.data(), 0));
  EXPECT_EQ(power.count(), 6u);
}

TEST(W25qDriver, CommandSequenceOfAPageProgramAndAnErase) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  RecordingBus bus(chip);
  ota::W25qFlash flash(bus, kSize, kPolls);
  const std::uint8_t two[2] = {0x11, 0x22};
  EXPECT_FALSE(flash.write(0x0120FF, two, 0));  // outside the 64 KB even with nothing to write
  EXPECT_TRUE(bus.log.empty());
  ASSERT_TRUE(flash.write(0x00F0FF, two, 2));
  // page 0xF000 gets 1 byte at 0xF0FF, page 0xF100 the other; each program is read back
  const std::vector<Bytes> expect = {
      {0x05, 0xFF}, {0x06}, {0x05, 0xFF}, {0x02, 0x00, 0xF0, 0xFF, 0x11}, {0x05, 0xFF},
      {0x03, 0x00, 0xF0, 0xFF, 0xFF},
      {0x05, 0xFF}, {0x06}, {0x05, 0xFF}, {0x02, 0x00, 0xF1, 0x00, 0x22}, {0x05, 0xFF},
      {0x03, 0x00, 0xF1, 0x00, 0xFF}};
  EXPECT_EQ(bus.log, expect);
  bus.log.clear();
  ASSERT_TRUE(flash.erase(0xF000));
  Bytes blank_check = {0x03, 0x00, 0xF0, 0x00};  // the erased sector is read back whole
  blank_check.resize(4 + 4096, 0xFF);
  const std::vector<Bytes> erase = {{0x05, 0xFF}, {0x06}, {0x05, 0xFF}, {0x20, 0x00, 0xF0, 0x00},
                                    {0x05, 0xFF}, blank_check};
  EXPECT_EQ(bus.log, erase);
}

TEST(W25qDriver, EraseReadAndBounds) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  ota::W25qFlash flash(chip, kSize, kPolls);
  ota::Flash& f = flash;  // used through the port contract
  const Bytes data = pattern(3 * 4096, 9);
  ASSERT_TRUE(f.write(0x1000, data.data(), data.size()));
  ASSERT_TRUE(f.erase(0x2000));
  Bytes back(3 * 4096 + 2);
  ASSERT_TRUE(f.read(0x0FFF, back.data(), back.size()));  // any alignment, across sectors
  EXPECT_EQ(back[0], 0xFF);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 4096, back.begin() + 1));
  EXPECT_TRUE(std::all_of(back.begin() + 4097, back.begin() + 8193, [](std::uint8_t b) { return b == 0xFF; }));
  EXPECT_TRUE(std::equal(data.begin() + 8192, data.end(), back.begin() + 8193));
  EXPECT_EQ(back.back(), 0xFF);

  const std::uint64_t ops = power.count();
  std::uint8_t byte = 0;
  EXPECT_FALSE(f.erase(0x2001));       // not a sector boundary
  EXPECT_FALSE(f.erase(kSize));        // outside the driver's size
  EXPECT_FALSE(f.write(kSize - 1, data.data(), 2));
  EXPECT_FALSE(f.read(kSize, &byte, 1));
  EXPECT_TRUE(f.read(kSize - 1, &byte, 1));
  EXPECT_TRUE(f.read(0, nullptr, 0));
  EXPECT_EQ(power.count(), ops);
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

// write() reads back what it programmed: a NOR program can only clear bits, so writing over data
// that is not erased leaves other bytes than asked, and the write must say so.
TEST(W25qDriver, WriteFailsWhenTheDataDoesNotReadBack) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  ota::W25qFlash flash(chip, kSize, kPolls);
  const std::uint8_t f0[1] = {0xF0};
  const std::uint8_t zero[1] = {0x00};
  const std::uint8_t x0f[1] = {0x0F};
  ASSERT_TRUE(flash.write(0x100, f0, 1));
  EXPECT_TRUE(flash.write(0x100, zero, 1));  // clearing bits reads back as asked
  ASSERT_TRUE(flash.erase(0));
  ASSERT_TRUE(flash.write(0x100, f0, 1));
  EXPECT_FALSE(flash.write(0x100, x0f, 1));  // reads 0x00, not 0x0F
  std::uint8_t b = 0xFF;
  ASSERT_TRUE(flash.read(0x100, &b, 1));
  EXPECT_EQ(b, 0x00);
}

// A sector erase the chip never performed (here the bus turns the 0x20 into a harmless 0x05)
// leaves the old data: the blank check after the erase must fail it.
class EraseSwallowingBus final : public ota::SpiBus {
 public:
  explicit EraseSwallowingBus(ota::SpiBus& inner) : inner_(inner) {}
  void select(bool asserted) override {
    first_ = asserted;
    inner_.select(asserted);
  }
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) override {
    if (first_ && tx != nullptr && len > 0 && tx[0] == 0x20) {
      Bytes copy(tx, tx + len);
      copy[0] = 0x05;
      first_ = false;
      inner_.transfer(copy.data(), rx, len);
      return;
    }
    first_ = false;
    inner_.transfer(tx, rx, len);
  }

 private:
  ota::SpiBus& inner_;
  bool first_ = false;
};

TEST(W25qDriver, EraseFailsWhenTheSectorDoesNotReadBlank) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  EraseSwallowingBus bus(chip);
  ota::W25qFlash flash(bus, kSize, kPolls);
  const std::uint8_t data[1] = {0x5A};
  ASSERT_TRUE(flash.write(0x2010, data, 1));
  EXPECT_FALSE(flash.erase(0x2000));
  ota::W25qFlash direct(chip, kSize, kPolls);
  EXPECT_TRUE(direct.erase(0x2000));  // the same chip, erased for real: passes
}

// A bus whose peripheral stops in the middle of a 0x03 read, once armed: after `good` data
// bytes it clocks nothing more, leaves rx as it was and says so through failed(), as
// stm32f1::Spi1 does after a timeout. /CS still moves (a GPIO on the port).
class StallingBus final : public ota::SpiBus {
 public:
  explicit StallingBus(ota::SpiBus& inner) : inner_(inner) {}
  void arm(std::size_t good) {
    armed_ = true;
    good_ = good;
  }
  void select(bool asserted) override {
    count_ = 0;
    inner_.select(asserted);
  }
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) override {
    for (std::size_t i = 0; i < len; ++i) {
      if (count_ == 0) op_ = tx != nullptr ? tx[i] : 0xFF;
      if (armed_ && op_ == 0x03 && count_ >= 4 + good_) failed_ = true;
      if (failed_) return;
      inner_.transfer(tx != nullptr ? tx + i : nullptr, rx != nullptr ? rx + i : nullptr, 1);
      ++count_;
    }
  }
  bool failed() const override { return failed_; }

 private:
  ota::SpiBus& inner_;
  bool armed_ = false, failed_ = false;
  std::size_t good_ = 0, count_ = 0;
  std::uint8_t op_ = 0;
};

// The buffer already holds what the chip would have sent (a retry of the same read, say): a
// read whose bus stopped halfway must fail, not return those bytes as read.
TEST(W25qDriver, AReadOnABusThatFailedHalfwayFails) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  StallingBus bus(chip);
  ota::W25qFlash flash(bus, kSize, kPolls);
  const Bytes data = pattern(64, 5);
  ASSERT_TRUE(flash.erase(0));
  ASSERT_TRUE(flash.write(0, data.data(), data.size()));
  Bytes back = data;
  ASSERT_TRUE(flash.read(0, back.data(), back.size()));  // the bus still works
  bus.arm(10);
  EXPECT_FALSE(flash.read(0, back.data(), back.size()));
  EXPECT_TRUE(bus.failed());
  EXPECT_FALSE(flash.read(0, back.data(), 1)) << "a failed bus fails every later read too";
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

TEST(W25qDriver, WaitsOutBusyOnAClockThatAdvances) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now += 10'000; }, sim::kW25qMax);  // every look: +10 us
  ota::W25qFlash flash(chip, kSize, 100'000);
  ASSERT_NO_FATAL_FAILURE(expect_erase_write_read(flash, 0x10, 600, 3));
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();  // never spoke to a BUSY chip
}

// An application suspended an erase of its own sector (0x75), and the MCU was reset: SUS
// survives that, and while it is set the chip refuses every erase and program. probe() resumes
// it (0x7A, which a chip with nothing suspended ignores): the application's erase completes,
// instead of being aborted (as 66h + 99h would, corrupting its sector), and ours work again.
TEST(W25qDriver, ProbeResumesAnOperationLeftSuspended) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  const auto send = [&](std::initializer_list<std::uint8_t> bytes) {
    const Bytes b(bytes);
    chip.select(true);
    chip.transfer(b.data(), nullptr, b.size());
    chip.select(false);
  };
  send({0x06});
  send({0x02, 0x01, 0x00, 0x00, 0x00});  // the application's data at 64 KB, past block 0
  now += 1'000'000;
  send({0x06});
  send({0x20, 0x01, 0x00, 0x00});
  now += 1'000'000;
  send({0x75});
  now += 1'000'000;
  ASSERT_TRUE(chip.suspended());
  ASSERT_FALSE(chip.busy());
  chip.set_timing([&] { return now += 10'000; }, sim::kW25qTypical);  // every look: +10 us
  ota::W25qFlash flash(chip, kSize, 100'000);
  EXPECT_TRUE(flash.probe(nullptr));
  EXPECT_FALSE(chip.suspended());
  EXPECT_FALSE(chip.busy()) << "the application's erase completed within the probe's wait";
  ASSERT_NO_FATAL_FAILURE(expect_erase_write_read(flash, 0x3000, 300, 9));
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

// For tPUW after power-up the chip ignores 0x06: the driver sends it again until WEL sets, for
// up to poll_limit / 16 tries, and gives up after that on a chip that never sets it.
TEST(W25qDriver, WriteEnableIsSentAgainWhileTheChipIgnoresItAfterPowerUp) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now += 10'000; }, sim::kW25qTypical);  // every look: +10 us
  chip.power_up(10'000'000);
  RecordingBus bus(chip);
  ota::W25qFlash flash(bus, kSize, 100'000);
  const Bytes data = pattern(4, 7);
  ASSERT_TRUE(flash.erase(0));
  ASSERT_TRUE(flash.write(0, data.data(), data.size()));
  EXPECT_GT(chip.write_enables_ignored(), 10u);
  const auto wren = std::count(bus.log.begin(), bus.log.end(), Bytes{0x06});
  EXPECT_EQ(static_cast<std::uint64_t>(wren), chip.write_enables_ignored() + 2) << "until WEL sets, then once per operation";
  Bytes back(4);
  ASSERT_TRUE(flash.read(0, back.data(), back.size()));
  EXPECT_EQ(back, data);
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();

  sim::W25qChip late(power);  // tPUW longer than the driver waits: a clear failure, nothing done
  late.set_timing([&] { return now += 10'000; }, sim::kW25qTypical);
  late.power_up(1'000'000'000);
  RecordingBus late_bus(late);
  ota::W25qFlash give_up(late_bus, kSize, 160);
  EXPECT_FALSE(give_up.erase(0));
  EXPECT_EQ(late.write_enables_ignored(), 160u / 16 + 1);
}

// Forwards to the chip and advances the chip's clock by one byte time per byte clocked, as a
// real bus does, /CS high or low.
struct TimedBus final : ota::SpiBus {
  TimedBus(sim::W25qChip& c, std::uint64_t& clock, std::uint64_t byte_ns) : chip(c), now(clock), ns(byte_ns) {}
  void select(bool asserted) override { chip.select(asserted); }
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) override {
    chip.transfer(tx, rx, len);
    now += len * ns;
  }
  sim::W25qChip& chip;
  std::uint64_t& now;
  std::uint64_t ns;
};

// The application powered the chip down (0xB9, to save current) and the MCU was reset, which the
// chip does not see: in power-down it recognises nothing but 0xAB, so a probe that does not wake
// it reads BUSY forever and staging and flags are out of reach until a power cycle. probe() wakes
// it and keeps /CS high for tRES1, on the fastest bus that may read the chip (50 MHz).
TEST(W25qDriver, ProbeWakesAChipLeftInPowerDown) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);
  TimedBus bus(chip, now, 8 * 1000 / 50);  // 8 SCK periods at 50 MHz
  ota::W25qFlash flash(bus, kSize, 1'000'000);  // 160 ms of polls: a typical sector erase
  const std::uint8_t power_down = 0xB9;
  chip.select(true);
  chip.transfer(&power_down, nullptr, 1);
  chip.select(false);
  ASSERT_TRUE(chip.powered_down());
  std::uint32_t id = 0;
  ASSERT_TRUE(flash.probe(&id)) << chip.last_violation();
  EXPECT_EQ(id, 0xEF4015u);
  EXPECT_FALSE(chip.powered_down());
  ASSERT_NO_FATAL_FAILURE(expect_erase_write_read(flash, 0x80, 300, 5));
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

TEST(W25qDriver, TimesOutWhenTheChipStaysBusy) {
  sim::PowerSupply power;
  sim::W25qChip chip(power);
  std::uint64_t now = 0;
  chip.set_timing([&] { return now; }, sim::kW25qTypical);  // the clock stands still
  RecordingBus bus(chip);
  ota::W25qFlash flash(bus, kSize, 50);
  const Bytes data = pattern(4, 0);
  EXPECT_FALSE(flash.write(0, data.data(), data.size()));  // programs, then waits in vain
  EXPECT_EQ(bus.log.back().size(), 1u + 50u);               // 0x05 + exactly poll_limit reads
  Bytes back(4);
  EXPECT_FALSE(flash.read(0, back.data(), back.size()));
  EXPECT_FALSE(flash.erase(0));
  std::uint32_t id = 0;
  EXPECT_FALSE(flash.probe(&id));
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
  now += 3'000'000;
  // The failed probe marked the chip unusable; once it answers again, the next access uses it.
  ASSERT_TRUE(flash.read(0, back.data(), back.size()));
  EXPECT_EQ(back, data);
  ASSERT_TRUE(flash.probe(&id));
}

TEST(W25qDriver, PowerCutMidWriteFailsAndRecovers) {
  sim::PowerSupply power(4);
  sim::W25qChip chip(power);
  ota::W25qFlash flash(chip, kSize, kPolls);
  const Bytes data = pattern(1024, 5);
  power.plan_cut(2, sim::CutMode::torn);  // the third page program
  EXPECT_FALSE(flash.write(0, data.data(), data.size()));
  EXPECT_TRUE(power.dead());
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 512, chip.bytes().begin()));
  EXPECT_TRUE(std::all_of(chip.bytes().begin() + 768, chip.bytes().begin() + 1024,
                          [](std::uint8_t b) { return b == 0xFF; }));
  Bytes back(16);
  EXPECT_FALSE(flash.read(0, back.data(), back.size()));
  EXPECT_FALSE(flash.erase(0));
  power.power_on();
  ASSERT_TRUE(flash.erase(0));
  ASSERT_TRUE(flash.write(0, data.data(), data.size()));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), chip.bytes().begin()));
  EXPECT_EQ(chip.violations(), 0u) << chip.last_violation();
}

}  // namespace

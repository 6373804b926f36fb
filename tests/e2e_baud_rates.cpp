// OTA_USART1_BAUD (port/stm32f1/CMakeLists.txt) offers rates from 9600 to 2,000,000 baud for the
// bootloader and the applications, on the crystal and on the 64 MHz HSI fallback. These tests run the real
// firmware tree built at the two ends of that range (the fixture test firmware_at_other_rates
// builds it into OTA_BAUD_FIRMWARE_DIR/<baud>) on the emulated board, whose far end is told the
// rate (Config::link_baud), under the conditions the project already holds 115200 to
// (e2e_recovery_test: WithoutACrystalEverythingRunsOnTheHsi, the HSI anywhere in -2 .. +2.5 %).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <utility>

#include <unistd.h>

#include "e2e/board_wire.hpp"
#include "process.hpp"
#include "ota/frame.hpp"
#include "ota/host/session.hpp"
#include "ota/protocol.hpp"

namespace {

using Param = std::tuple<std::uint32_t, std::string>;  // baud, layout

e2e::Firmware firmware_at(std::uint32_t baud, const std::string& layout) {
  e2e::Firmware fw(layout);
  if (baud == 115200) return fw;  // the default build (OTA_FIRMWARE_DIR): the control
  fw.dir = std::string(OTA_BAUD_FIRMWARE_DIR) + "/" + std::to_string(baud) + "/" + layout;
  return fw;
}

e2e::WireOptions long_run() {
  e2e::WireOptions w;
  w.max_ms = 600000;  // 9600 baud: a minute and more
  return w;
}

class BaudRates : public ::testing::TestWithParam<Param> {
 protected:
  const std::uint32_t baud = std::get<0>(GetParam());
  const e2e::Firmware fw = firmware_at(baud, std::get<1>(GetParam()));
  // The board's far end runs at the rate.
  bluepill::Config config() const {
    bluepill::Config c;
    c.link_baud = baud;
    return c;
  }
  // Factory-fresh (bootloader and v1), powered on, v1's banner out.
  void boot_fresh(bluepill::Board& b) const {
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output() << b.diagnostics().error_text();
  }
};

// With the crystal: a whole update at the rate, no rule of the board broken (the board stops
// with an error when USART1 is more than 2.5 % from the far end's rate).
TEST_P(BaudRates, AnUpdateRunsOnTheCrystal) {
  bluepill::Board b(config());
  ASSERT_NO_FATAL_FAILURE(boot_fresh(b));
  ota::host::Session s(fw.app_bin(2), 2);
  const auto r = e2e::run(b, s, long_run());
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_EQ(s.resends(), 0u) << "frames re-sent at " << baud << " baud";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// Without a crystal (the 64 MHz HSI/2 x16 fallback of clock::init), with the HSI anywhere in
// its tolerance over temperature, as the project requires of 115200: the link still works at
// every rate the option accepts.
TEST_P(BaudRates, AnUpdateRunsOnTheHsiFallbackOverItsTolerance) {
  for (const double hsi_error : {0.0, 0.01, -0.02, 0.025}) {
    SCOPED_TRACE("HSI off by " + std::to_string(hsi_error * 100) + " %");
    bluepill::Config cfg = config();
    cfg.hse = false;
    cfg.hsi_error = hsi_error;
    bluepill::Board b(cfg);
    e2e::factory_fresh(b, fw);
    EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
    if (b.diagnostics().errors() != 0) continue;
    ota::host::Session s(fw.app_bin(2), 2);
    const auto r = e2e::run(b, s, long_run());
    ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
    EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
    EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
  }
}

// `ota push --recover` at the rate: the reset button pressed while the server sends RECOVER, the
// bootloader hears it in its 50 ms window, stays in recovery mode and takes v2.
TEST_P(BaudRates, TheBootloaderHearsRecoverAndTakesTheImage) {
  bluepill::Board b(config());
  ASSERT_NO_FATAL_FAILURE(boot_fresh(b));
  ota::host::SessionOptions o;
  o.recover = true;
  ota::host::Session s(fw.app_bin(2), 2, o);
  ASSERT_NE(e2e::run(b, s, e2e::reset_pressed_once(b, long_run())).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_TRUE(e2e::heard_bootloader(s)) << "the bootloader took it";
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, fw.app_bin(2)));
  EXPECT_EQ(s.resends(), 0u);
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// Bytes that reach RX before the firmware has turned USART1 on are lost, each after its own time
// on the wire: at the far end's rate (Config::link_baud), not at 115200. A RECOVER sent from the
// first instant behind 10 flush zeros arrives, at 9600 baud, 10.4 ms to 15.6 ms after power-on:
// after the bootloader has turned its receiver on (a few ms), inside its listening window, and
// it stays in recovery mode. (At 115200 the same 15 bytes would be over in 1.3 ms, before the
// receiver is on.)
TEST(BaudRate, BytesSentBeforeTheReceiverIsOnTakeTheirTimeAtTheLinksRate) {
  const e2e::Firmware fw = firmware_at(9600, "internal");
  bluepill::Config cfg;
  cfg.link_baud = 9600;
  bluepill::Board b(cfg);
  b.load_image(fw.bootloader_elf());
  b.load_image(fw.app_elf(1));
  std::string bytes(10, '\0');
  std::uint8_t frame[8];
  const std::size_t n =
      ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::recover), nullptr, 0, frame, sizeof frame);
  bytes.append(reinterpret_cast<const char*>(frame), n);
  b.power_on();
  b.uart_send(bytes);
  ASSERT_NE(b.run_for_us(300e3).stop, bluepill::Stop::error) << b.diagnostics().error_text();
  EXPECT_NE(b.uart_output().find("recovery"), std::string::npos)
      << "the RECOVER that arrived 10 ms after power-on was lost: " << b.uart_output();
}

// `ota push --recover` (or `ota status --recover`) on a device whose application runs: the
// server sends RECOVER every 10 ms until the user presses reset (a HELLO for each would take 48 ms
// at 9600 baud; the client answers one in 32). The application must keep running meanwhile (its
// main loop, its LED, its watchdog fed), for the 10 s a user may take to reach the button.
TEST_P(BaudRates, ARunningApplicationKeepsRunningWhileRecoverIsSent) {
  bluepill::Board b(config());
  ASSERT_NO_FATAL_FAILURE(boot_fresh(b));
  const std::uint32_t resets = b.resets(), changes = b.led_changes();
  ota::host::SessionOptions o;
  o.recover = true;
  o.query = true;  // ota status --recover
  o.hello_timeout_ms = 10000;
  ota::host::Session s(fw.app_bin(2), 2, o);
  ASSERT_NE(e2e::run(b, s, long_run()).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::timeout) << s.detail();  // nobody pressed reset
  EXPECT_EQ(b.resets(), resets) << "the application was reset (its watchdog) while RECOVER came at " << baud
                                << " baud:\n" << b.uart_output().substr(b.uart_output().size() > 400 ? b.uart_output().size() - 400 : 0);
  EXPECT_GE(b.led_changes() - changes, 16u) << "PC13 blinks at 1 Hz: its main loop ran";
}

// The largest image, the slowest flash and W25Q timings, a core at 2 cycles per instruction and
// the hardware watchdog option (as Recovery.TheHardwareWatchdogOptionDoesNotInterruptTheLargestUpdate
// at 115200): no watchdog reset, no frame re-sent, at the rate.
TEST_P(BaudRates, TheLargestUpdateAtTheSlowestTimings) {
  bluepill::Config cfg = config();
  cfg.hardware_watchdog = true;
  cfg.cycles_per_instruction = 2;
  cfg.lsi_hz = 60'000;
  cfg.timing = bluepill::TimingMode::maximum;
  bluepill::Board b(cfg);
  ASSERT_NO_FATAL_FAILURE(boot_fresh(b));
  const auto v2 = fw.largest_app(2, 2);
  ota::host::Session s(v2, 2);
  const auto r = e2e::run(b, s, long_run());
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_EQ(s.resends(), 0u);
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
  std::size_t watchdog_resets = 0;
  for (const auto& d : b.diagnostics().all()) watchdog_resets += d.text.find("watchdog reset") != std::string::npos;
  EXPECT_EQ(watchdog_resets, 0u);
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// An application built for 9600 baud offered to a device whose firmware runs at 115200 (a release
// built in a tree configured for a bench test): installed, it would talk at a rate its adapter or
// modem does not, out of reach. The application's client refuses it once downloaded (the rate is
// in its app info), before "OTA-START", and so does the bootloader in recovery mode; v1 keeps
// running. Over a serial port `ota push` refuses it from HELLO, before START (exit 3).
TEST(BaudRate, AnApplicationBuiltForAnotherRateIsRefused) {
  const e2e::Firmware fw("internal"), slow = firmware_at(9600, "internal");
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  ota::host::SessionOptions o;
  o.image_link_baud = 9600;  // a server that does not know the link's rate (TCP)
  ota::host::Session s(slow.app_bin(2), 2, o);
  ASSERT_NE(e2e::run(b, s).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::refused) << s.detail();
  EXPECT_NE(s.detail().find("another link rate than 9600 baud"), std::string::npos) << s.detail();
  b.reset_pin();
  EXPECT_EQ(e2e::boot_to_banner(b), 1) << "v1 no longer runs: " << b.uart_output();
  // The bootloader, in recovery mode after RECOVER: the same.
  o.recover = true;
  ota::host::Session r(slow.app_bin(2), 2, o);
  ASSERT_NE(e2e::run(b, r, e2e::reset_pressed_once(b)).stop, bluepill::Stop::error);
  EXPECT_EQ(r.outcome(), ota::host::Outcome::refused) << r.detail();
  EXPECT_TRUE(e2e::heard_bootloader(r)) << "not refused by the bootloader";
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, fw.app_bin(1)));

  // `ota push --port`: refused from the device's HELLO, nothing sent.
  const std::string dir = ::testing::TempDir() + "rate_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string ota_file = dir + "/slow-v2.ota";
  test::Process build({OTA_TOOL, "image", "build", slow.app_elf(2), "-o", ota_file});
  ASSERT_EQ(build.wait(std::chrono::seconds(30)), 0) << build.output();
  EXPECT_NE(build.output().find("9600 baud"), std::string::npos) << build.output();
  test::Process board({BLUEPILL, "-q", "--image", fw.bootloader_elf(), "--image", fw.app_elf(1), "--pty"});
  const auto line = board.wait_for("bluepill: USART1 on ", std::chrono::seconds(20));
  ASSERT_TRUE(line) << board.output();
  test::Process push({OTA_TOOL, "push", ota_file, "--port", line->substr(line->rfind(' ') + 1), "--timeout", "30"});
  EXPECT_EQ(push.wait(std::chrono::seconds(60)), 3) << push.output();
  EXPECT_NE(push.output().find("talks at 9600 baud (its app info says so), the device at 115200"), std::string::npos)
      << push.output();
  EXPECT_EQ(push.output().find("start "), std::string::npos) << "START was sent: " << push.output();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Ends, BaudRates,
                         ::testing::Combine(::testing::Values(9600u, 115200u, 2000000u),
                                            ::testing::Values("internal", "external")),
                         [](const auto& i) {
                           return std::get<1>(i.param) + "_" + std::to_string(std::get<0>(i.param));
                         });

}  // namespace

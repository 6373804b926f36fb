// The bootloader on the emulated board when there is no valid application: it must not be a
// brick. It stays in recovery mode, takes an image over USART1 with the same protocol, installs
// it and starts it. Also: the firmware images respect their hard size limits.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <utility>

#include "bluepill/chip.hpp"  // ResetCause, FlashCtrl::kWornBits
#include "e2e/board_wire.hpp"
#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/frame.hpp"
#include "ota/host/image.hpp"
#include "ota/protocol.hpp"
#include "sim/internal_flash.hpp"

namespace {

class Recovery : public ::testing::TestWithParam<std::string> {};

// The bootloader's line for a failed install: on the external layout it names the W25Q.
std::string install_failure(const e2e::Firmware& fw) {
  return fw.layout->staging.medium == ota::Medium::external ? "install: flash/W25Q failure" : "install: flash failure";
}

void expect_recovers(bluepill::Board& b, const e2e::Firmware& fw) {
  b.power_on();
  ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
  const auto v2 = fw.app_bin(2);
  ota::host::Session s(v2, 2);
  const auto r = e2e::run(b, s);
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  ASSERT_TRUE(s.device());
  EXPECT_EQ(s.device()->app_version, 2u);
  bool recovery_hello = false;
  for (const auto& e : s.take_events()) recovery_hello |= e.text.find("bootloader (recovery mode)") != std::string::npos;
  EXPECT_TRUE(recovery_hello) << "the first HELLO came from the bootloader's recovery client";
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// Pushes v2 (the example application, or `image`) and expects it installed, with no rule of the
// board broken on the way.
void expect_upgrade_to_v2(bluepill::Board& b, const e2e::Firmware& fw, std::vector<std::uint8_t> image = {}) {
  const auto v2 = image.empty() ? fw.app_bin(2) : image;
  ota::host::Session s(v2, 2);
  const auto r = e2e::run(b, s);
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// Runs `s` on `b`; once the device resets to install (its "boot " line, found at `boot_at`), the
// supply settles at 2.75 V, just below the voltage detector, and stays there.
void push_with_the_supply_low_from_the_install(bluepill::Board& b, ota::host::Session& s, std::size_t& boot_at) {
  const std::size_t from = b.uart_output().size();
  e2e::WireOptions w;
  w.step_us = 100;
  w.stop_at = [&](double) {
    if (boot_at == std::string::npos && (boot_at = b.uart_output().find("boot ", from)) != std::string::npos)
      b.set_supply_volts(2.75);
    return false;
  };
  ASSERT_NE(e2e::run(b, s, w).stop, bluepill::Stop::error);
  ASSERT_NE(boot_at, std::string::npos);
}

TEST_P(Recovery, BootloaderAloneTakesAnImage) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  b.load_image(fw.bootloader_elf());  // nothing in the application area
  expect_recovers(b, fw);
}

// The real application built for the other layout (its vector table fits this board: the
// application starts at 0x08002000 in both), sent by a server that does not compare layouts: the
// application's client and the bootloader's recovery client both refuse it by its app info,
// and the board keeps what it had.
TEST_P(Recovery, AnApplicationBuiltForTheOtherLayoutIsRefused) {
  const e2e::Firmware fw(GetParam());
  const e2e::Firmware other(GetParam() == std::string("internal") ? "external" : "internal");
  const auto wrong = other.app_bin(2);
  auto push_wrong = [&](bluepill::Board& b) {
    ota::host::Session s(wrong, 2);  // no SessionOptions::layout: the session sends it
    const auto r = e2e::run(b, s);
    ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
    EXPECT_EQ(s.outcome(), ota::host::Outcome::refused) << s.detail();
    EXPECT_NE(s.detail().find("not a valid application"), std::string::npos) << s.detail();
  };
  {
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    push_wrong(b);
    b.power_cut();
    b.power_on();
    EXPECT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  }
  {
    bluepill::Board b;
    b.load_image(fw.bootloader_elf());
    b.power_on();
    ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
    push_wrong(b);
    b.power_cut();
    expect_recovers(b, fw);  // still in recovery, and takes its own
  }
}

// The bootloader of this layout with the application of the other one, as two st-flash or
// OpenOCD commands run from the two build directories leave it. The bootloader used to start
// that application: its updates then staged where this bootloader never looks, and every push
// ended upgrade-failed, "the bootloader could not install the image (a flash operation failed,
// or the supply is low)": a wrong diagnosis, for ever. The application's app info names its
// layout: the bootloader stays in recovery, where `ota push` of an image of its own layout
// repairs the board over the air.
TEST_P(Recovery, AnApplicationOfTheOtherLayoutIsNotStartedByTheBootloader) {
  const e2e::Firmware fw(GetParam());
  const e2e::Firmware other(GetParam() == std::string("internal") ? "external" : "internal");
  bluepill::Board b;
  b.load_image(fw.bootloader_elf());
  b.load_image(other.app_elf(1));
  b.power_on();
  b.run_for_us(3e6);
  const std::string out = b.uart_output();
  ASSERT_NE(out.find(std::string("boot ") + GetParam()), std::string::npos) << out;
  EXPECT_EQ(out.find("app v"), std::string::npos)
      << "the " << GetParam() << " bootloader started an application of the other layout:\n" << out;
  ASSERT_NE(out.find("recovery"), std::string::npos) << out;
  // Repaired over the air by an image of the bootloader's layout.
  expect_upgrade_to_v2(b, fw);
}

TEST_P(Recovery, DamagedApplicationIsNotStartedButReplaced) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  b.load_image(fw.bootloader_elf());
  b.load_image(fw.app_elf(1));
  // The first page of the application erased (as after a botched manual flashing).
  auto mem = b.flash().bytes().subspan(fw.layout->app.base - sim::InternalFlash::kBase, ota::kFlashPage);
  std::fill(mem.begin(), mem.end(), 0xFF);
  expect_recovers(b, fw);
}

INSTANTIATE_TEST_SUITE_P(Layouts, Recovery, ::testing::Values("internal", "external"),
                         [](const auto& i) { return i.param; });

// An application that crashes right after the jump (its reset handler runs into erased flash):
// the device resets and crashes again forever. A server asked to recover it keeps sending
// RECOVER; the bootloader hears it in its listening window, stays in recovery and takes v2.
TEST_P(Recovery, CrashingApplicationIsRecoveredWithRecover) {
  const e2e::Firmware fw(GetParam());
  auto crashing = fw.app_bin(1);
  const std::uint32_t erased = fw.layout->app.base + 0x4000;  // beyond the image: 0xFFFF
  ASSERT_LT(crashing.size(), 0x4000u);
  crashing[4] = static_cast<std::uint8_t>(erased | 1);
  crashing[5] = static_cast<std::uint8_t>(erased >> 8);
  crashing[6] = static_cast<std::uint8_t>(erased >> 16);
  crashing[7] = static_cast<std::uint8_t>(erased >> 24);
  const auto file = std::filesystem::temp_directory_path() / ("crashing-" + std::to_string(::getpid()) + ".bin");
  ASSERT_FALSE(ota::host::save_file(file, crashing));
  bluepill::Config cfg;
  cfg.strict = false;  // the crash is the point: faults go to the firmware's handlers
  bluepill::Board b(cfg);
  b.load_image(fw.bootloader_elf());
  b.load_image(file.string(), fw.layout->app.base);
  std::filesystem::remove(file);
  b.power_on();
  ASSERT_EQ(b.run_for_us(1e6).stop, bluepill::Stop::limit);
  EXPECT_GE(b.resets(), 5u) << "the application should crash and reset over and over";
  EXPECT_EQ(b.uart_output().find("app v"), std::string::npos);

  // A plain push cannot reach it...
  ota::host::SessionOptions plain;
  plain.hello_timeout_ms = 2000;
  ota::host::Session s1(fw.app_bin(2), 2, plain);
  e2e::run(b, s1);
  EXPECT_EQ(s1.outcome(), ota::host::Outcome::timeout);
  // ...a recovering one does.
  ota::host::SessionOptions o;
  o.recover = true;
  ota::host::Session s(fw.app_bin(2), 2, o);
  e2e::run(b, s);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, fw.app_bin(2)));
  EXPECT_EQ(e2e::boot_to_banner(b), -1) << "already running: the banner was printed before";
  EXPECT_NE(b.uart_output().find("app v2"), std::string::npos);
}

// Another product's image: a plain push is refused by the application, a --recover push goes to
// the bootloader, which takes it (HELLO: it holds a valid application, product unsaid), and the
// board then runs the other product.
TEST_P(Recovery, AnotherProductGoesInOnlyThroughRecover) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  const auto other = fw.relabelled_app(2, "another-product");
  ota::AppInfo info;
  ASSERT_TRUE(ota::find_app_info(other.data(), other.size(), info));
  ota::host::SessionOptions o;
  o.product = info.product;
  ota::host::Session plain(other, 2, o);
  e2e::run(b, plain);
  EXPECT_EQ(plain.outcome(), ota::host::Outcome::refused) << plain.detail();
  o.recover = true;
  ota::host::Session s(other, 2, o);
  // The reset button, pressed while the push sends RECOVER.
  ASSERT_NE(e2e::run(b, s, e2e::reset_pressed_once(b)).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_TRUE(e2e::heard_bootloader(s)) << "the bootloader took it";
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, other));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The bootloader's HELLO names the version of the application it holds, so that a --recover push
// or serve follows the version rules as with the application: a healthy v2 caught in its
// bootloader's listening window is not rolled back to v1 without --force, nor given v2 again by a
// serve (a push --recover, asked to recover this very device, sends v2 again).
TEST_P(Recovery, ARecoverPushKeepsTheVersionRulesOfTheApplicationHeld) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ota::host::Session up(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, up).stop, bluepill::Stop::error);
  ASSERT_EQ(up.outcome(), ota::host::Outcome::upgraded) << up.detail();
  auto recover_push = [&](std::uint32_t version, bool force, bool fleet) {
    ota::host::SessionOptions o;
    o.recover = true;
    o.recover_fleet = fleet;
    o.force = force;
    auto s = std::make_unique<ota::host::Session>(fw.app_bin(version), version, o);
    EXPECT_NE(e2e::run(b, *s, e2e::reset_pressed_once(b)).stop, bluepill::Stop::error);
    EXPECT_TRUE(e2e::heard_bootloader(*s, "holding application v2")) << "no HELLO from the bootloader naming v2: "
                                                                       << s->detail();
    return s;
  };
  for (const bool fleet : {false, true}) {
    SCOPED_TRACE(fleet ? "ota serve --recover" : "ota push --recover");
    auto older = recover_push(1, false, fleet);
    EXPECT_EQ(older->outcome(), ota::host::Outcome::refused) << older->detail();
    EXPECT_EQ(older->detail(), "device's bootloader holds v2, newer than the image's v1 (--force to downgrade)");
    if (!fleet) continue;  // `ota push --recover` sends the same version again: asked to recover the device
    auto same = recover_push(2, false, fleet);
    EXPECT_EQ(same->outcome(), ota::host::Outcome::up_to_date) << same->detail();
    EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, fw.app_bin(2)));
  }
  auto again = recover_push(2, false, false);
  EXPECT_EQ(again->outcome(), ota::host::Outcome::upgraded) << again->detail();
  auto forced = recover_push(1, true, false);
  EXPECT_EQ(forced->outcome(), ota::host::Outcome::upgraded) << forced->detail();
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, fw.app_bin(1)));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// RECOVER kept the bootloader in recovery mode, and then the server went away (the --recover push
// was stopped, the link died) with the application still valid: after kRecoveryIdleMs without a
// frame the bootloader resets and starts it, not before. Line noise meanwhile (bytes every 2 s,
// zeros among them, that make no frame) does not keep it there. The device is not left out of
// service.
TEST_P(Recovery, RecoveryModeWithAValidApplicationGoesBackToItWhenTheServerGoesAway) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  std::uint8_t frame[8];
  const std::size_t n =
      ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::recover), nullptr, 0, frame, sizeof frame);
  const std::vector<std::uint8_t> recover(frame, frame + n);
  b.power_on();
  for (int i = 0; i < 200 && b.uart_output().find("recovery") == std::string::npos; ++i) {
    b.uart_send(recover);  // as `ota push --recover` does, every few ms
    ASSERT_NE(b.run_for_us(5e3).stop, bluepill::Stop::error);
  }
  ASSERT_NE(b.uart_output().find("recovery"), std::string::npos) << b.uart_output();
  ASSERT_EQ(b.uart_output().find("app v"), std::string::npos) << b.uart_output();
  b.clear_uart_output();
  const std::vector<std::uint8_t> noise{0x55, 0x00, 0xA7, 0x13, 0x00};
  const double idle_us = ota::kRecoveryIdleMs * 1e3;
  for (double t = 0; t + 2e6 <= idle_us - 1e6; t += 2e6) {
    b.uart_send(noise);
    ASSERT_EQ(b.run_for_us(2e6).stop, bluepill::Stop::limit);
  }
  EXPECT_EQ(b.uart_output().find("app v"), std::string::npos) << "went back before the idle time: " << b.uart_output();
  b.uart_send(noise);
  EXPECT_EQ(b.run_until_output("app v1", 4e6).stop, bluepill::Stop::condition)
      << "still in recovery mode: " << b.uart_output();
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// RECOVER kept the bootloader in recovery mode with the application valid, and the server goes on
// talking (a frame every 2 s, longer in all than kRecoveryIdleMs): the idle time counts from the
// server's last frame, so the bootloader stays for it and does not reset into the application
// under a server that is still there.
TEST_P(Recovery, RecoveryModeWithAValidApplicationStaysWhileTheServerTalks) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  std::uint8_t frame[8];
  const std::size_t n =
      ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::recover), nullptr, 0, frame, sizeof frame);
  const std::vector<std::uint8_t> recover(frame, frame + n);
  b.power_on();
  for (int i = 0; i < 200 && b.uart_output().find("recovery") == std::string::npos; ++i) {
    b.uart_send(recover);
    ASSERT_NE(b.run_for_us(5e3).stop, bluepill::Stop::error);
  }
  ASSERT_NE(b.uart_output().find("recovery"), std::string::npos) << b.uart_output();
  b.clear_uart_output();
  const double idle_us = ota::kRecoveryIdleMs * 1e3;
  for (double t = 0; t < idle_us + 10e6; t += 2e6) {
    b.uart_send(recover);  // answered with a HELLO: a server, not line noise
    ASSERT_EQ(b.run_for_us(2e6).stop, bluepill::Stop::limit);
  }
  EXPECT_EQ(b.resets(), 0u);
  EXPECT_EQ(b.uart_output().find("app v"), std::string::npos) << "left the server for the application";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// While a download runs the example application blinks PC13 at 5 Hz (a change every 100 ms), five
// times its idle 1 Hz: a user sees that an update is under way. Counted over the second that
// starts half a second into the download of the largest image (which lasts several seconds): at
// least 5 changes (1 Hz gives 2; the flash operations of the download delay some).
TEST_P(Recovery, ExampleApplicationBlinksFasterWhileADownloadRuns) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  ota::host::Session s(fw.largest_app(2, 2), 2);
  double started_ms = -1;
  std::uint32_t at_start = 0, after_a_second = 0;
  bool measured = false;
  e2e::WireOptions w;
  w.stop_at = [&](double now_ms) {
    if (started_ms < 0 && s.packets_acked() > 0) started_ms = now_ms;
    if (started_ms >= 0 && !at_start && now_ms >= started_ms + 500) at_start = b.led_changes();
    if (at_start && !measured && now_ms >= started_ms + 1500) {
      after_a_second = b.led_changes();
      measured = true;
    }
    return false;
  };
  ASSERT_NE(e2e::run(b, s, w).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  ASSERT_TRUE(measured) << "the download was over within 1.5 s";
  EXPECT_GE(after_a_second - at_start, 5u) << "PC13 blinks at 5 Hz (a change every 100 ms)";
  EXPECT_LE(after_a_second - at_start, 12u);
}

// What the example application's HELLO says comes from stm32f1::application_info(): the app
// info record's version and product, the window its 6 KB receive ring holds, the chip's UID.
TEST_P(Recovery, TheApplicationSaysItsAppInfoUidAndTheWindowItsRingHolds) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ota::host::Session s(fw.app_bin(2), 2);
  const auto r = e2e::run(b, s);
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  ASSERT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  ASSERT_TRUE(s.device());
  const ota::Hello& h = *s.device();  // v2's, after the install
  EXPECT_EQ(h.role, ota::Role::application);
  EXPECT_EQ(h.app_version, 2u);
  EXPECT_EQ(h.product, ota::AppInfo::product_id("ota-example-app"));
  EXPECT_EQ(h.window, (6144 - 1) / ota::encoded_size_max(2 + ota::kMaxChunk));
  std::uint8_t uid[12];
  for (int w = 0; w < 3; ++w) ota::put_u32(uid + 4 * w, b.config().uid[w]);
  EXPECT_TRUE(std::equal(uid, uid + 12, h.uid));
}

// The example application as a user sees it: it blinks PC13 and feeds the watchdog (6 s of
// running, beyond the 4 s IWDG period, without a reset).
TEST_P(Recovery, ExampleApplicationBlinksAndKeepsTheWatchdogFed) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  const std::uint32_t resets = b.resets(), changes = b.led_changes();
  ASSERT_EQ(b.run_for_us(6e6).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
  EXPECT_EQ(b.resets(), resets) << "the watchdog reset the board";
  EXPECT_GE(b.led_changes() - changes, 10u) << "PC13 blinks at 1 Hz (a change every 500 ms)";
  EXPECT_LE(b.led_changes() - changes, 14u);
}

// A board whose crystal does not start: both images fall back to the HSI (through the PLL, at
// 64 MHz) and must still set USART1 to 115200 baud (the board checks the rate against the far
// end's: 2.5 % apart at most), drive the W25Q and program the flash. A whole update runs on it,
// with the HSI anywhere in its tolerance over temperature (-2 .. +2.5 %). On the HSI's own 8 MHz
// the baud divider's +0.6 % would take the hot end past the far end's tolerance.
TEST_P(Recovery, WithoutACrystalEverythingRunsOnTheHsi) {
  const e2e::Firmware fw(GetParam());
  for (const double hsi_error : {0.0, -0.02, 0.025}) {
    SCOPED_TRACE("HSI off by " + std::to_string(hsi_error * 100) + " %");
    bluepill::Config cfg;
    cfg.hse = false;
    cfg.hsi_error = hsi_error;
    bluepill::Board b(cfg);
    e2e::factory_fresh(b, fw);
    expect_upgrade_to_v2(b, fw);
    EXPECT_NE(b.uart_output().find("app v2 "), std::string::npos) << b.uart_output();
    std::uint32_t cfgr = 0xFFFFFFFF;
    ASSERT_TRUE(b.debug_read(0x40021004, &cfgr, 4));
    EXPECT_EQ(cfgr & 0xCu, 0x8u) << "SYSCLK is the PLL (SWS = 10)";
    EXPECT_EQ(cfgr & 0x3F0000u, 0x380000u) << "fed by HSI/2 (PLLSRC = 0), x16";
  }
}

// A PLL that never locks (a damaged or out-of-spec part), with or without the crystal: both
// images give up waiting for it and run on the HSI's own 8 MHz, USART1's divider set for that
// clock (BRR 69: 115942 baud, +0.6 %). A whole update runs so with the HSI cold or at its 25 °C
// trim. Hot (+2.5 %), the two errors add up to 3.2 %, past what the far end's receiver takes:
// the board says every byte is garbled, as it would be on the bench.
TEST_P(Recovery, APllThatNeverLocksLeavesEverythingOnTheHsisOwnEightMegahertz) {
  const e2e::Firmware fw(GetParam());
  for (const bool crystal : {true, false})
    for (const double hsi_error : {0.0, 0.01, -0.02}) {
      SCOPED_TRACE(std::string(crystal ? "crystal" : "no crystal") + ", HSI off by " +
                   std::to_string(hsi_error * 100) + " %");
      bluepill::Config cfg;
      cfg.pll_locks = false;
      cfg.hse = crystal;
      cfg.hsi_error = hsi_error;
      bluepill::Board b(cfg);
      e2e::factory_fresh(b, fw);
      expect_upgrade_to_v2(b, fw);
      EXPECT_NE(b.uart_output().find("app v2 "), std::string::npos) << b.uart_output();
      std::uint32_t cr = 0xFFFFFFFF, cfgr = 0xFFFFFFFF, brr = 0;
      ASSERT_TRUE(b.debug_read(0x40021000, &cr, 4));
      ASSERT_TRUE(b.debug_read(0x40021004, &cfgr, 4));
      ASSERT_TRUE(b.debug_read(0x40013808, &brr, 4));
      EXPECT_EQ(cfgr & 0xCu, 0x0u) << "SYSCLK is the HSI (SWS = 00)";
      EXPECT_EQ(cr & ((1u << 24) | (1u << 16)), 0u) << "the PLL and the crystal are off again";
      EXPECT_EQ(brr, 69u) << "USART1 divided for 8 MHz";
    }
  bluepill::Config hot;
  hot.pll_locks = false;
  hot.hsi_error = 0.025;
  bluepill::Board b(hot);
  e2e::factory_fresh(b, fw);
  b.run_for_us(1e6);
  EXPECT_NE(b.diagnostics().error_text().find("every byte is garbled"), std::string::npos)
      << b.diagnostics().error_text();
}

// RCC as the core sees it: the system clock is the PLL (CFGR.SWS), the core runs on the crystal
// (CR.HSEON, and the PLL fed from HSE: CFGR.PLLSRC).
std::uint32_t rcc_reg(bluepill::Board& b, std::uint32_t offset) {
  std::uint32_t v = 0;
  EXPECT_TRUE(b.debug_read(0x40021000 + offset, &v, 4));
  return v;
}
bool sysclk_is_pll(bluepill::Board& b) { return (rcc_reg(b, 0x04) & 0xCu) == 0x8u; }
bool on_crystal(bluepill::Board& b) { return (rcc_reg(b, 0x00) & (1u << 16)) && (rcc_reg(b, 0x04) & (1u << 16)); }

// A crystal that takes its time to start (ten times the 2 ms typical of DS5319: a cold board,
// load capacitors at their limits): both images still wait for it and run at 72 MHz from the
// PLL. A start-up timeout cut too short (as in some vendor examples) would leave them on the HSI,
// and its ±1 % (worse over temperature) under the 115200 baud of the link.
TEST_P(Recovery, ASlowCrystalStillGivesSeventyTwoMegahertz) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.hse_startup_us = 20'000;
  {
    bluepill::Board b(cfg);
    b.load_image(fw.bootloader_elf());
    b.power_on();
    ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
    EXPECT_TRUE(sysclk_is_pll(b)) << "the bootloader";
  }
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output() << b.diagnostics().error_text();
  EXPECT_TRUE(sysclk_is_pll(b)) << "the application";
  expect_upgrade_to_v2(b, fw);
  EXPECT_TRUE(sysclk_is_pll(b)) << "v2";
}

// The bootloader's pages write-protected by the option bytes (WRP bits 0-1: pages 0-7), as
// docs/flashing.md recommends for the field: updates, installs and recovery never touch them, so a
// protected board updates as any other (the board reports a WRPRTERR as an error).
TEST_P(Recovery, WriteProtectedBootloaderPagesDoNotGetInTheWay) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.write_protect = 0b11;
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  expect_upgrade_to_v2(b, fw);
}

// A flash operation of the install fails (pages 8-11 write-protected: any flash fault would do).
// The half-copied application is not started; the bootloader's recovery client tells the server
// that the install failed (the push ends with a clear reason) and, unlike an application with an
// install pending, takes the image again: once the fault is gone a second push installs it,
// without a power cycle.
TEST_P(Recovery, AFailedInstallIsReportedAndTheNextPushInstalls) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.strict = false;  // the board reports the WRPRTERR as an error: that is the fault
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_write_protect(0b100);
  ota::host::Session first(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, first).stop, bluepill::Stop::error);
  EXPECT_EQ(first.outcome(), ota::host::Outcome::upgrade_failed) << first.detail();
  EXPECT_NE(first.detail().find("could not install"), std::string::npos) << first.detail();
  EXPECT_NE(b.uart_output().find(install_failure(fw)), std::string::npos) << b.uart_output();
  EXPECT_EQ(b.uart_output().find("app v2"), std::string::npos) << "the half-copied v2 was started";

  b.set_write_protect(0);
  b.diagnostics().clear();
  expect_upgrade_to_v2(b, fw);
  EXPECT_NE(b.uart_output().find("app v2 "), std::string::npos) << b.uart_output();
}

// A flash operation that failed (a WRPRTERR of the install: pages 8-11 write-protected) leaves
// nothing behind for the operations that follow in the same power cycle: its error flags are
// cleared (FLASH_SR is write-1-to-clear, and a jump to the application resets nothing there), so
// that once the fault is gone the application, started by the bootloader that met it, erases
// and writes staging for another image (in the internal flash, in the internal layout), and that
// image installs.
TEST_P(Recovery, AFailedFlashOperationDoesNotFailTheOnesThatFollow) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.strict = false;  // the board reports the WRPRTERR as an error: that is the fault
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_write_protect(0b100);
  ota::host::Session first(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, first).stop, bluepill::Stop::error);
  ASSERT_EQ(first.outcome(), ota::host::Outcome::upgrade_failed) << first.detail();
  ASSERT_NE(b.uart_output().find(install_failure(fw)), std::string::npos) << b.uart_output();
  b.set_write_protect(0);
  b.diagnostics().clear();
  expect_upgrade_to_v2(b, fw, fw.largest_app(2, 3));  // another image: staging erased and written again
}

// An install fails half-way (pages 12-15 write-protected, after the vector table is zeroed: any
// flash fault would do), which leaves no application to start, and no server comes back for it:
// after kRecoveryIdleMs without a frame the bootloader's recovery mode resets and the next boot
// tries the install again, which, the fault gone meanwhile (a W25Q that answers again, say),
// installs the staged image without any push.
TEST_P(Recovery, AFailedInstallIsTriedAgainAfterTheIdleTimeWithoutAServer) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.strict = false;  // the board reports the WRPRTERR as an error: that is the fault
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_write_protect(0b1000);
  const auto v2 = fw.largest_app(2, 2);
  ota::host::Session first(v2, 2);
  ASSERT_NE(e2e::run(b, first).stop, bluepill::Stop::error);
  ASSERT_EQ(first.outcome(), ota::host::Outcome::upgrade_failed) << first.detail();
  ASSERT_NE(first.detail().find("waits in recovery mode"), std::string::npos) << first.detail();
  b.set_write_protect(0);
  b.diagnostics().clear();
  const std::size_t seen = b.uart_output().size();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("app v2", seen) != std::string::npos; },
                        ota::kRecoveryIdleMs * 1e3 + 5e6)
                .stop,
            bluepill::Stop::condition)
      << "still in recovery mode: " << b.uart_output().substr(seen);
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// An install of the device's own v2 fails half-way (pages 12-15 write-protected: any flash fault
// would do): the application has no vector table, but the whole v2 of its own product is staged and
// armed ("OTA-START"), and the bootloader retries it after every reset. Its recovery HELLO says
// "install failed" with that image's CRC-32, but names product 0, as for a board that holds
// nothing. A server for another product (`ota serve` of product "another-product", no
// --recover: it must update its own product's devices only) that this device dials into used to
// offer its image, which the bootloader took in place of the staged one and installed: the board
// changed product without anybody asking. Such a server now refuses, and a push of the device's
// own image resumes and installs it.
TEST_P(Recovery, AFailedInstallDoesNotLetAnotherProductsServerChangeTheProduct) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.strict = false;  // the board reports the WRPRTERR as an error: that is the fault
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_write_protect(0b1000);  // pages 12-15: after the vector table is zeroed
  ota::host::Session first(fw.largest_app(2, 2), 2);
  ASSERT_NE(e2e::run(b, first).stop, bluepill::Stop::error);
  ASSERT_EQ(first.outcome(), ota::host::Outcome::upgrade_failed) << first.detail();
  ASSERT_NE(first.detail().find("waits in recovery mode"), std::string::npos) << first.detail();
  b.set_write_protect(0);  // the fault is gone: the next reset would install the staged v2
  b.diagnostics().clear();

  const auto other = fw.relabelled_app(2, "another-product");
  ota::AppInfo info;
  ASSERT_TRUE(ota::find_app_info(other.data(), other.size(), info));
  ota::host::SessionOptions o;
  o.product = info.product;  // as `ota serve` sets it from the image's app info
  ota::host::Session serve(other, 2, o);
  ASSERT_NE(e2e::run(b, serve).stop, bluepill::Stop::error);
  EXPECT_EQ(serve.outcome(), ota::host::Outcome::refused) << serve.detail();
  EXPECT_NE(serve.detail().find("--recover"), std::string::npos) << serve.detail();
  EXPECT_FALSE(e2e::app_area_is(b, *fw.layout, other)) << "the board now runs another product";
  expect_upgrade_to_v2(b, fw, fw.largest_app(2, 2));
}

// The crystal dies while the device runs. The clock security system moves the core to HSI and
// raises the NMI, whose handler resets the chip; the next start-up finds no HSE and runs on HSI
// at the right baud rate. Without CSS the core would stop: the application only after its
// watchdog (6 s), the bootloader's recovery mode (no watchdog) never.
TEST_P(Recovery, ACrystalThatDiesWhileRunningIsSurvivedOnTheHsi) {
  const e2e::Firmware fw(GetParam());
  {  // the application
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    const std::uint32_t resets = b.resets();
    b.hse_failure();
    ASSERT_EQ(e2e::boot_to_banner(b, 1e6), 1) << "no restart within 1 s\n" << b.uart_output() << b.diagnostics().error_text();
    EXPECT_EQ(b.resets(), resets + 1);
    EXPECT_EQ(b.last_reset(), bluepill::ResetCause::software) << "the NMI handler, not the watchdog";
    expect_upgrade_to_v2(b, fw);
  }
  {  // the bootloader in recovery mode
    bluepill::Board b;
    b.load_image(fw.bootloader_elf());
    b.power_on();
    ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
    const std::size_t seen = b.uart_output().size();
    b.hse_failure();
    ASSERT_EQ(b.run_until([&] { return b.uart_output().find("recovery", seen) != std::string::npos; }, 1e6).stop,
              bluepill::Stop::condition)
        << "the bootloader did not restart\n" << b.uart_output();
    expect_upgrade_to_v2(b, fw);
  }
}

// A crystal that fails once but would start again (a marginal one, a cold snap): after the
// clock security system's reset the device stays on HSI, through an update and its resets,
// instead of starting the crystal at every reset for it to fail again; a power cut forgets.
TEST_P(Recovery, ACrystalThatFailedIsLeftAloneUntilThePowerIsCut) {
  const e2e::Firmware fw(GetParam());
  {  // the application, then the bootloader and v2 after the update's resets
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    ASSERT_TRUE(on_crystal(b));
    const std::uint32_t resets = b.resets();
    b.hse_failure(false);
    ASSERT_EQ(e2e::boot_to_banner(b, 1e6), 1) << "no restart within 1 s\n" << b.uart_output();
    EXPECT_EQ(b.resets(), resets + 1);
    EXPECT_FALSE(on_crystal(b)) << "the crystal was started again";
    expect_upgrade_to_v2(b, fw);
    EXPECT_FALSE(on_crystal(b)) << "the crystal was started again after the install";
    b.power_cut();
    b.power_on();
    ASSERT_EQ(e2e::boot_to_banner(b), 2) << b.uart_output();
    EXPECT_TRUE(on_crystal(b)) << "the crystal is tried again after a power cut";
  }
  {  // the bootloader in recovery mode
    bluepill::Board b;
    b.load_image(fw.bootloader_elf());
    b.power_on();
    ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
    ASSERT_TRUE(on_crystal(b));
    const std::size_t seen = b.uart_output().size();
    b.hse_failure(false);
    ASSERT_EQ(b.run_until([&] { return b.uart_output().find("recovery", seen) != std::string::npos; }, 1e6).stop,
              bluepill::Stop::condition)
        << "the bootloader did not restart\n" << b.uart_output();
    EXPECT_FALSE(on_crystal(b)) << "the bootloader started the crystal again";
    expect_upgrade_to_v2(b, fw);
  }
}

// Each "boot " line after the first follows a reset the device asked for to install an image it
// has just taken, after its last frame (RESULT): that frame left the UART whole, up to the 0x00
// that ends it, before the reset (SR.TC), whether the application or the bootloader's recovery
// client took the image.
void expect_whole_frames_before_each_reset(const std::string& out) {
  std::size_t boots = 0;
  for (auto at = out.find("boot ", out.find("boot ") + 1); at != std::string::npos; at = out.find("boot ", at + 1)) {
    ++boots;
    EXPECT_EQ(out[at - 1], '\0') << "the frame before reset " << boots << " was cut";
  }
  EXPECT_GE(boots, 1u) << out;
}

TEST_P(Recovery, TheLastFrameBeforeTheResetToInstallLeavesTheUartWhole) {
  const e2e::Firmware fw(GetParam());
  {  // the application's client
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    expect_upgrade_to_v2(b, fw);
    expect_whole_frames_before_each_reset(b.uart_output());
  }
  {  // the bootloader's recovery client
    bluepill::Board b;
    b.load_image(fw.bootloader_elf());
    expect_recovers(b, fw);
    expect_whole_frames_before_each_reset(b.uart_output());
  }
}

// The bootloader's last line before it starts a freshly installed application (no RECOVER window
// then) leaves the UART whole, with the 0x00 that ends it for a frame decoder: USART1 is reset for
// the jump only once its last byte is out (SR.TC).
TEST_P(Recovery, TheInstallLineLeavesTheUartWholeBeforeTheNewApplicationStarts) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  expect_upgrade_to_v2(b, fw);
  const std::string out = b.uart_output();
  const auto at = out.find("install: installed");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string whole("install: installed\r\n\0", 21);
  EXPECT_EQ(out.substr(at, whole.size()), whole) << "the line's end was cut";
  EXPECT_LT(at, out.find("app v2 ")) << out;
}

// A crash is no crystal failure: an application that faults (a jump into erased flash) goes to
// the handler that also takes the clock security system's NMI, and resets; the start-ups that
// follow still run on the crystal. Only a failure the clock security system flagged (RCC_CIR.CSSF)
// keeps them on the HSI until the power is cut.
TEST_P(Recovery, ACrashIsNotTakenForACrystalFailure) {
  const e2e::Firmware fw(GetParam());
  auto crashing = fw.app_bin(1);
  const std::uint32_t erased = fw.layout->app.base + 0x4000;  // beyond the image: 0xFFFF
  ASSERT_LT(crashing.size(), 0x4000u);
  for (int i = 0; i < 4; ++i) crashing[4 + i] = static_cast<std::uint8_t>((erased | 1) >> (8 * i));
  const auto file = std::filesystem::temp_directory_path() / ("crash-hse-" + std::to_string(::getpid()) + ".bin");
  ASSERT_FALSE(ota::host::save_file(file, crashing));
  bluepill::Config cfg;
  cfg.strict = false;  // the crash is the point: faults go to the firmware's handlers
  bluepill::Board b(cfg);
  b.load_image(fw.bootloader_elf());
  b.load_image(file.string(), fw.layout->app.base);
  std::filesystem::remove(file);
  b.power_on();
  ASSERT_EQ(b.run_until([&] { return b.resets() >= 3; }, 2e6).stop, bluepill::Stop::condition)
      << "the application should crash and reset\n" << b.uart_output();
  EXPECT_EQ(b.last_reset(), bluepill::ResetCause::software);
  // The bootloader's banner comes once its clocks are set.
  const std::size_t seen = b.uart_output().size();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("boot ", seen) != std::string::npos; }, 1e6).stop,
            bluepill::Stop::condition)
      << b.uart_output();
  EXPECT_TRUE(on_crystal(b)) << "a crash left the bootloader on the HSI";
  EXPECT_TRUE(sysclk_is_pll(b));
}

// The watchdog the bootloader starts before the jump gives the application its whole timeout
// (15 s on the fastest LSI), counted from the jump: the counter is reloaded with the new setting,
// not left to run out from where it stood. An application that hangs at once is reset by it
// then, not sooner (an application slow to start, that feeds it late, is not reset either).
TEST_P(Recovery, TheWatchdogStartedForTheApplicationRunsItsWholeTimeout) {
  const e2e::Firmware fw(GetParam());
  const auto file = std::filesystem::temp_directory_path() / ("hang-wdg-" + std::to_string(::getpid()) + ".bin");
  ASSERT_FALSE(ota::host::save_file(file, fw.hanging_app(1)));
  bluepill::Config cfg;
  cfg.lsi_hz = 60'000;  // the fastest LSI: the shortest timeout
  bluepill::Board b(cfg);
  b.load_image(fw.bootloader_elf());
  b.load_image(file.string(), fw.layout->app.base);
  std::filesystem::remove(file);
  b.power_on();
  ASSERT_EQ(b.run_until([&] { return b.resets() >= 1; }, 40e6).stop, bluepill::Stop::condition) << b.uart_output();
  EXPECT_EQ(b.last_reset(), bluepill::ResetCause::watchdog);
  EXPECT_GE(b.now_us(), 15e6) << "the application was reset before its watchdog's 15 s";
  EXPECT_LE(b.now_us(), 16e6);
}

// A bad update: the new application hangs at once, on a board without the hardware watchdog
// option. The bootloader started the watchdog before the jump, so the hang ends in a reset
// within its 15 s, the reset lands in the bootloader, and `ota push --recover` (which keeps
// sending RECOVER) gets the device back without anyone pressing its reset button.
TEST_P(Recovery, AnApplicationThatHangsIsResetByTheWatchdogAndRecovered) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  const auto bad = fw.hanging_app(2);
  ota::host::Session s(bad, 2);
  ASSERT_NE(e2e::run(b, s).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::timeout) << "the hanging v2 never says HELLO: " << s.detail();
  ASSERT_TRUE(e2e::app_area_is(b, *fw.layout, bad));
  const std::uint32_t resets = b.resets();

  ota::host::SessionOptions o;
  o.recover = true;
  o.hello_timeout_ms = 30'000;
  const auto good = fw.app_bin(2);
  ota::host::Session r(good, 2, o);
  ASSERT_NE(e2e::run(b, r).stop, bluepill::Stop::error);
  EXPECT_EQ(r.outcome(), ota::host::Outcome::upgraded) << r.detail();
  EXPECT_GT(b.resets(), resets) << "no watchdog reset";
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, good));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The supply settles at 2.75 V, just below the voltage detector (2.78 V falling, 2.88 V rising)
// but inside what the STM32 and the W25Q run on, as the device resets to install: nothing may be
// written, so the install cannot start. The old application is whole and is started (before: the
// bootloader waited for the supply for ever, a dead device on a supply that stays there); the
// server hears why, and once the supply is back a push installs.
TEST_P(Recovery, ASupplyThatStaysLowKeepsTheOldApplicationRunning) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  ota::host::Session s(fw.app_bin(2), 2);
  std::size_t boot_at = std::string::npos;
  ASSERT_NO_FATAL_FAILURE(push_with_the_supply_low_from_the_install(b, s, boot_at));
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgrade_failed) << s.detail();
  EXPECT_NE(s.detail().find("runs v1 as before"), std::string::npos) << s.detail();
  EXPECT_NE(b.uart_output().find("app v1", boot_at), std::string::npos) << b.uart_output().substr(boot_at);
  // At once: the bootloader waits for the supply (its "supply low" line) only with the
  // application half copied, never with a whole one to start.
  EXPECT_EQ(b.uart_output().find("supply low", boot_at), std::string::npos) << b.uart_output().substr(boot_at);
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, fw.app_bin(1)));

  b.set_supply_volts(3.3);
  b.diagnostics().clear();
  expect_upgrade_to_v2(b, fw);
}

// After an install that failed before it touched the application (a supply that sagged), the
// device runs v1 and its flag still says OTA-START for v2 (HELLO: install_failed): every reset
// tries v2 again. The operator, told "upgrade-failed ... runs v1 as before", pushes v1 to keep the
// device on it. That push used to end `up-to-date` and leave the OTA-START armed, so that the next
// reset, hours later, installed v2 behind every server's back. It sends v1 instead, whose packet 0
// takes the flag down, and ends upgraded to v1 with nothing armed.
TEST_P(Recovery, APushOfTheRunningVersionDisarmsAFailedInstallOfAnother) {
  const e2e::Firmware fw(GetParam());
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  ota::host::Session s(fw.app_bin(2), 2);
  std::size_t boot_at = std::string::npos;
  ASSERT_NO_FATAL_FAILURE(push_with_the_supply_low_from_the_install(b, s, boot_at));
  ASSERT_EQ(s.outcome(), ota::host::Outcome::upgrade_failed) << s.detail();
  b.set_supply_volts(3.3);

  ota::host::Session keep(fw.app_bin(1), 1);  // "stay on v1"
  ASSERT_NE(e2e::run(b, keep).stop, bluepill::Stop::error);
  ASSERT_EQ(keep.outcome(), ota::host::Outcome::upgraded) << keep.detail();
  // The next reset (a power cut, the watchdog, the button).
  const std::size_t before = b.uart_output().size();
  b.reset_pin();
  EXPECT_EQ(e2e::boot_to_banner(b), 1) << "the push of v1 ended " << ota::host::to_string(keep.outcome()) << " ("
                                       << keep.detail() << "), and the next reset installed v2:\n"
                                       << b.uart_output().substr(before);
}

// A fault that stays on the flag and journal pages (worn out first: docs/design.md, "Wear"),
// here write protection from just after "OTA-START" was written. The install copies and verifies
// the new application, vector table included, then cannot set its marker nor move the flag. The
// whole new application is started all the same, and the server is told it runs.
TEST(RecoveryInternal, AFlagAreaThatFailsAfterTheCopyStillStartsTheNewApplication) {
  const e2e::Firmware fw("internal");
  bluepill::Config cfg;
  cfg.strict = false;  // the board reports the WRPRTERR as an error: that is the fault
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  const auto v2 = fw.app_bin(2);
  ota::host::Session s(v2, 2);
  const std::size_t from = b.uart_output().size();
  e2e::WireOptions w;
  w.step_us = 100;
  w.stop_at = [&](double) {
    if (b.uart_output().find("boot ", from) != std::string::npos) b.set_write_protect(1u << 15);  // pages 60-63
    return false;
  };
  ASSERT_NE(e2e::run(b, s, w).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_NE(s.detail().find("flag could not be cleared"), std::string::npos) << s.detail();
  EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
  b.reset_pin();
  EXPECT_EQ(e2e::boot_to_banner(b), 2) << b.uart_output();
}

// One page of the application that v2 rewrites is worn (bluepill::Config::worn_pages): its erase
// ends with EOP and no error flag, as a good page's, but leaves bits programmed, which only the
// port's read-back after the erase finds. The install fails there, before anything is programmed
// over the page: the bootloader says "install: flash failure" and, the vector table zeroed before
// the first erase, starts nothing (neither the half-copied v2 nor v1's code with a page of v2's)
// but stays in recovery mode. After kRecoveryIdleMs without a server it resets and tries again,
// and fails again while the page stays worn; once an erase of the page works again (a marginal
// page), the next try installs v2 with no push. A driver that trusted EOP would program v2 over
// the bits left programmed: a PGERR, which the board reports as an error.
TEST(RecoveryInternal, AWornApplicationPageFailsTheInstallCleanlyAndALaterBootInstalls) {
  const e2e::Firmware fw("internal");
  const ota::Layout& l = *fw.layout;
  const auto v1 = fw.app_bin(1), v2 = fw.app_bin(2);
  // The first page after the vector table's that v2 changes (the install erases only those).
  std::uint32_t off = ota::kFlashPage;
  while (off < std::min(v1.size(), v2.size()) &&
         std::equal(v1.begin() + off, v1.begin() + std::min<std::size_t>(off + ota::kFlashPage, v1.size()),
                    v2.begin() + off))
    off += ota::kFlashPage;
  ASSERT_LT(off, std::min(v1.size(), v2.size())) << "v2 changes no page but the first";
  const std::uint32_t worn = l.app.base + off;
  // The page's first half-word: what its worn erase leaves of v1's (0 bits under kWornBits stay),
  // and v2's, programmed first: neither 0x0000 (programmed over anything) nor 0xFFFF (not
  // programmed), so that programming it over what the erase left is a PGERR.
  const auto first_left = static_cast<std::uint16_t>((v1[off] | v1[off + 1] << 8) | ~bluepill::FlashCtrl::kWornBits);
  const auto first_v2 = static_cast<std::uint16_t>(v2[off] | v2[off + 1] << 8);
  ASSERT_NE(first_left, 0xFFFF) << "v1's bits there all erase: the page would read erased";
  ASSERT_NE(first_v2, 0x0000);
  ASSERT_NE(first_v2, 0xFFFF);

  bluepill::Board b;  // strict: a program over bits the erase left (PGERR) stops the run
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_worn_pages({worn});
  const std::size_t from = b.uart_output().size();
  ota::host::Session s(v2, 2);
  const auto r = e2e::run(b, s);
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgrade_failed) << s.detail();
  EXPECT_NE(s.detail().find("could not install"), std::string::npos) << s.detail();
  const std::string out = b.uart_output().substr(from);
  const std::size_t failed = out.find("install: flash failure");
  ASSERT_NE(failed, std::string::npos) << out;
  EXPECT_NE(out.find("recovery", failed), std::string::npos) << "the bootloader stays in recovery mode: " << out;
  EXPECT_EQ(out.find("app v", failed), std::string::npos) << "an application was started: " << out;
  std::uint8_t vt[8];
  ASSERT_TRUE(b.read_memory(l.app.base, vt, sizeof vt));
  EXPECT_TRUE(std::all_of(std::begin(vt), std::end(vt), [](std::uint8_t x) { return x == 0; }))
      << "the vector table is left zeroed: no application, old or mixed, can start";
  std::uint16_t left = 0;
  ASSERT_TRUE(b.read_memory(worn, &left, 2));
  EXPECT_EQ(left, first_left) << "nothing programmed over the worn page";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();

  // No server: after the idle time the bootloader resets and tries again, and fails again.
  const std::size_t second = b.uart_output().size();
  const auto failed_again = [&] {
    const std::size_t at = b.uart_output().find("install: flash failure", second);
    return at != std::string::npos && b.uart_output().find("recovery", at) != std::string::npos;
  };
  ASSERT_EQ(b.run_until(failed_again, ota::kRecoveryIdleMs * 1e3 + 5e6).stop, bluepill::Stop::condition)
      << b.uart_output().substr(second);
  EXPECT_EQ(b.uart_output().find("app v", second), std::string::npos) << b.uart_output().substr(second);

  // The page erases again: the next try installs v2, without a push.
  b.set_worn_pages({});
  const std::size_t third = b.uart_output().size();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("app v2", third) != std::string::npos; },
                        ota::kRecoveryIdleMs * 1e3 + 5e6)
                .stop,
            bluepill::Stop::condition)
      << "still in recovery mode: " << b.uart_output().substr(third);
  EXPECT_NE(b.uart_output().find("install: installed", third), std::string::npos) << b.uart_output().substr(third);
  EXPECT_TRUE(e2e::app_area_is(b, l, v2));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The page of the application's vector table worn: the installer zeros the table, copies the
// other pages, then erases this one last, and that erase leaves bits of the zeroed table
// programmed. The read-back fails the install; the bootloader zeros the table again (what the
// erase left is never a table to start), says "install: flash failure" and stays in recovery mode.
TEST(RecoveryInternal, AWornVectorTablePageLeavesNoTableToStart) {
  const e2e::Firmware fw("internal");
  const ota::Layout& l = *fw.layout;
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_worn_pages({l.app.base});
  const std::size_t from = b.uart_output().size();
  ota::host::Session s(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, s).stop, bluepill::Stop::error);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgrade_failed) << s.detail();
  const std::string out = b.uart_output().substr(from);
  const std::size_t failed = out.find("install: flash failure");
  ASSERT_NE(failed, std::string::npos) << out;
  EXPECT_NE(out.find("recovery", failed), std::string::npos) << out;
  EXPECT_EQ(out.find("app v", failed), std::string::npos) << "an application was started: " << out;
  std::uint8_t vt[8];
  ASSERT_TRUE(b.read_memory(l.app.base, vt, sizeof vt));
  EXPECT_TRUE(std::all_of(std::begin(vt), std::end(vt), [](std::uint8_t x) { return x == 0; }))
      << "the table is zeroed again over what the worn erase left";
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The F103's core (Cortex-M3 r1p1) starts with CCR.STKALIGN off, so interrupt handlers would get
// a stack aligned to 4 bytes only; both images turn it on first thing (startup.cpp).
TEST_P(Recovery, BothImagesAlignTheStackOfInterruptHandlers) {
  const e2e::Firmware fw(GetParam());
  auto stkalign = [](bluepill::Board& b) {
    std::uint32_t ccr = 0;
    EXPECT_TRUE(b.debug_read(0xE000ED14, &ccr, 4));
    return (ccr >> 9) & 1u;
  };
  bluepill::Board b;
  b.load_image(fw.bootloader_elf());
  b.power_on();
  EXPECT_EQ(stkalign(b), 0u) << "off at reset, as on the r1p1 core";
  ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
  EXPECT_EQ(stkalign(b), 1u) << "the bootloader";
  bluepill::Board a;
  e2e::factory_fresh(a, fw);
  ASSERT_EQ(e2e::boot_to_banner(a), 1) << a.uart_output();
  // (Set by the bootloader already; the application's start-up sets it again, which matters
  // only when a debugger starts the application without the bootloader.)
  EXPECT_EQ(stkalign(a), 1u) << "the application";
}

// A byte the DMA fetched too late (an overrun) stops the USART's receiver until the firmware
// clears ORE. Both the application's client and the bootloader's recovery client must, or the
// device is deaf to every update until someone power-cycles it. The lost bytes cost a frame.
TEST_P(Recovery, AUsartOverrunMidDownloadCostsOneFrameNotTheLink) {
  const e2e::Firmware fw(GetParam());
  const auto v2 = fw.app_bin(2);
  auto push_with_overrun = [&](bluepill::Board& b) {
    ota::host::Session s(v2, 2);
    bool injected = false;
    e2e::WireOptions w;
    w.stop_at = [&](double) {
      if (!injected && s.packets_acked() >= 10) b.usart_overrun(), injected = true;
      return false;
    };
    const auto r = e2e::run(b, s, w);
    ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
    ASSERT_TRUE(injected) << s.detail();
    EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
    EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
    EXPECT_GE(b.diagnostics().warnings(), 1u) << "the overrun happened";
  };
  {  // the application
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    push_with_overrun(b);
  }
  {  // the bootloader in recovery mode
    bluepill::Board b;
    b.load_image(fw.bootloader_elf());
    b.power_on();
    ASSERT_EQ(b.run_until_output("recovery", 3e6).stop, bluepill::Stop::condition) << b.uart_output();
    push_with_overrun(b);
  }
}

// A device whose option bytes select the hardware watchdog: the IWDG runs from every reset with
// about 0.3 s. The largest image (the longest download and install) must go through without a
// single watchdog reset: the bootloader gives itself a longer timeout and feeds it, the
// application its own 4 s. In the worst case for those timeouts: the fastest LSI (60 kHz), no
// crystal (the HSI fallback), the slowest flash and W25Q timings of the datasheets, and a core
// that takes 2 cycles per instruction (flash wait states and multi-cycle instructions on silicon).
TEST_P(Recovery, TheHardwareWatchdogOptionDoesNotInterruptTheLargestUpdate) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.hardware_watchdog = true;
  cfg.cycles_per_instruction = 2;
  cfg.lsi_hz = 60'000;
  cfg.hse = false;
  cfg.timing = bluepill::TimingMode::maximum;
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output() << b.diagnostics().error_text();
  expect_upgrade_to_v2(b, fw, fw.largest_app(2, 2));
  std::size_t watchdog_resets = 0;
  for (const auto& d : b.diagnostics().all()) watchdog_resets += d.text.find("watchdog reset") != std::string::npos;
  EXPECT_EQ(watchdog_resets, 0u);
  // The bootloader's recovery mode waits for a server far longer than 0.4 s.
  bluepill::Board idle(cfg);
  idle.load_image(fw.bootloader_elf());
  idle.power_on();
  ASSERT_EQ(idle.run_for_us(3e6).stop, bluepill::Stop::limit) << idle.diagnostics().error_text();
  EXPECT_EQ(idle.resets(), 0u) << idle.uart_output();
}

// Every install first programs 0x0000 over the application's vector table
// (Installer::zero_vector_table), which PM0075 allows over programmed flash; a clone chip
// without that exception (Config::zero_over_data = false) can never install an update. It is
// not bricked: the install fails loudly, v1 keeps running, and the server hears of the failed
// install. (docs/flashing.md: the self-test that finds such a chip before it is fielded.)
TEST_P(Recovery, AChipThatCannotWriteZerosOverDataNeverInstallsAndKeepsV1) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.zero_over_data = false;
  cfg.strict = false;  // the PGERR is the fault under test
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  ota::host::Session s(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, s).stop, bluepill::Stop::error);
  EXPECT_NE(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_NE(b.uart_output().find(install_failure(fw)), std::string::npos) << b.uart_output();
  EXPECT_NE(b.diagnostics().error_text().find("non-erased half-word"), std::string::npos)
      << b.diagnostics().error_text();
  EXPECT_EQ(b.uart_output().find("app v2"), std::string::npos) << b.uart_output();
  EXPECT_NE(b.uart_output().rfind("app v1 "), std::string::npos) << b.uart_output();
  EXPECT_NE(s.detail().find("could not install"), std::string::npos) << s.detail();
}

// A link with 2.5 s of latency each way (a congested cellular link): the session learns the
// round trip (from START, then from the packets) and waits for it instead of its 1.5 s, so
// the largest image goes through without a flood of copies, and the report is acknowledged.
TEST_P(Recovery, ALinkWithSecondsOfLatencyIsNotFloodedWithResends) {
  const e2e::Firmware fw(GetParam());
  bluepill::Config cfg;
  cfg.latency_ms = 2500;
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  const auto img = fw.largest_app(2, 2);
  ota::host::Session s(img, 2);
  e2e::run(b, s);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_EQ(s.detail().find("report not acknowledged"), std::string::npos) << s.detail();
  EXPECT_LE(s.resends(), s.packet_count() / 10) << "copies of frames still on their way";
}

// The board's own check behind WithoutACrystalEverythingRunsOnTheHsi: a USART1 rate that the far
// end does not use stops the run with an error (here the far end is set to 9600 baud).
TEST(LinkRate, AUsartAtAnotherRateThanTheFarEndIsAnError) {
  const e2e::Firmware fw("internal");
  bluepill::Config cfg;
  cfg.link_baud = 9600;
  bluepill::Board b(cfg);
  b.load_image(fw.bootloader_elf());
  b.power_on();
  const auto r = b.run_for_us(1e6);
  EXPECT_EQ(r.stop, bluepill::Stop::error);
  EXPECT_NE(b.diagnostics().error_text().find("garbled"), std::string::npos) << b.diagnostics().error_text();
}

// An external-layout board whose W25Q's block 0 is write-protected (status register bits, or
// WPS = 1 with its block locks, left by another project): the chip ignores every program and
// erase there, the driver's read-back notices, and the download is refused with a flash error
// that points at the W25Q. Nothing is changed: v1 keeps running, with no pending flag.
TEST(ProtectedW25q, AnUpdateIsRefusedAndV1KeepsRunning) {
  const e2e::Firmware fw("external");
  bluepill::Config cfg;
  cfg.w25q_protected = true;
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output() << b.diagnostics().error_text();
  ota::host::Session s(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, s).stop, bluepill::Stop::error) << b.diagnostics().error_text();
  EXPECT_EQ(s.outcome(), ota::host::Outcome::timeout) << s.detail();
  EXPECT_NE(s.detail().find("flash error (it cannot write its external flash: is the W25Q write-protected"),
            std::string::npos)
      << s.detail();
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
  const auto w = b.w25q().bytes();
  EXPECT_TRUE(std::all_of(w.begin(), w.begin() + 64 * 1024, [](std::uint8_t v) { return v == 0xFF; }))
      << "the protected block changed";
  const std::size_t resets = b.resets();
  ASSERT_EQ(b.run_for_us(2e6).stop, bluepill::Stop::limit);
  EXPECT_EQ(b.resets(), resets);
  EXPECT_EQ(b.uart_output().find("app v2"), std::string::npos) << b.uart_output();
}

// An external-layout board whose W25Q is missing: the bootloader and the application each probe
// it once at start-up and then stop talking to it, so the application runs and the watchdog is
// not starved by endless status polls. A push is refused with a flash error, not a hang.
TEST(NoW25q, ExternalLayoutStillRunsItsApplication) {
  const e2e::Firmware fw("external");
  bluepill::Config cfg;
  cfg.w25q = false;
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b, 10e6), 1) << b.uart_output() << b.diagnostics().error_text();
  // The flags cannot be read: the bootloader's line says so, and names the chip.
  using namespace std::string_literals;  // the lines end with \r\n and a 0x00
  EXPECT_NE(b.uart_output().find("boot external\r\n\0install: flash/W25Q failure\r\n"s), std::string::npos)
      << b.uart_output();
  const std::uint32_t resets = b.resets();
  ASSERT_EQ(b.run_for_us(6e6).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
  EXPECT_EQ(b.resets(), resets) << "the watchdog reset the board";
  ota::host::Session s(fw.app_bin(2), 2);
  const auto r = e2e::run(b, s);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::refused) << s.detail();
  EXPECT_NE(s.detail().find("flash error"), std::string::npos) << s.detail();
  // Polling a missing chip costs 0.6 s per access; without the probe's verdict HELLO and START
  // would take seconds.
  EXPECT_LT(r.virtual_ms, 300.0) << "the device kept polling the missing chip";
}

// SPI1 itself stops (bluepill::SpiFault, a broken peripheral): no byte the W25Q driver sends
// completes. The bootloader must report a flash failure and start the application at once: not
// wait out 400k status polls of 10k loops each (minutes; with the hardware watchdog option, a
// reset loop), nor take what its buffers held for the chip's answer. The application's client
// then refuses an update with a flash error.
class BrokenSpi1 : public ::testing::TestWithParam<bluepill::SpiFault> {};

TEST_P(BrokenSpi1, IsAFlashFailureNotAHangNorStaleBytes) {
  const e2e::Firmware fw("external");
  bluepill::Config cfg;
  cfg.spi1_fault = GetParam();
  bluepill::Board b(cfg);
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b, 3e6), 1) << b.uart_output() << b.diagnostics().error_text();
  EXPECT_NE(b.uart_output().find("install: flash/W25Q failure"), std::string::npos) << b.uart_output();
  ota::host::Session s(fw.app_bin(2), 2);
  const auto r = e2e::run(b, s);
  ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
  EXPECT_EQ(s.outcome(), ota::host::Outcome::refused) << s.detail();
  EXPECT_NE(s.detail().find("flash error"), std::string::npos) << s.detail();
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// frames_never_end also leaves BSY set for good: Spi1::select, which waits for the last byte to
// leave before it moves /CS, must give up too.
INSTANTIATE_TEST_SUITE_P(Faults, BrokenSpi1,
                         ::testing::Values(bluepill::SpiFault::frames_never_start, bluepill::SpiFault::frames_never_end),
                         [](const auto& info) {
                           return info.param == bluepill::SpiFault::frames_never_start ? "FramesNeverStart"
                                                                                       : "FramesNeverEnd";
                         });

// An external-layout board whose update to the largest v2 is cut short mid-install: the W25Q's
// wiring fails (a loose contact, a cracked joint) once kCopied pages of the application are copied.
class W25qLost : public ::testing::Test {
 protected:
  const e2e::Firmware fw{"external"};
  const ota::Layout& l = *fw.layout;
  const std::vector<std::uint8_t> v2 = fw.largest_app(2, 7);
  // The first page past v1's code: v1 leaves it erased, v2 fills it (the pages of code that v1
  // and v2 share would read as copied before the copy began).
  const std::uint32_t kCopied =
      static_cast<std::uint32_t>((fw.app_bin(1).size() + ota::kFlashPage - 1) / ota::kFlashPage);
  bluepill::Board b;

  bool app_page_is(std::uint32_t page, const std::uint8_t* want) {
    std::vector<std::uint8_t> got(ota::kFlashPage);
    return b.read_memory(l.app.base + page * ota::kFlashPage, got.data(), got.size()) &&
           std::equal(got.begin(), got.end(), want);
  }
  bool v2_page(std::uint32_t page) { return app_page_is(page, v2.data() + page * ota::kFlashPage); }
  // Pushes v2 and stops the run once page kCopied holds v2 (not yet page kCopied + 1).
  void install_until_page_copied() {
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    ota::host::Session s(v2, 2);
    e2e::WireOptions w;
    w.step_us = 200;
    // (Once the W25Q is idle again, with no command under way: the next page's copy marker goes
    // to its journal, and a reset that raised /CS mid-command would start a program.)
    w.stop_at = [&](double) { return v2_page(kCopied) && !b.w25q().busy() && !b.w25q().selected(); };
    ASSERT_NE(e2e::run(b, s, w).stop, bluepill::Stop::error);
    ASSERT_TRUE(v2_page(kCopied)) << "no install: " << s.detail();
    ASSERT_FALSE(v2_page(kCopied + 1)) << "the copy is already over";
  }
  // After a reset: v2 boots, installed by this boot (output from `since`), the application area
  // holds exactly v2, and a push reports the upgrade.
  void expect_the_install_finishes(std::size_t since) {
    ASSERT_EQ(e2e::boot_to_banner(b, 10e6), 2) << b.uart_output().substr(since) << b.diagnostics().error_text();
    EXPECT_NE(b.uart_output().find("install: installed", since), std::string::npos) << b.uart_output().substr(since);
    EXPECT_TRUE(e2e::app_area_is(b, l, v2));
    ota::host::Session report(v2, 2);
    ASSERT_NE(e2e::run(b, report).stop, bluepill::Stop::error);
    EXPECT_EQ(report.outcome(), ota::host::Outcome::upgraded) << report.detail();
  }
  // The same, then the W25Q is unplugged.
  void install_until_the_wire_fails() {
    install_until_page_copied();
    b.set_w25q_connected(false);
  }
};

// An application may power the W25Q down (0xB9) to save current; a reset of the MCU (the pin,
// the watchdog) does not wake it, and in power-down it answers nothing but 0xAB. Here the reset
// comes in the middle of an install, with the chip then put to sleep: the bootloader must wake it,
// or staging and the flags stay out of reach with the application half copied until someone
// cycles the power.
TEST_F(W25qLost, AChipLeftInPowerDownAcrossAResetIsWokenAndTheInstallFinishes) {
  ASSERT_NO_FATAL_FAILURE(install_until_page_copied());
  b.reset_pin();
  ASSERT_FALSE(b.w25q().busy());
  const std::uint8_t power_down = 0xB9;
  b.w25q().select(true);
  b.w25q().transfer(&power_down, nullptr, 1);
  b.w25q().select(false);
  ASSERT_TRUE(b.w25q().powered_down());
  ASSERT_NO_FATAL_FAILURE(expect_the_install_finishes(b.uart_output().size()));
  EXPECT_EQ(b.w25q().violations(), 0u) << b.w25q().last_violation();
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// An application that keeps its own data in the W25Q past block 0 suspended an erase there
// (0x75, to read something in between), and the MCU was reset before it resumed it: SUS survives
// an MCU reset, and while it is set the chip refuses every erase and program, so the install
// could not clear its flags (nor would any later download stage), until a power cycle. The
// bootloader resumes the suspended erase (0x7A): it completes, and the install finishes.
TEST_F(W25qLost, AnEraseAnApplicationLeftSuspendedIsResumedAndTheInstallFinishes) {
  ASSERT_NO_FATAL_FAILURE(install_until_page_copied());
  b.reset_pin();
  ASSERT_FALSE(b.w25q().busy());
  const auto send = [&](std::initializer_list<std::uint8_t> bytes) {
    const std::vector<std::uint8_t> v(bytes);
    b.w25q().select(true);
    b.w25q().transfer(v.data(), nullptr, v.size());
    b.w25q().select(false);
  };
  send({0x06});
  send({0x20, 0x01, 0x00, 0x00});  // the sector at 64 KB
  send({0x75});
  ASSERT_TRUE(b.w25q().suspended());
  ASSERT_NO_FATAL_FAILURE(expect_the_install_finishes(b.uart_output().size()));
  EXPECT_FALSE(b.w25q().suspended());
  EXPECT_EQ(b.w25q().violations(), 0u) << b.w25q().last_violation();
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// Staging and the flags are out of reach with the application half copied. The bootloader must
// not start the half-copied application, neither then nor after a power cycle with the chip still
// gone, must stay reachable, and must finish the install from staging once the chip answers again:
// with nobody to reset it, it resets itself once no server has spoken for kRecoveryIdleMs.
TEST_F(W25qLost, MidInstallTheHalfCopiedApplicationIsNotStartedAndTheInstallResumes) {
  ASSERT_NO_FATAL_FAILURE(install_until_the_wire_fails());
  const std::size_t cut = b.uart_output().size();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("recovery", cut) != std::string::npos; }, 5e6).stop,
            bluepill::Stop::condition)
      << b.uart_output().substr(cut) << b.diagnostics().error_text();
  EXPECT_NE(b.uart_output().find("install: flash/W25Q failure", cut), std::string::npos) << b.uart_output().substr(cut);
  ASSERT_EQ(b.run_for_us(3e5).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
  EXPECT_EQ(b.uart_output().find("app v", cut), std::string::npos) << "the half-copied application was started";
  std::uint32_t table[2] = {1, 1};
  ASSERT_TRUE(b.read_memory(l.app.base, table, sizeof table));
  EXPECT_TRUE(table[0] == 0 && table[1] == 0) << "the application's vector table is not the zeroed one";
  // Power cycled with the chip still gone: the probe at start-up finds no W25Q, the flag cannot
  // be read, and the half-copied application must still not start.
  b.power_cut();
  const std::size_t cold = b.uart_output().size();
  b.power_on();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("recovery", cold) != std::string::npos; }, 5e6).stop,
            bluepill::Stop::condition)
      << b.uart_output().substr(cold) << b.diagnostics().error_text();
  ASSERT_EQ(b.run_for_us(3e5).stop, bluepill::Stop::limit) << b.diagnostics().error_text();
  EXPECT_EQ(b.uart_output().find("app v", cut), std::string::npos) << "the half-copied application was started";

  b.set_w25q_connected(true);
  const std::size_t back = b.uart_output().size();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("install: installed", back) != std::string::npos; },
                        ota::kRecoveryIdleMs * 1e3 + 5e6)
                .stop,
            bluepill::Stop::condition)
      << "no install without a reset: " << b.uart_output().substr(back) << b.diagnostics().error_text();
  ASSERT_NO_FATAL_FAILURE(expect_the_install_finishes(cut));
  EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
}

// The chip is still gone at the next power-on, so the bootloader waits in recovery mode with the
// application half copied. Then the chip answers again (a loose contact, a cold joint that warmed
// up) and stays. Nobody resets the device: the recovery client must find the chip again on its
// own, and the next push installs.
TEST_F(W25qLost, AChipThatComesBackIsUsedAgainWithoutAReset) {
  ASSERT_NO_FATAL_FAILURE(install_until_the_wire_fails());
  b.power_cut();
  const std::size_t cold = b.uart_output().size();
  b.power_on();
  ASSERT_EQ(b.run_until([&] { return b.uart_output().find("recovery", cold) != std::string::npos; }, 5e6).stop,
            bluepill::Stop::condition) << b.uart_output().substr(cold);
  ASSERT_EQ(b.run_for_us(1e6).stop, bluepill::Stop::limit);
  b.set_w25q_connected(true);
  const std::uint32_t resets = b.resets();
  ota::host::Session again(v2, 2);
  ASSERT_NE(e2e::run(b, again).stop, bluepill::Stop::error);
  EXPECT_EQ(again.outcome(), ota::host::Outcome::upgraded) << again.detail();
  EXPECT_TRUE(e2e::app_area_is(b, l, v2));
  EXPECT_EQ(b.resets(), resets + 1) << "only the reset after the download";
}

// The supply sags below the W25Q's 2.7 V for a second in the middle of a download (a weak
// battery, a modem drawing its burst): the device must not program or erase the chip meanwhile
// (the board reports any such write), and the download goes on once the supply is back.
TEST(SupplySag, NoFlashWritesWhileTheSupplyIsLowAndTheDownloadGoesOn) {
  for (const char* layout : {"external", "internal"}) {
    SCOPED_TRACE(layout);
    const e2e::Firmware fw(layout);
    const auto v2 = fw.largest_app(2, 9);
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    ota::host::Session s(v2, 2);
    const double t0 = b.now_us() / 1000;
    e2e::WireOptions w;
    w.stop_at = [&](double now) {
      b.set_supply_volts(now - t0 >= 1000 && now - t0 < 2000 ? 2.6 : 3.3);
      return false;
    };
    const auto r = e2e::run(b, s, w);
    ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
    EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
    EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
    std::size_t flash_naks = 0;
    for (const auto& e : s.take_events()) flash_naks += e.kind == "nak" && e.text.find("flash") != std::string::npos;
    EXPECT_GT(flash_naks, 0u) << "the sag did not fall on the download";
    EXPECT_TRUE(e2e::app_area_is(b, *fw.layout, v2));
  }
}

// A supply that stays low (or a supply watch the application took apart after watch(), which
// counts as low for good) has every flash write refused, and the update fails with flash errors:
// the server's detail names the supply as a cause, not only the W25Q's wiring or protection.
TEST(SupplySag, AnUpdateRefusedForALowSupplyIsNotBlamedOnTheW25qAlone) {
  const e2e::Firmware fw("external");
  bluepill::Board b;
  e2e::factory_fresh(b, fw);
  ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
  b.set_supply_volts(2.6);  // and it stays there
  ota::host::Session s(fw.app_bin(2), 2);
  ASSERT_NE(e2e::run(b, s).stop, bluepill::Stop::error) << b.diagnostics().error_text();
  EXPECT_NE(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_NE(s.detail().find("supply"), std::string::npos) << s.detail();
}

// The supply sags while the bootloader installs: the install stops at the first refused write,
// the bootloader waits for the supply and starts again, and the install completes without a
// second push (recovery mode would wait for a server).
TEST(SupplySag, DuringTheInstallTheBootloaderWaitsAndFinishesIt) {
  for (const char* layout : {"external", "internal"}) {
    SCOPED_TRACE(layout);
    const e2e::Firmware fw(layout);
    const ota::Layout& l = *fw.layout;
    const auto v2 = fw.largest_app(2, 11);
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    const std::size_t start = b.uart_output().size();
    ota::host::Session s(v2, 2);
    double sag_at = -1;
    e2e::WireOptions w;
    w.step_us = 200;
    w.stop_at = [&](double now) {
      std::uint8_t vt[8];
      if (sag_at < 0 && b.read_memory(l.app.base, vt, sizeof vt) &&
          std::all_of(vt, vt + 8, [](std::uint8_t x) { return x == 0x00; })) {
        sag_at = now;  // the install has begun: the old vector table is zeroed
        b.set_supply_volts(2.6);
      }
      if (sag_at >= 0 && now - sag_at >= 300) b.set_supply_volts(3.3);
      return false;
    };
    const auto r = e2e::run(b, s, w);
    ASSERT_NE(r.stop, bluepill::Stop::error) << r.message;
    ASSERT_GE(sag_at, 0) << "the install never began";
    const std::string out = b.uart_output().substr(start);
    EXPECT_NE(out.find("supply low"), std::string::npos) << out;
    EXPECT_EQ(out.find("recovery"), std::string::npos) << out;
    EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
    EXPECT_TRUE(e2e::app_area_is(b, l, v2));
    EXPECT_EQ(b.diagnostics().errors(), 0u) << b.diagnostics().error_text();
  }
}

// The supply sags to 2.75 V (below the voltage detector's 2.78 V, inside what the STM32 and the
// W25Q run on: 2.0 V and 2.7 V) once the install has zeroed the old vector table, and stays
// there. The bootloader must not wait for a supply that does not come back: the device has to end
// in recovery mode (taking an image over USART1) or in a whole application, as it does when the
// same supply meets an install that has not begun (ASupplyThatStaysLowKeepsTheOldApplicationRunning).
TEST(SupplySag, ASupplyThatStaysLowMidInstallStillLeavesADeviceThatAnswers) {
  for (const char* layout : {"internal", "external"}) {
    SCOPED_TRACE(layout);
    const e2e::Firmware fw(layout);
    const ota::Layout& l = *fw.layout;
    bluepill::Board b;
    e2e::factory_fresh(b, fw);
    ASSERT_EQ(e2e::boot_to_banner(b), 1) << b.uart_output();
    const std::size_t start = b.uart_output().size();
    ota::host::Session s(fw.largest_app(2, 11), 2);
    bool sagged = false;
    e2e::WireOptions w;
    w.step_us = 200;
    w.stop_at = [&](double) {
      std::uint8_t vt[8];
      if (!sagged && b.read_memory(l.app.base, vt, sizeof vt) &&
          std::all_of(vt, vt + 8, [](std::uint8_t x) { return x == 0x00; })) {
        sagged = true;  // the install has begun: the old vector table is zeroed
        b.set_supply_volts(2.75);  // and it stays there
      }
      return sagged;
    };
    ASSERT_NE(e2e::run(b, s, w).stop, bluepill::Stop::error);
    ASSERT_TRUE(sagged) << "the install never began";
    // 20 s of virtual time at 2.75 V: recovery mode or an application must come up.
    const std::size_t boot = b.uart_output().rfind("boot ");
    const auto r = b.run_until([&] {
      const std::string out = b.uart_output().substr(start);
      return out.find("recovery") != std::string::npos || out.find("app v") != std::string::npos;
    }, 20e6);
    EXPECT_EQ(r.stop, bluepill::Stop::condition)
        << "after 20 s at 2.75 V the device neither runs an application nor takes an image: "
        << (boot == std::string::npos ? std::string("(no boot line)") : b.uart_output().substr(boot));
  }
}

// Hard limits (the goals are measured by `make bench`): the bootloader fits its 8 KB, each
// application its update limit, so that it can be replaced over the air.
TEST(FirmwareSize, ImagesFitTheirRegions) {
  for (const char* name : {"internal", "external"}) {
    const e2e::Firmware fw(name);
    const auto boot = std::filesystem::file_size(fw.dir + "/bootloader.bin");
    EXPECT_LE(boot, fw.layout->bootloader.size) << name;
    EXPECT_GT(boot, 512u) << name << ": suspiciously small";
    for (std::uint32_t v : {1u, 2u}) EXPECT_LE(fw.app_bin(v).size(), fw.layout->image_limit) << name << " v" << v;
  }
}

}  // namespace

// The bootloader (both layouts; the layout comes with the ota_board_<layout> library).
//   1. the IWDG if the option bytes started it, clocks, the supply watch (no flash writes on a
//      sagging supply), USART1, banner "boot <layout>"
//   2. ota::Installer::run(): finishes or performs a pending install (see ota/installer.hpp); one
//      the supply stopped (supply.hpp) waits up to kSupplyWaitMs for it and resets to resume, or,
//      the supply still low, goes on to 4
//   3. a valid application: listen briefly for RECOVER (ota/recover.hpp; not when 2 has just
//      installed it), then stop the peripherals, start the watchdog and jump to it
//   4. otherwise recovery: the OTA client over USART1 takes an image into staging, then resets,
//      and the next boot installs it. After ota::kRecoveryIdleMs without a frame from the server
//      it also resets when the next boot may do better: RECOVER brought it here with a valid
//      application (the next boot starts it), or an install failed (the next boot tries again:
//      a W25Q that did not answer may answer now). The device is never left without a way to be
//      updated: after a failed install too (the client reports it and takes the image again,
//      ota/client.hpp), which leaves a whole application (old or new) to be started in 3.
#include "ota/app_info.hpp"
#include "ota/client.hpp"
#include "ota/installer.hpp"
#include "ota/recover.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/clock.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/iwdg.hpp"
#include "stm32f1/supply.hpp"
#include "stm32f1/systick.hpp"
#include "stm32f1/usart1.hpp"
#include "stm32f1/usart1_link.hpp"

using namespace stm32f1;

namespace {

// With the hardware watchdog option (WDG_SW = 0) the IWDG runs from reset with ~0.27 s: the
// bootloader gives itself this much instead, more than its longest step (installing the largest
// external image on the slowest clock, 8 MHz, should neither crystal nor PLL run), and feeds it
// in each loop. A feed of a watchdog that is not running does nothing, so the feeds are
// unconditional.
constexpr iwdg::Setting kWatchdog = iwdg::setting_for(15'000);

// How long an install the supply stopped waits for it to come back (a power-down, however slow its
// hold-up capacitors, is over by then) before recovery mode.
constexpr std::uint32_t kSupplyWaitMs = 10'000;

// Text lines go out before the first frame; the 0x00 that ends them makes a frame decoder on the
// other side drop them as one bad frame and start clean.
void say(const char* a, const char* b) {
  usart1::write(a);
  usart1::write_line(b);
}

// With `reset_when_idle` (a valid application that RECOVER kept from starting, or an install that
// failed and may succeed at the next boot) the device resets after ota::kRecoveryIdleMs without
// a frame from the server (bytes that make no frame, such as line noise, do not count); without,
// it waits for a server forever.
[[noreturn]] void recovery(const ota::FlashMap& map, bool app_valid, const std::optional<ota::AppInfo>& app,
                           bool reset_when_idle) {
  Usart1Link link;
  // A valid application held (RECOVER brought us here): its product, so that a server offers
  // another product's image only with --recover (kProductHeld: it names none we can find), and
  // its version, so that the server's version rules hold here too (0: none found).
  std::uint32_t product = 0, version = 0;
  if (app_valid) {
    product = app ? app->product : ota::kProductHeld;
    if (app) version = app->version;
  }
  ota::DeviceInfo info{ota::Role::recovery, version, product, {}, kLinkWindow, usart1::kBaud};
  cpu::uid(info.uid);
  ota::UpdateClient client(map, link, info);
  client.boot();
  std::uint32_t last_heard = systick::millis();
  std::uint8_t frames = client.frames_received();
  for (;;) {
    iwdg::feed();
    std::uint8_t buf[64];
    const std::size_t n = usart1::read(buf, sizeof buf);
    client.receive(buf, n);
    const std::uint32_t now = systick::millis();
    if (client.frames_received() != frames) {  // a server, not line noise
      frames = client.frames_received();
      last_heard = now;
    }
    // The next boot installs the image just received, or starts the application.
    if (client.reset_requested() || (reset_when_idle && now - last_heard >= ota::kRecoveryIdleMs)) {
      usart1::flush();
      cpu::reset();
    }
    if (n == 0) cpu::wait_for_interrupt();  // the 1 ms tick wakes us; the DMA keeps receiving
  }
}

// Listens `window_ms` (kRecoverWindowMs) for RECOVER (ota/recover.hpp). The bytes read here are consumed; the
// server keeps sending RECOVER and HELLO_REQ until the recovery client answers, so nothing it
// needs is lost.
bool recovery_requested(std::uint32_t window_ms) {
  ota::RecoverWatch watch;
  const std::uint32_t start = systick::millis();
  bool seen = false;
  while (!seen && systick::millis() - start < window_ms) {
    std::uint8_t buf[16];
    const std::size_t n = usart1::read(buf, sizeof buf);
    seen = watch.feed(buf, n);
    if (n == 0) cpu::wait_for_interrupt();  // the 1 ms tick wakes us; the DMA keeps receiving
  }
  return seen;
}

}  // namespace

int main() {
  if (iwdg::started_by_hardware()) iwdg::start(kWatchdog);
  const clock::Tree clocks = clock::init();
  supply::watch();  // no flash program or erase on a sagging supply
  usart1::init(clocks.pclk2);
  const ota::FlashMap& map = board::flash_map(clocks, board::Access::install);
  say(ota::kBootLine, map.layout.name);

  ota::Installer installer(map);
  iwdg::feed();  // the install has the whole timeout; the recovery loop feeds on every pass
  const ota::Installer::Result r = installer.run();
  if (r != ota::Installer::Result::nothing) say("install: ", ota::to_string(r, map.layout.staging.medium));
  systick::start(clocks.hclk);  // for the waits below and recovery; jump_to_image stops it
  if (r == ota::Installer::Result::failed && supply::low() && !installer.app_valid()) {
    // The supply sagged under the install, with the application half copied: wait for it to
    // come back (or go: a power-down), then start again; the install resumes. A supply that stays
    // low that long is no power-down: recovery mode then, below, so that the device answers (its
    // failed install reported) and, idle, resets to try again. (A whole application is started
    // instead, below: the device keeps working on a supply that stays low, and the next boot
    // tries the install again.)
    say("supply low", "");
    const std::uint32_t since = systick::millis();
    while (supply::low() && systick::millis() - since < kSupplyWaitMs) iwdg::feed();
    if (!supply::low()) {
      usart1::flush();
      cpu::reset();
    }
  }
  // An application whose app info names the other layout (flashed from the other build's
  // directory) is not started: it would stage its updates where this bootloader never looks, and
  // every update would fail. Recovery mode instead, where an image of this layout replaces it.
  const bool whole = installer.app_valid();
  const std::optional<ota::AppInfo> app =
      whole ? ota::app_info_in(reinterpret_cast<const std::uint8_t*>(map.layout.app.base), ota::kAppInfoWindow,
                               ota::kAppInfoWindow - ota::AppInfo::kSize)
            : std::nullopt;
  const bool app_valid = whole && !(app && app->layout != static_cast<std::uint32_t>(map.layout.id));
  // An application installed now gets its first start without the window: RECOVERs that came
  // during the install (a `--recover` server whose link came back while the install ran) would
  // otherwise keep a good new application from starting and from reporting its upgrade. One
  // that crashes resets without an install, and the window of that boot catches it.
  const bool just_installed = r == ota::Installer::Result::installed || r == ota::Installer::Result::finished;
  if (app_valid && !recovery_requested(just_installed ? 0 : ota::kRecoverWindowMs)) {
    usart1::flush();
    usart1::deinit();  // the DMA stops; jump_to_image resets the peripherals
    clock::reset();  // the application starts on the reset clock, as after a power-on
    // and with the watchdog running, whatever the option bytes: an application that hangs (a
    // bad update) is reset within kWatchdog, and the reset lands here, where `ota push
    // --recover` gets the device back. The application feeds it, or sets its own timeout.
    iwdg::start(kWatchdog);
    cpu::jump_to_image(map.layout.app.base);
  }
  say("recovery", "");
  recovery(map, app_valid, app, app_valid || r == ota::Installer::Result::failed);
}

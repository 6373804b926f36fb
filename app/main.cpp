// The example application: what a user's application looks like with the OTA client library.
//   - banner on USART1: "app v<version> uid <24 hex digits>"
//   - PC13 (the Blue Pill's LED, active low) blinks: 1 Hz, 5 Hz while a download runs
//   - the OTA client runs over USART1: received bytes go in, its frames go out; once it has a
//     verified download it asks for a reset, which the bootloader turns into an install. After
//     the install the client reports OTA-SUCCESS to the server in its HELLO.
//   - the independent watchdog is fed by the main loop, which sleeps (WFI) until the next
//     SysTick whenever the UART had nothing for it.
// OTA_APP_VERSION is set at build time (app.elf = 1, app-v2.elf = 2).
#include "ota/app_info.hpp"
#include "ota/client.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/clock.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/gpio.hpp"
#include "stm32f1/iwdg.hpp"
#include "stm32f1/supply.hpp"
#include "stm32f1/systick.hpp"
#include "stm32f1/usart1.hpp"
#include "stm32f1/usart1_link.hpp"

#ifndef OTA_APP_VERSION
#error "OTA_APP_VERSION must be defined by the build"
#endif

using namespace stm32f1;

// Read by `ota image build`; the same version and product go in HELLO.
OTA_APP_INFO(OTA_APP_VERSION, "ota-example-app");

namespace {

constexpr gpio::Pin kLed{gpio::Port::C, 13};
// > the longest flash operation of a receive call, on any chip (iwdg.hpp)
constexpr iwdg::Setting kWatchdog = iwdg::setting_for(4000);

void banner() {
  static_assert(OTA_APP_VERSION >= 0 && OTA_APP_VERSION <= 9999);
  char line[48] = "app v";
  std::size_t n = 5;
  char digits[4];
  std::size_t d = 0;
  for (unsigned v = OTA_APP_VERSION; d == 0 || v != 0; v /= 10) digits[d++] = char('0' + v % 10);
  while (d) line[n++] = digits[--d];
  for (const char* s = " uid "; *s;) line[n++] = *s++;
  cpu::uid_hex(line + n);
  n += 24;
  line[n++] = '\r';
  line[n++] = '\n';
  line[n++] = '\0';  // ends the text for a frame decoder on the other side
  usart1::write(reinterpret_cast<const std::uint8_t*>(line), n);
}

}  // namespace

int main() {
  const clock::Tree clocks = clock::init();
  supply::watch();  // no flash program or erase on a sagging supply
  usart1::init(clocks.pclk2);
  systick::start(clocks.hclk);
  iwdg::start(kWatchdog);
  gpio::configure_output(kLed, gpio::Mode::output_2mhz, true);  // off from its first instant
  banner();

  Usart1Link link;
  ota::UpdateClient client(board::flash_map(clocks, board::Access::update), link, application_info(ota_app_info));
  client.boot();

  std::uint32_t last_blink = systick::millis();
  for (;;) {
    iwdg::feed();
    // Everything received since the last pass, no more (usart1_link.hpp).
    const std::size_t pending = receive_pending(client);
    if (client.reset_requested()) {
      usart1::flush();  // RESULT has left the UART
      cpu::reset();     // the bootloader installs the new image
    }
    const std::uint32_t period = client.downloading() ? 100 : 500;
    if (systick::millis() - last_blink >= period) {
      last_blink = systick::millis();
      gpio::toggle(kLed);
    }
    if (pending == 0) cpu::wait_for_interrupt();  // the 1 ms SysTick wakes us; the DMA keeps receiving
  }
}

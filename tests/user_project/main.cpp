// A minimal application of a user's own with the OTA client library (docs/client-library.md):
// a banner, the update client on USART1, the watchdog.
#include "ota/app_info.hpp"
#include "ota/client.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/clock.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/iwdg.hpp"
#include "stm32f1/supply.hpp"
#include "stm32f1/systick.hpp"
#include "stm32f1/usart1.hpp"
#include "stm32f1/usart1_link.hpp"

using namespace stm32f1;

OTA_APP_INFO(MY_APP_VERSION);  // the image's layout and version, for `ota image build`

int main() {
  const clock::Tree clocks = clock::init();
  supply::watch();  // no flash program or erase on a sagging supply
  usart1::init(clocks.pclk2, 115200);
  systick::start(clocks.hclk);
  iwdg::start(iwdg::setting_for(4000));
  usart1::write("my app v");
  const char version[2] = {static_cast<char>('0' + MY_APP_VERSION), '\0'};
  usart1::write(version);
  usart1::write(reinterpret_cast<const std::uint8_t*>("\r\n"), 3);  // the 0 ends the text

  Usart1Link link;
  ota::DeviceInfo info;
  info.role = ota::Role::application;
  info.app_version = ota_app_info.version;
  info.window = kLinkWindow;  // what the receive ring holds
  cpu::uid(info.uid);
  ota::UpdateClient client(board::flash_map(clocks, board::Access::update), link, info);
  client.boot();

  for (;;) {
    iwdg::feed();
    // Everything received since the last pass, no more (usart1_link.hpp).
    const std::size_t pending = receive_pending(client);
    if (client.reset_requested()) {
      usart1::flush();  // RESULT has left the UART
      cpu::reset();     // the bootloader installs the new image
    }
#ifdef MY_APP_WORK_MS  // the test's stand-in for an application's own work, in every pass
    for (const std::uint32_t t = systick::millis(); systick::millis() - t < MY_APP_WORK_MS;) iwdg::feed();
#endif
    if (pending == 0) cpu::wait_for_interrupt();  // the 1 ms SysTick wakes us
  }
}

// A minimal application of a user's own with the OTA client library (docs/client-library.md):
// a banner, the update client on USART1, the watchdog.
#include "ota/app_info.hpp"
#include "ota/client.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/clock.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/iwdg.hpp"
#include "stm32f1/supply.hpp"
#ifndef MY_APP_OWN_SYSTICK
#include "stm32f1/systick.hpp"
#endif
#include "stm32f1/usart1.hpp"
#include "stm32f1/usart1_link.hpp"

using namespace stm32f1;

OTA_APP_INFO(MY_APP_VERSION, "my-device");  // layout, version and product, for `ota image build`

#ifdef MY_APP_BALLAST  // check.sh: an image too large for its region
extern const std::uint8_t ballast[MY_APP_BALLAST];
const std::uint8_t ballast[MY_APP_BALLAST] = {1};
#endif

#ifdef MY_APP_OWN_SYSTICK
// An application with a SysTick of its own (a vendor HAL's tick, say) instead of stm32f1::systick:
// it links (the port's SysTick_Handler comes only with stm32f1::systick), and its handler runs.
namespace systick {
volatile std::uint32_t ticks;
void start(std::uint32_t hclk_hz) {
  struct Regs {
    volatile std::uint32_t CTRL, LOAD, VAL;
  };
  auto& st = *reinterpret_cast<Regs*>(0xE000E010);  // PM0056 4.5
  st.LOAD = hclk_hz / 1000 - 1;
  st.VAL = 0;
  st.CTRL = 7;  // processor clock, interrupt, enabled
}
std::uint32_t millis() { return ticks; }
}  // namespace systick
extern "C" void SysTick_Handler() { systick::ticks = systick::ticks + 1; }
#endif

int main() {
  const clock::Tree clocks = clock::init();
  supply::watch();  // no flash program or erase on a sagging supply
  usart1::init(clocks.pclk2);
  systick::start(clocks.hclk);
  iwdg::start(iwdg::setting_for(4000));
#ifdef MY_APP_OWN_SYSTICK
  while (systick::millis() < 10) cpu::wait_for_interrupt();  // the banner says the tick runs
  usart1::write("own tick: ");
#endif
  usart1::write("my app v");
  usart1::write_decimal(MY_APP_VERSION);
  usart1::write_line("");
#ifdef MY_APP_BALLAST
  usart1::write(ballast, sizeof ballast);  // kept by the link
#endif

  Usart1Link link;
  ota::UpdateClient client(board::flash_map(clocks, board::Access::update), link, application_info(ota_app_info));
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

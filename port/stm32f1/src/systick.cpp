#include "stm32f1/systick.hpp"

#include "reg.hpp"

namespace {
volatile std::uint32_t ticks;
}

extern "C" void SysTick_Handler() { ticks = ticks + 1; }

namespace stm32f1::systick {

using namespace reg;

void start(std::uint32_t hclk_hz) {
  SysTick& st = SYSTICK();
  st.CTRL = 0;
  st.LOAD = hclk_hz / 1000 - 1;  // 24-bit reload: one wrap per millisecond
  st.VAL = 0;
  st.CTRL = systick_ctrl::CLKSOURCE | systick_ctrl::TICKINT | systick_ctrl::ENABLE;
}

std::uint32_t millis() { return ticks; }

void stop() {
  SYSTICK().CTRL = 0;
  SCB().ICSR = scb_icsr::PENDSTCLR;
}

}  // namespace stm32f1::systick

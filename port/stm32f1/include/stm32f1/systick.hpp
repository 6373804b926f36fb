// SysTick millisecond tick (PM0056 §4.5): an interrupt every 1 ms on the core clock.
#pragma once

#include <cstdint>

namespace stm32f1::systick {

void start(std::uint32_t hclk_hz);
std::uint32_t millis();  // wraps after ~49 days
void stop();             // disables the counter and clears a pending tick

}  // namespace stm32f1::systick

// Independent watchdog (RM0008 §19), clocked by the LSI (30-60 kHz, 40 kHz nominal). Once started
// it cannot be stopped until the next reset.
#pragma once

#include <cstdint>

namespace stm32f1::iwdg {

void start(std::uint32_t timeout_ms);  // prescaler /64: 1.6 ms .. 6.5 s at 40 kHz
void feed();

}  // namespace stm32f1::iwdg

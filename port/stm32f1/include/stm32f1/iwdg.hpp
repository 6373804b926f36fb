// Independent watchdog (RM0008 §19), clocked by the LSI (30-60 kHz, 40 kHz nominal). Once started
// it cannot be stopped until the next reset.
#pragma once

#include <cstdint>

namespace stm32f1::iwdg {

// Prescaler /64. The watchdog fires no earlier than timeout_ms whatever the LSI (30-60 kHz), and
// about twice that at the slowest LSI; timeout_ms up to 4368 (4095 counts at 60 kHz).
void start(std::uint32_t timeout_ms);
void feed();

}  // namespace stm32f1::iwdg

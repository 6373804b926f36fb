// Independent watchdog (RM0008 §19), clocked by the LSI (30-60 kHz, 40 kHz nominal). Once started
// it cannot be stopped until the next reset.
#pragma once

#include <cstdint>

namespace stm32f1::iwdg {

// Prescaler and reload for a timeout that holds on the fastest LSI (60 kHz, datasheet DS5319
// table 24): 15 counts per ms at /4, halved (rounding up) per prescaler step until they fit the
// 12-bit reload (RM0008 §19.4.3). At the nominal 40 kHz the timeout is 1.5 times longer, at
// 30 kHz twice; at most 17,472 ms (/256, 4095 counts at 60 kHz).
struct Setting {
  std::uint32_t pr;
  std::uint32_t reload;
};
constexpr Setting setting_for(std::uint32_t timeout_ms) {
  std::uint32_t counts = timeout_ms * 15;
  std::uint32_t pr = 0;
  for (; counts > 0xFFF && pr < 6; ++pr) counts = (counts + 1) >> 1;
  return {pr, counts > 0xFFF ? 0xFFFu : counts == 0 ? 1u : counts};
}

static_assert(setting_for(4000).pr == 4 && setting_for(4000).reload == 3750, "/64: 3750 / 937.5 Hz = 4 s");
static_assert(setting_for(15'000).pr == 6 && setting_for(15'000).reload == 3516, "/256, >= 15 s");
static_assert(setting_for(60'000).reload == 0xFFF && setting_for(0).reload == 1, "clamped");

// Starts the watchdog, or sets a running one to the new setting. Computed at compile time:
//   iwdg::start(iwdg::setting_for(4000));  // fires after 4 s at the earliest, on any chip
void start(Setting s);
void feed();
// True when the option bytes select the hardware watchdog (WDG_SW = 0): the IWDG was started by
// the reset itself, with its shortest setting (about 0.27 s at 60 kHz).
bool started_by_hardware();

}  // namespace stm32f1::iwdg

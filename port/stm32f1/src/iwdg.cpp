#include "stm32f1/iwdg.hpp"

#include "reg.hpp"

namespace stm32f1::iwdg {

using namespace reg;

void start(std::uint32_t timeout_ms) {
  // LSI 40 kHz / 64 = 625 Hz: one count is 1.6 ms; RLR is 12 bits (RM0008 §19.4.3).
  std::uint32_t reload = timeout_ms * 5 / 8;
  if (reload > 0xFFF) reload = 0xFFF;
  if (reload == 0) reload = 1;
  Iwdg& w = IWDG();
  w.KR = iwdg_kr::START;   // starts the LSI and the counter
  w.KR = iwdg_kr::UNLOCK;  // write access to PR and RLR
  w.PR = 4;                // /64
  w.RLR = reload;
  for (std::uint32_t i = 0; i < 100'000 && (w.SR & (iwdg_sr::PVU | iwdg_sr::RVU)); ++i) {
  }
  w.KR = iwdg_kr::RELOAD;
}

void feed() { IWDG().KR = iwdg_kr::RELOAD; }

}  // namespace stm32f1::iwdg

#include "stm32f1/iwdg.hpp"

#include "reg.hpp"

namespace stm32f1::iwdg {

using namespace reg;

void start(std::uint32_t timeout_ms) {
  // Sized for the fastest LSI (60 kHz, datasheet DS5319 table 24): 60 kHz / 64 = 937.5 counts
  // per second, so timeout_ms * 15 / 16 counts never expire before timeout_ms. At the nominal
  // 40 kHz the timeout is 1.5 times longer, at 30 kHz twice. RLR is 12 bits (RM0008 §19.4.3).
  std::uint32_t reload = (timeout_ms * 15 + 15) / 16;
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

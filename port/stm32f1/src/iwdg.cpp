#include "stm32f1/iwdg.hpp"

#include "reg.hpp"

namespace stm32f1::iwdg {

using namespace reg;

void start(Setting s) {
  Iwdg& w = IWDG();
  w.KR = iwdg_kr::START;   // starts the LSI and the counter (no effect if already running)
  w.KR = iwdg_kr::UNLOCK;  // write access to PR and RLR
  w.PR = s.pr;
  w.RLR = s.reload;
  for (std::uint32_t i = 0; i < 100'000 && (w.SR & (iwdg_sr::PVU | iwdg_sr::RVU)); ++i) {
  }
  w.KR = iwdg_kr::RELOAD;
}

void feed() { IWDG().KR = iwdg_kr::RELOAD; }

bool started_by_hardware() { return (FLASH().OBR & flash_obr::WDG_SW) == 0; }

}  // namespace stm32f1::iwdg

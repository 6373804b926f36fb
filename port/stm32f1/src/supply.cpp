#include "stm32f1/supply.hpp"

#include "reg.hpp"

namespace stm32f1::supply {

using namespace reg;

namespace {
constexpr std::uint32_t kWatch = pwr_cr::PVDE | pwr_cr::PLS_2V9;
bool watching = false;
}  // namespace

void watch() {
  RCC().APB1ENR |= rcc_apb1::PWR;
  PWR().CR |= kWatch;
  watching = true;
}

// Without watch(): no verdict, nothing refused. After it, a watch that is no longer as watch() set
// it (PWR's clock or the detector turned off, a lower level chosen) cannot say the supply is
// high enough: low.
bool low() {
  return watching && (!(RCC().APB1ENR & rcc_apb1::PWR) || (PWR().CR & kWatch) != kWatch || (PWR().CSR & pwr_csr::PVDO));
}

}  // namespace stm32f1::supply

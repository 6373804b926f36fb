#include "stm32f1/supply.hpp"

#include "reg.hpp"

namespace stm32f1::supply {

using namespace reg;

void watch() {
  RCC().APB1ENR |= rcc_apb1::PWR;
  PWR().CR |= pwr_cr::PVDE | pwr_cr::PLS_2V9;
}

// Without watch() PWR is not clocked (and not read): no verdict, nothing refused.
bool low() { return (RCC().APB1ENR & rcc_apb1::PWR) && (PWR().CSR & pwr_csr::PVDO); }

}  // namespace stm32f1::supply

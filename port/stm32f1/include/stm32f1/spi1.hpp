// SPI1 as an ota::SpiBus: master, mode 0 (CPOL 0, CPHA 0), 8 bit, MSB first, software NSS.
// PA4 chip select (GPIO, idle high), PA5 SCK, PA6 MISO, PA7 MOSI.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/spi.hpp"

namespace stm32f1 {

class Spi1 final : public ota::SpiBus {
 public:
  // SCK = pclk2 / 2^(BR+1), the fastest that does not exceed max_hz (9 MHz at 72 MHz).
  void init(std::uint32_t pclk2_hz, std::uint32_t max_hz = 9'000'000);
  void select(bool asserted) override;
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) override;
};

}  // namespace stm32f1

// SPI1 for the W25Q driver: master, mode 0 (CPOL 0, CPHA 0), 8 bit, MSB first, software NSS.
// PA4 chip select (GPIO, idle high), PA5 SCK, PA6 MISO, PA7 MOSI.
// It has ota::SpiBus's two calls without deriving from it: the board gives it to the driver as
// ota::BasicW25qFlash<Spi1>, whose bus calls are then direct (ota/w25q.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "stm32f1/supply.hpp"

namespace stm32f1 {

class Spi1 final {
 public:
  // SCK = pclk2 / 2^(BR+1), the fastest that does not exceed max_hz (9 MHz at 72 MHz). Also
  // clears failed().
  void init(std::uint32_t pclk2_hz, std::uint32_t max_hz = 9'000'000);
  void select(bool asserted);
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len);
  // True once a byte did not complete in far more than its time (the peripheral stopped: its
  // clock gated or its registers changed behind the driver's back). The bytes it left unread are
  // not written to rx, every transfer since then did nothing, and the W25Q driver fails the
  // operation (ota/w25q.hpp) instead of using what the buffer held. Until init() again.
  bool failed() const;
  // No W25Q program or erase while the supply is low (supply.hpp; the chip needs 2.7 V).
  bool write_allowed() const { return !supply::low(); }
};

}  // namespace stm32f1

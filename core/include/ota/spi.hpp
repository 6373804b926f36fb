// The SPI port contract used by the portable W25Q driver (ota/w25q.hpp). A port may instead give
// the driver its own class with the same two members (ota::BasicW25qFlash<Bus>), without virtual
// calls.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ota {

class SpiBus {
 public:
  SpiBus() = default;
  SpiBus(const SpiBus&) = delete;
  SpiBus& operator=(const SpiBus&) = delete;

  // Drive the chip select of the attached device (true = asserted, i.e. the pin low).
  virtual void select(bool asserted) = 0;
  // Full-duplex transfer of len bytes. tx may be null (0xFF is sent), rx may be null (discarded).
  // With the chip deselected it still clocks the bytes out (the W25Q ignores them): the driver
  // waits that way, in SCK periods, where the chip needs /CS high for a while.
  virtual void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) = 0;
  // True once a transfer could not complete (a bus that can time out, such as an SPI peripheral
  // that stopped); rx then holds nothing the chip sent, and the driver fails the operation under
  // way. A bus class given to BasicW25qFlash directly may have it too (stm32f1::Spi1 does).
  virtual bool failed() const { return false; }

 protected:
  ~SpiBus() = default;
};

}  // namespace ota

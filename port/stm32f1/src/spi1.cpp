#include "stm32f1/spi1.hpp"

#include "reg.hpp"
#include "stm32f1/gpio.hpp"

namespace stm32f1 {
namespace {

using namespace reg;

constexpr gpio::Pin kCs{gpio::Port::A, 4};
constexpr std::uint32_t kByteLoops = 10'000;  // one byte takes 8 SCK periods; never this long

// Spi1::failed(): the state of the one SPI1, kept here rather than in the object, so that the
// driver's calls need no `this` (smaller).
bool failed_ = false;

// A flag that does not come in time fails the bus for good (until init): the byte under way
// will not complete, so there is nothing left to wait for.
bool wait(std::uint32_t flag) {
  for (std::uint32_t i = 0; i < kByteLoops; ++i)
    if (SPI1().SR & flag) return true;
  failed_ = true;
  return false;
}

}  // namespace

bool Spi1::failed() const { return failed_; }

void Spi1::init(std::uint32_t pclk2_hz, std::uint32_t max_hz) {
  RCC().APB2ENR |= rcc_apb2::SPI1 | rcc_apb2::IOPA;
  gpio::write(kCs, true);  // deselected before the pin becomes an output (needs the port clock)
  // From a table: four calls with their arguments written out take more flash than the loop.
  static constexpr struct {
    gpio::Pin pin;
    gpio::Mode mode;
  } kPins[] = {
      {kCs, gpio::Mode::output_50mhz},
      {{gpio::Port::A, 5}, gpio::Mode::alternate_50mhz},  // SCK
      {{gpio::Port::A, 6}, gpio::Mode::input_pull_up},    // MISO
      {{gpio::Port::A, 7}, gpio::Mode::alternate_50mhz},  // MOSI
  };
  for (const auto& p : kPins) gpio::configure(p.pin, p.mode);
  std::uint32_t br = 0;  // SCK = pclk2 / 2^(br + 1), br 0..7 (RM0008 §25.5.1)
  while (br < 7 && (pclk2_hz >> (br + 1)) > max_hz) ++br;
  // No DMA requests, no interrupts, no SSOE (RM0008 §25.5.2): the driver polls, and an
  // application that drove SPI1 with them (a DMA channel reading DR would take the W25Q's bytes
  // before the driver sees RXNE) may have left them set before it calls flash_map() again.
  SPI1().CR2 = 0;
  // What an application left in the receiver goes: a DR read then an SR read clear RXNE and OVR
  // (a transmit-only user never reads DR; a stale RXNE would have every answer read one byte
  // late), and that SR read followed by the CR1 write below clears MODF (RM0008 §25.3.10).
  (void)SPI1().DR;
  (void)SPI1().SR;
  // SSM + SSI: NSS is driven by software and held high, so master mode does not fault (MODF).
  SPI1().CR1 = spi_cr1::MSTR | spi_cr1::SSM | spi_cr1::SSI | br << spi_cr1::BR_SHIFT;
  SPI1().CR1 |= spi_cr1::SPE;
  failed_ = false;
}

void Spi1::select(bool asserted) {
  // The last byte has fully left before CS moves. A BSY that does not clear fails the bus, and
  // CS moves all the same: a stalled shifter clocks nothing, so the chip sees no cut byte.
  for (std::uint32_t i = 0; SPI1().SR & spi_sr::BSY; ++i)
    if (i == kByteLoops) {
      failed_ = true;
      break;
    }
  gpio::write(kCs, !asserted);
}

void Spi1::transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) {
  Spi& s = SPI1();
  for (std::size_t i = 0; i < len && !failed_; ++i) {  // a failed bus sends nothing more
    if (!wait(spi_sr::TXE)) return;
    s.DR = tx ? tx[i] : 0xFF;
    if (!wait(spi_sr::RXNE)) return;
    const auto b = static_cast<std::uint8_t>(s.DR);  // reading DR clears RXNE
    if (rx) rx[i] = b;
  }
}

}  // namespace stm32f1

// External layout: application in the internal flash, staging and flags in block 0 of a W25Q on
// SPI1 (PA4 CS, PA5 SCK, PA6 MISO, PA7 MOSI).
#include "ota/layout.hpp"
#include "ota/w25q.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/internal_flash.hpp"
#include "stm32f1/spi1.hpp"

namespace stm32f1::board {
namespace {

constexpr const ota::Layout& kLayout = ota::kExternalLayout;
// Status polls per wait: a 4 KB sector erase takes up to 400 ms; one poll (one byte at 9 MHz
// plus the loop) takes ~1.5 us at 72 MHz, so 400k polls is ~0.6 s (~3 s on the HSI fallback).
// An absent chip reads BUSY forever: the probe at start-up then fails after that time, once,
// and every later access fails at once (after one JEDEC id command, which finds a chip that came
// back).
constexpr std::uint32_t kPollLimit = 400'000;

InternalFlash internal(kLayout.app.base);  // bootloader pages below app.base are refused
Spi1 spi;
ota::BasicW25qFlash<Spi1> w25q(spi, ota::kW25qUsed, kPollLimit);
const ota::FlashMap map{internal, w25q};
static_assert(&ota::FlashMap::layout == &kLayout, "the core is built for this layout");

}  // namespace

const ota::FlashMap& flash_map(const clock::Tree& clocks, Access access) {
  if (access == Access::update) internal.protect_below(ota::kFlashBase + ota::kFlashSize);  // staging is external
  spi.init(clocks.pclk2);
  w25q.probe(nullptr);  // no chip answering: accesses then fail at once, not after 400k polls
  return map;
}

}  // namespace stm32f1::board

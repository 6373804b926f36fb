// The port's drivers on their own, for the emulated board: an image (at the application address,
// started by the bootloader) that exercises what neither the bootloader nor the example
// application uses, or uses only on paths a normal update never takes, and prints results that
// emulator/tests/firmware_test.cpp checks. One line per result, then "selftest done". On a real
// board it checks a clone chip before it is fielded (docs/flashing.md, "Clone chips").
#include <cstdint>

#include "ota/layout.hpp"
#include "ota/w25q.hpp"
#include "stm32f1/board.hpp"
#include "stm32f1/clock.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/crc.hpp"
#include "stm32f1/internal_flash.hpp"
#include "stm32f1/iwdg.hpp"
#include "stm32f1/spi1.hpp"
#include "stm32f1/supply.hpp"
#include "stm32f1/systick.hpp"
#include "stm32f1/usart1.hpp"

using namespace stm32f1;

namespace {

void print(const char* name, std::uint32_t value) {
  char hex[11] = "=";
  for (int i = 0; i < 8; ++i) hex[1 + i] = "0123456789abcdef"[(value >> (28 - 4 * i)) & 15];
  hex[9] = '\n';
  hex[10] = '\0';
  usart1::write(name);
  usart1::write(hex);
}

volatile std::uint32_t usart1_irqs = 0;

volatile std::uint32_t& reg32(std::uint32_t addr) { return *reinterpret_cast<volatile std::uint32_t*>(addr); }

}  // namespace

// A device interrupt taken over by name, as an application would (irq_names.hpp): USART1's TXE.
extern "C" void USART1_IRQHandler() {
  usart1_irqs = usart1_irqs + 1;
  *reinterpret_cast<volatile std::uint32_t*>(0x4001380C) &= ~(1u << 7);  // CR1.TXEIE off
}

int main() {
  const clock::Tree clocks = clock::init();
  usart1::init(clocks.pclk2);
  crc::enable();
  // The check value of CRC-32 is that of "123456789" (9 bytes: two words and a tail byte).
  static constexpr std::uint8_t kCheck[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  print("crc32 check", crc::crc32(kCheck, sizeof kCheck));
  print("crc32 words", crc::crc32(kCheck, 8));
  print("crc32 empty", crc::crc32(kCheck, 0));
  static constexpr std::uint32_t kWords[] = {0x12345678, 0x9ABCDEF0};
  print("mpeg2 words", crc::mpeg2(kWords, 2));

  // The internal flash driver's verification (the ota::Flash contract), on the board's FLASH
  // controller, in the first staging page. Each line prints 1 (true) or 0 (false).
  InternalFlash flash(ota::kInternalLayout.staging.base);
  const std::uint32_t page = ota::kInternalLayout.staging.base;
  const std::uint8_t data[4] = {0x12, 0x34, 0x56, 0x78};
  const std::uint8_t ones[2] = {0xFF, 0xFF};
  const std::uint8_t zeros[2] = {0x00, 0x00};
  print("flash erase", flash.erase(page));
  print("flash write", flash.write(page, data, 4));
  print("flash ffff over data", flash.write(page, ones, 2));     // must fail: not erased
  print("flash ffff over erased", flash.write(page + 8, ones, 2));
  print("flash zeros over data", flash.write(page, zeros, 2));   // 0x0000 over anything
  print("flash odd length", flash.write(page + 16, data, 3));    // 12 34 56 FF
  std::uint32_t word = 0;
  flash.read(page + 16, &word, 4);
  print("flash odd word", word);
  print("flash below limit", flash.write(page - ota::kFlashPage, data, 2));  // refused
  print("flash unaligned", flash.write(page + 1, data, 2));                  // refused
  // An application that switched the HSI off (the core runs on the PLL from HSE): program and
  // erase need it, so the driver switches it back on.
  volatile std::uint32_t& rcc_cr = *reinterpret_cast<volatile std::uint32_t*>(0x40021000);
  rcc_cr = rcc_cr & ~1u;  // HSION
  print("hsi off", rcc_cr & 1u);
  print("flash without hsi", flash.erase(page + ota::kFlashPage) && flash.write(page + ota::kFlashPage, data, 4));
  print("hsi back on", rcc_cr & 1u);

  // The supply watch taken apart by an application after watch(): PWR's clock off, the detector
  // off, a lower level. Each leaves low() true (no flash write is known to be safe) until
  // watch() again; the emulated supply is 3.3 V, so only the watch's state speaks.
  volatile std::uint32_t& apb1enr = reg32(0x4002101C);
  volatile std::uint32_t& pwr_cr = reg32(0x40007000);
  print("supply low before watch", supply::low());
  supply::watch();
  print("supply low watched", supply::low());
  pwr_cr = pwr_cr & ~(1u << 4);  // PVDE
  print("supply low detector off", supply::low());
  print("flash write detector off", flash.write(page + 64, data, 2));
  supply::watch();
  pwr_cr = (pwr_cr & ~(7u << 5)) | 2u << 5;  // PLS: 2.3 V
  print("supply low lower level", supply::low());
  supply::watch();
  apb1enr = apb1enr & ~(1u << 28);  // PWREN
  print("supply low pwr clock off", supply::low());
  supply::watch();
  print("supply low watched again", supply::low());

  // The flash map an application gets (Access::update): the application area and the bootloader
  // are out of its reach, however it is asked; staging is not.
  const ota::FlashMap& map = board::flash_map(clocks, board::Access::update);
  const ota::Layout& l = ota::kInternalLayout;
  print("update map app write", map.internal.write(l.app.base + 0x400, data, 2));
  print("update map app erase", map.internal.erase(l.app.base + 0x400));
  print("update map boot erase", map.internal.erase(0x08000000));
  print("update map staging write", map.internal.write(page + 32, data, 2));

  // SPI1 handed back by an application that drove it with DMA and interrupts of its own (a
  // display, a second SPI device): CR2's enables left set (TXEIE RXNEIE ERRIE TXDMAEN RXDMAEN),
  // DMA1 channel 2 still reading SPI1_DR into a buffer, circularly. Spi1::init (the external
  // board's flash_map) must take SPI1 back: with RXDMAEN set the DMA takes each byte the W25Q
  // sends before the driver sees RXNE. The board's W25Q is there whatever the layout.
  Spi1 spi;
  spi.init(clocks.pclk2);
  ota::BasicW25qFlash<Spi1> w25q(spi, ota::kW25qUsed, 400'000);
  print("w25q probe", w25q.probe(nullptr));
  static std::uint8_t sink[16];
  reg32(0x40021014) |= 1u;                                        // RCC_AHBENR.DMA1EN
  reg32(0x40020024) = 0x4001300C;                                 // CPAR2: SPI1_DR
  reg32(0x40020028) = reinterpret_cast<std::uintptr_t>(sink);    // CMAR2
  reg32(0x40020020) = sizeof sink;                                // CNDTR2
  reg32(0x4002001C) = 1u << 7 | 1u << 5 | 1u;                     // CCR2: MINC, CIRC, EN
  reg32(0x40013004) = 0xE3;                                       // SPI1_CR2
  spi.init(clocks.pclk2);
  print("spi1 cr2 after init", reg32(0x40013004));
  print("w25q probe after the application", w25q.probe(nullptr));
  print("spi1 failed", spi.failed());

  // SPI1 handed back by an application that only sent on it (a display on its own chip select,
  // /CS of the W25Q high), by RM0008 25.3.5's transmit-only procedure: TXE before each byte,
  // BSY = 0 after the last, DR never read. Each byte still lands in the RX buffer, so RXNE
  // stays set and OVR rises (RM0008 25.3.10). Spi1::init (the external board's flash_map) must
  // take SPI1 back from that too: a driver that trusts the stale RXNE reads every W25Q answer
  // one byte late.
  for (int i = 0; i < 4; ++i) {
    while (!(reg32(0x40013008) & 2u)) {  // SPI1_SR.TXE
    }
    reg32(0x4001300C) = 0x5A;
  }
  while (reg32(0x40013008) & 0x80u) {  // SPI1_SR.BSY
  }
  print("spi1 rxne ovr after a tx-only application", reg32(0x40013008) & 0x41u);
  spi.init(clocks.pclk2);
  print("w25q probe after a tx-only application", w25q.probe(nullptr));
  std::uint32_t id = 0;
  w25q.probe(&id);
  print("w25q id after a tx-only application", id);

  usart1::flush();
  *reinterpret_cast<volatile std::uint32_t*>(0xE000E104) = 1u << (37 - 32);  // NVIC ISER1: USART1
  asm volatile("cpsie i" ::: "memory");
  *reinterpret_cast<volatile std::uint32_t*>(0x4001380C) |= 1u << 7;  // CR1.TXEIE: TXE is set
  for (int i = 0; i < 1000 && usart1_irqs == 0; ++i) {
  }
  print("usart1 irq handler", usart1_irqs);

  usart1::write("selftest done\n");
  usart1::flush();
  // On a real board (the clone bring-up check of docs/flashing.md) it stays here: the watchdog
  // the bootloader started is fed, or each of its resets would run the test, and erase its two
  // flash pages, again.
  systick::start(clocks.hclk);  // wakes the sleep below every millisecond
  for (;;) {
    iwdg::feed();
    cpu::wait_for_interrupt();
  }
}

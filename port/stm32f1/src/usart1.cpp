#include "stm32f1/usart1.hpp"

#include "reg.hpp"
#include "stm32f1/gpio.hpp"

namespace stm32f1::usart1 {
namespace {

using namespace reg;

volatile std::uint8_t ring[kRxRing];  // written by the DMA behind the compiler's back
std::size_t tail;  // next index to read

// DMA1 channel 5 serves USART1_RX (RM0008 §13.3.7, table 78).
DmaChannel& rx_channel() { return DMA1().CH[4]; }

// The DMA writes ring[kRxRing - CNDTR] next (CNDTR counts down and reloads in circular mode).
std::size_t head() {
  const std::size_t n = rx_channel().CNDTR;
  return n == 0 ? 0 : kRxRing - n;
}

}  // namespace

void init(std::uint32_t pclk2_hz) {
  RCC().AHBENR |= rcc_ahbenr::DMA1EN;
  RCC().APB2ENR |= rcc_apb2::USART1;
  gpio::configure({gpio::Port::A, 9}, gpio::Mode::alternate_50mhz);  // TX
  gpio::configure({gpio::Port::A, 10}, gpio::Mode::input_pull_up);   // RX, idle high

  Usart& u = USART1();
  u.CR1 = 0;
  // BRR = fck / baud with 4 fraction bits = USARTDIV * 16 (RM0008 §27.3.4): 72 MHz -> 625.
  u.BRR = (pclk2_hz + kBaud / 2) / kBaud;
  DmaChannel& ch = rx_channel();
  ch.CCR = 0;
  ch.CPAR = reinterpret_cast<std::uintptr_t>(&u.DR);
  ch.CMAR = reinterpret_cast<std::uintptr_t>(&ring[0]);
  ch.CNDTR = kRxRing;
  ch.CCR = dma_ccr::MINC | dma_ccr::CIRC | dma_ccr::PL_HIGH | dma_ccr::EN;  // DIR 0: from USART
  tail = 0;
  u.CR3 = usart_cr3::DMAR;
  u.CR1 = usart_cr1::UE | usart_cr1::TE | usart_cr1::RE;
}

std::size_t available() {
  const std::size_t h = head();
  return h >= tail ? h - tail : h + kRxRing - tail;  // no division: kRxRing need not be 2^n
}

std::size_t read(std::uint8_t* dst, std::size_t max) {
  // An overrun (a byte the DMA did not fetch in time) stops the receiver until SR then DR are
  // read; the DMA's own reads of DR do not clear ORE. The byte lost, and any this read takes
  // from the DMA, cost a frame that the protocol sends again.
  Usart& u = USART1();
  if (u.SR & usart_sr::ORE) static_cast<void>(u.DR);
  std::size_t n = 0;
  for (const std::size_t h = head(); n < max && tail != h; ++n) {
    dst[n] = ring[tail];
    if (++tail == kRxRing) tail = 0;
  }
  return n;
}

void write(const std::uint8_t* src, std::size_t len) {
  Usart& u = USART1();
  for (std::size_t i = 0; i < len; ++i) {
    while (!(u.SR & usart_sr::TXE)) {
    }
    u.DR = src[i];
  }
}

void write(const char* text) {
  while (*text) write(reinterpret_cast<const std::uint8_t*>(text++), 1);
}

void write_line(const char* text) {
  write(text);
  write(reinterpret_cast<const std::uint8_t*>("\r\n"), 3);  // with the terminating 0x00
}

void write_decimal(std::uint32_t n) {
  char digits[10];
  std::size_t d = 0;
  do digits[d++] = static_cast<char>('0' + n % 10);
  while (n /= 10);
  while (d) write(reinterpret_cast<const std::uint8_t*>(&digits[--d]), 1);
}

void flush() {
  while (!(USART1().SR & usart_sr::TC)) {
  }
}

void deinit() {
  DmaChannel& ch = rx_channel();
  ch.CCR = 0;  // first: the other registers are writable only while the channel is disabled
  ch.CNDTR = 0;
  ch.CPAR = 0;
  ch.CMAR = 0;
  DMA1().IFCR = 0xFu << 16;  // channel 5's GIF/TCIF/HTIF/TEIF (RM0008 §13.4.2)
  RCC().APB2RSTR |= rcc_apb2::USART1;  // pulse the peripheral reset
  RCC().APB2RSTR &= ~rcc_apb2::USART1;
  RCC().APB2ENR &= ~rcc_apb2::USART1;
}

}  // namespace stm32f1::usart1

// USART1 reception by DMA1 channel 5 into a 16-byte circular buffer; the CPU follows the write
// position with CNDTR and echoes what arrives.
#include "fw.hpp"

static volatile uint8_t buf[16];

int main() {
  clock_72mhz();
  uart_init(72000000, 115200);
  RCC_AHBENR |= 1;
  DMA1_CPAR(5) = 0x40013804;
  DMA1_CMAR(5) = reinterpret_cast<uint32_t>(buf);
  DMA1_CNDTR(5) = 16;
  DMA1_CCR(5) = (1u << 7) | (1u << 5) | 1u;  // MINC, CIRC, EN; peripheral to memory, bytes
  USART1_CR3 = 1u << 6;                      // DMAR
  uart_putc('R');
  uint32_t pos = 0, got = 0;
  while (got < 20) {
    const uint32_t w = (16 - DMA1_CNDTR(5)) % 16;
    while (pos != w) {
      uart_putc(static_cast<char>(buf[pos]));
      pos = (pos + 1) % 16;
      ++got;
    }
  }
  uart_flush();
  RESULT(0) = DMA1_ISR;
  RESULT(1) = DMA1_CNDTR(5);
  return 0;
}

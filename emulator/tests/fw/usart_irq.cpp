// Interrupt-driven reception (RXNEIE, NVIC IRQ 37) and DMA transmission (DMA1 channel 4, TCIF
// interrupt on IRQ 14): each received line is sent back upper-cased by DMA.
#include "fw.hpp"

static volatile char line[32];
static volatile uint32_t len, lines, dma_done;
static char out[32];

extern "C" void irq_handler() {
  const uint32_t ipsr = [] {
    uint32_t v;
    __asm volatile("mrs %0, ipsr" : "=r"(v));
    return v;
  }();
  if (ipsr == 16 + 37) {  // USART1
    const uint32_t sr = USART1_SR;
    if (sr & (1u << 5)) {
      const char c = static_cast<char>(USART1_DR);
      if (len < sizeof line) {
        line[len] = c;
        len = len + 1;
      }
      if (c == '\n') lines = lines + 1;
    }
  } else if (ipsr == 16 + 14) {  // DMA1 channel 4
    DMA1_IFCR = 0xFu << 12;
    dma_done = dma_done + 1;
  } else {
    __asm volatile("bkpt 0xEE");
  }
}

int main() {
  len = 0;
  lines = 0;
  dma_done = 0;
  clock_72mhz();
  uart_init(72000000, 115200);
  RCC_AHBENR |= 1;
  USART1_CR1 |= 1u << 5;  // RXNEIE
  USART1_CR3 = 1u << 7;   // DMAT
  NVIC_ISER0 = 1u << 14;  // DMA1 channel 4
  NVIC_ISER1 = 1u << 5;   // USART1 = 37
  uart_putc('R');
  while (lines == 0) __asm volatile("wfi");
  for (uint32_t i = 0; i < len; ++i) out[i] = (line[i] >= 'a' && line[i] <= 'z') ? static_cast<char>(line[i] - 32) : line[i];
  USART1_SR = ~(1u << 6);  // TC cleared by a 0, as RM0008 27.3.13 asks before a DMA transmission
  DMA1_CPAR(4) = 0x40013804;
  DMA1_CMAR(4) = reinterpret_cast<uint32_t>(out);
  DMA1_CNDTR(4) = len;
  DMA1_CCR(4) = (1u << 7) | (1u << 4) | (1u << 1) | 1u;  // MINC, DIR mem->periph, TCIE, EN
  while (dma_done == 0) __asm volatile("wfi");
  uart_flush();
  RESULT(0) = dma_done;
  return 0;
}

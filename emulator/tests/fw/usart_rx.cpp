// Polled reception and echo, then an overrun: three bytes arrive while the CPU does not read.
#include "fw.hpp"

int main() {
  clock_72mhz();
  DEMCR |= 1u << 24;
  DWT_CTRL |= 1;
  uart_init(72000000, 115200);
  uart_putc('R');
  for (int i = 0; i < 5; ++i) uart_putc(static_cast<char>(uart_getc() + 1));
  uart_putc('O');
  uart_flush();
  delay_cycles(72000 * 2);  // 2 ms: the host's three bytes arrive meanwhile
  RESULT(0) = USART1_SR;
  RESULT(1) = USART1_DR;
  RESULT(2) = USART1_SR;
  return 0;
}

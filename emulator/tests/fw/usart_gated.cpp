// USART1 with its clock gated off receives nothing; then, held in reset (APB2RSTR), it refuses
// the bus until the reset bit is cleared.
#include "fw.hpp"

#define RCC_APB2RSTR REG(0x4002100C)

int main() {
  clock_72mhz();
  DEMCR |= 1u << 24;
  DWT_CTRL |= 1;
  uart_init(72000000, 115200);
  uart_putc('R');
  uart_flush();
  RCC_APB2ENR &= ~(1u << 14);  // USART1's clock off: the host's bytes arrive meanwhile
  delay_cycles(72000 * 2);     // 2 ms
  RCC_APB2ENR |= 1u << 14;
  RESULT(0) = USART1_SR;       // RXNE clear: nothing was received
  RESULT(1) = 1;
  RCC_APB2RSTR = 1u << 14;     // held in reset from here
  USART1_CR1 = 0x200C;         // refused
  RESULT(1) = 2;
  return 0;
}

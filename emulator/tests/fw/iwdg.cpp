// Starts the independent watchdog (10 ms), feeds it for a while, then stops feeding: the chip
// resets and the program reports the watchdog reset flag.
#include "fw.hpp"

int main() {
  clock_72mhz();
  DEMCR |= 1u << 24;
  DWT_CTRL |= 1;
  uart_init(72000000, 115200);
  if (RCC_CSR & (1u << 29)) {
    RCC_CSR |= 1u << 24;  // RMVF
    RESULT(0) = RCC_CSR;
    uart_puts("watchdog reset\n");
    uart_flush();
    return 0;
  }
  uart_puts("start\n");
  IWDG_KR = 0x5555;
  IWDG_PR = 0;     // /4: 10 kHz
  IWDG_RLR = 99;   // 100 ticks: 10 ms
  IWDG_KR = 0xCCCC;
  for (int i = 0; i < 5; ++i) {
    delay_cycles(72000 * 5);  // 5 ms
    IWDG_KR = 0xAAAA;
  }
  uart_puts("stop feeding\n");
  for (;;) {
  }
}

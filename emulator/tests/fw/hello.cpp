// Sets the clock to 72 MHz, prints a line at 115200 baud, lights the LED.
#include "fw.hpp"

int main() {
  clock_72mhz();
  uart_init(72000000, 115200);
  led_init();
  led(true);
  uart_puts("hello from the blue pill\n");
  uart_flush();
  return 0;
}

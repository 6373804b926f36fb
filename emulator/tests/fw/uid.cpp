// Prints the unique device ID and the flash size register.
#include "fw.hpp"

int main() {
  uart_init(8000000, 115200);  // reset clock: HSI 8 MHz
  uart_puts("uid ");
  for (int i = 0; i < 3; ++i) uart_hex(REG(0x1FFFF7E8 + 4 * i));
  uart_puts(" flash ");
  uart_hex(REG16(0x1FFFF7E0));
  uart_puts("\n");
  uart_flush();
  return 0;
}

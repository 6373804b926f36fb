// SPI1 master with a GPIO chip select on PA4 talking to the W25Q: JEDEC id, write enable (tried
// again until WEL sets: the chip ignores it for tPUW after power-up), 4 KB sector erase, page
// program, read back, BUSY polling timed with the DWT.
#include "fw.hpp"

static uint8_t xfer(uint8_t b) {
  while (!(SPI1_SR & 2)) {
  }
  SPI1_DR = b;
  while (!(SPI1_SR & 1)) {
  }
  return static_cast<uint8_t>(SPI1_DR);
}
static void cs(bool low) {
  while (SPI1_SR & 0x80) {
  }
  GPIOA_BSRR = low ? (1u << 20) : (1u << 4);
}
static void cmd(uint8_t c) {
  cs(true);
  xfer(c);
  cs(false);
}
static void cmd_addr(uint8_t c, uint32_t a) {
  xfer(c);
  xfer(static_cast<uint8_t>(a >> 16));
  xfer(static_cast<uint8_t>(a >> 8));
  xfer(static_cast<uint8_t>(a));
}
static uint32_t wait_busy() {
  uint32_t polls = 0;
  cs(true);
  xfer(0x05);
  while (xfer(0) & 1) ++polls;
  cs(false);
  return polls;
}

static uint32_t write_enable() {
  uint32_t tries = 0;
  uint8_t sr = 0;
  do {
    cmd(0x06);
    ++tries;
    cs(true);
    xfer(0x05);
    sr = xfer(0);
    cs(false);
  } while (!(sr & 2));
  return tries;
}

int main() {
  clock_72mhz();
  DEMCR |= 1u << 24;
  DWT_CTRL |= 1;
  RCC_APB2ENR |= (1u << 12) | (1u << 2);
  GPIOA_BSRR = 1u << 4;  // CS high before it becomes an output
  GPIOA_CRL = (GPIOA_CRL & 0x0000FFFFu) | 0xB4B30000u;  // PA4 out, PA5 AF, PA6 in, PA7 AF
  SPI1_CR1 = (1u << 2) | (2u << 3) | (1u << 8) | (1u << 9) | (1u << 6);  // MSTR, /8, SSI, SSM, SPE
  cs(true);
  xfer(0x9F);
  uint32_t id = static_cast<uint32_t>(xfer(0)) << 16;
  id |= static_cast<uint32_t>(xfer(0)) << 8;
  id |= xfer(0);
  cs(false);
  RESULT(0) = id;
  const uint32_t t_wren = DWT_CYCCNT;
  RESULT(5) = write_enable();
  RESULT(6) = DWT_CYCCNT - t_wren;
  cs(true);
  cmd_addr(0x20, 0x001000);
  cs(false);
  uint32_t t0 = DWT_CYCCNT;
  RESULT(1) = wait_busy();
  RESULT(2) = DWT_CYCCNT - t0;  // erase time
  RESULT(7) = write_enable();
  cs(true);
  cmd_addr(0x02, 0x0010F0);
  for (int i = 0; i < 16; ++i) xfer(static_cast<uint8_t>(0xA0 + i));
  cs(false);
  t0 = DWT_CYCCNT;
  wait_busy();
  RESULT(3) = DWT_CYCCNT - t0;  // page program time
  cs(true);
  cmd_addr(0x03, 0x0010EE);
  uint32_t sum = 0;
  for (int i = 0; i < 20; ++i) sum = sum * 31 + xfer(0);
  cs(false);
  RESULT(4) = sum;
  return 0;
}

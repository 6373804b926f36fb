// RM0008 13.4.4: CNDTR is not reloaded when a (non-circular) channel is disabled and enabled again;
// at 0 the channel serves no request. MEM2MEM channel 1: 4 bytes, then EN off/on without a new
// CNDTR write.
#include "fw.hpp"

static volatile uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static volatile uint8_t dst[8];

int main() {
  RCC_AHBENR |= 1u;
  DMA1_CPAR(1) = reinterpret_cast<uint32_t>(&src[0]);
  DMA1_CMAR(1) = reinterpret_cast<uint32_t>(&dst[0]);
  DMA1_CNDTR(1) = 4;
  DMA1_CCR(1) = (1u << 14) | (1u << 7) | (1u << 6) | 1u;  // MEM2MEM, MINC, PINC, EN
  while (!(DMA1_ISR & 2u)) {
  }
  DMA1_CCR(1) = 0;
  DMA1_IFCR = 0xF;
  for (int i = 0; i < 8; ++i) dst[i] = 0;
  DMA1_CCR(1) = (1u << 14) | (1u << 7) | (1u << 6) | 1u;  // EN again, CNDTR not rewritten
  RESULT(0) = DMA1_CNDTR(1);
  RESULT(1) = dst[0];
  DMA1_CCR(1) = 0;
  return 0;
}

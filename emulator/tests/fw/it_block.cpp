// IT blocks under interrupts and stops: SysTick every few dozen cycles lands next to the
// instructions of an IT block again and again, and so does any stop of the emulated CPU. On
// silicon an IT block runs each of its instructions under its own condition whatever comes in
// between (the IT state is stacked with xPSR, PM0056 2.3.7). Here the block also straddles a
// 1 KB boundary, where the emulator's CPU (QEMU) ends a translation block: its first instruction
// is 32 bits wide across it, as GCC laid out `hi = i + 1 < len ? bytes[i + 1] : 0xFF` in
// stm32f1::InternalFlash::write of an application.
#include "fw.hpp"

volatile uint32_t ticks;
extern "C" void systick_handler() { ticks = ticks + 1; }

// r0 > r1: returns 3 (the two "hi" adds run, the "ls" move does not); otherwise 255.
extern "C" __attribute__((naked, aligned(1024))) uint32_t straddling_block(uint32_t, uint32_t) {
  __asm volatile(
      "movs r2, #0\n"
      "b 1f\n"
      ".space 1014\n"  // to 0x3FA of the 1 KB block
      "1: cmp r0, r1\n"
      "itte hi\n"
      "addhi.w r2, r2, #1\n"  // at 0x3FE: across the boundary
      "addhi r2, #2\n"
      "movls r2, #255\n"
      "mov r0, r2\n"
      "bx lr\n");
}

int main() {
  SYST_RVR = 40;  // an interrupt every 41 cycles
  SYST_CVR = 0;
  SYST_CSR = 7;
  uint32_t bad = 0;
  for (uint32_t i = 0; i < 20000; ++i) {
    if (straddling_block(i + 1, i) != 3) ++bad;
    if (straddling_block(i, i + 1) != 255) ++bad;
  }
  SYST_CSR = 0;
  RESULT(0) = bad;
  RESULT(1) = ticks;
  RESULT(2) = reinterpret_cast<uint32_t>(&straddling_block);
  return 0;
}

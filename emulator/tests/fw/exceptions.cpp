// SysTick interrupts while the CPU sleeps in WFI, SVC, PendSV, an exception taken from thread
// mode on the process stack.
#include "fw.hpp"

volatile uint32_t ticks;
extern "C" void systick_handler() { ticks = ticks + 1; }
extern "C" void svc_handler() { RESULT(2) = RESULT(2) + 1; }
extern "C" void pendsv_handler() { RESULT(3) = 0x9E; }

static uint32_t pstack[64];

int main() {
  RESULT(2) = 0;  // SRAM powers up random
  clock_72mhz();
  SYST_RVR = 72000 - 1;  // 1 ms
  SYST_CVR = 0;
  SYST_CSR = 7;
  while (ticks < 10) __asm volatile("wfi");
  SYST_CSR = 0;
  RESULT(0) = ticks;
  RESULT(1) = SCB_ICSR;
  __asm volatile("svc 0");
  SCB_ICSR = 1u << 28;
  __asm volatile("dsb\n isb");
  const uint32_t top = reinterpret_cast<uint32_t>(&pstack[64]);
  __asm volatile("msr psp, %0\n movs r0, #2\n msr control, r0\n isb" ::"r"(top) : "r0");
  __asm volatile("svc 1");
  uint32_t sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  RESULT(4) = sp > reinterpret_cast<uint32_t>(pstack) && sp <= top ? 1 : 0;
  __asm volatile("movs r0, #0\n msr control, r0\n isb" ::: "r0");
  return 0;
}

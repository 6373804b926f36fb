#include "stm32f1/cpu.hpp"

#include "reg.hpp"
#include "stm32f1/systick.hpp"

namespace stm32f1::cpu {

using namespace reg;

void uid(std::uint8_t out[12]) {
  const auto* id = reinterpret_cast<const volatile std::uint8_t*>(UID_BASE);
  for (int i = 0; i < 12; ++i) out[i] = id[i];
}

void uid_hex(char out[24]) {
  std::uint8_t id[12];
  uid(id);
  for (int i = 0; i < 12; ++i) {
    const std::uint8_t b = id[i];
    out[2 * i] = "0123456789abcdef"[b >> 4];
    out[2 * i + 1] = "0123456789abcdef"[b & 15];
  }
}

void reset() {
  asm volatile("dsb" ::: "memory");  // complete outstanding memory writes first
  SCB().AIRCR = scb_aircr::VECTKEY | (SCB().AIRCR & scb_aircr::PRIGROUP_MASK) |
                scb_aircr::SYSRESETREQ;
  asm volatile("dsb" ::: "memory");
  for (;;) {
  }
}

void jump_to_image(std::uint32_t base) {
  const auto* vt = reinterpret_cast<const volatile std::uint32_t*>(base);
  const std::uint32_t sp = vt[0], pc = vt[1];
  systick::stop();
  asm volatile("cpsid i" ::: "memory");
  for (int i = 0; i < 2; ++i) {  // F103: 43 interrupt lines, all disabled and unpended
    NVIC().ICER[i] = 0xFFFFFFFF;
    NVIC().ICPR[i] = 0xFFFFFFFF;
  }
  SCB().VTOR = base;  // PM0056 §4.4.4: bits 29:7, the table is 128-byte aligned at least
  // The image starts as after a reset: its stack, its vectors, interrupts enabled.
  asm volatile(
      "msr msp, %0\n"
      "dsb\n"
      "isb\n"
      "cpsie i\n"
      "bx %1\n" ::"r"(sp),
      "r"(pc)
      : "memory");
  __builtin_unreachable();
}

}  // namespace stm32f1::cpu

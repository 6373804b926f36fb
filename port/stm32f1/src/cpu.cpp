#include "stm32f1/cpu.hpp"

#include "reg.hpp"

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
  // SysTick stopped and unpended here, not through stm32f1::systick: an application that uses
  // cpu:: but has a SysTick_Handler of its own must not get systick.cpp's as well.
  SYSTICK().CTRL = 0;
  SCB().ICSR = scb_icsr::PENDSTCLR;
  asm volatile("cpsid i" ::: "memory");
  for (int i = 0; i < 2; ++i) {  // F103: 43 interrupt lines, all disabled and unpended
    NVIC().ICER[i] = 0xFFFFFFFF;
    NVIC().ICPR[i] = 0xFFFFFFFF;
  }
  // The peripherals a bootloader uses back to their reset state (RM0008 §7.3): GPIO ports, AFIO,
  // SPI1, USART1 and PWR through their reset bits, every APB1 and APB2 clock off, the AHB clocks
  // as after reset (DMA1, which has no reset bit, was stopped by its user: usart1::deinit).
  constexpr std::uint32_t kApb2 = rcc_apb2::AFIO | rcc_apb2::IOPA | rcc_apb2::IOPB |
                                  rcc_apb2::IOPC | rcc_apb2::SPI1 | rcc_apb2::USART1;
  RCC().APB2RSTR = kApb2;
  RCC().APB2RSTR = 0;
  RCC().APB2ENR = 0;
  RCC().APB1RSTR = rcc_apb1::PWR;  // the supply watch (supply.hpp) off
  RCC().APB1RSTR = 0;
  RCC().APB1ENR = 0;
  RCC().AHBENR = rcc_ahbenr::SRAMEN | rcc_ahbenr::FLITFEN;
  SCB().VTOR = base;  // aligned as PM0056 §4.4.4 asks: ota::kVectorTableAlign, checked by valid()
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

#include "stm32f1/gpio.hpp"

#include "reg.hpp"

namespace stm32f1::gpio {
namespace {

reg::Gpio& regs(Port p) {
  // GPIOA 0x40010800, GPIOB 0x40010C00, GPIOC 0x40011000 (RM0008 §3.3 memory map)
  return *reinterpret_cast<reg::Gpio*>(0x40010800u + 0x400u * static_cast<unsigned>(p));
}

void enable_clock(Port port) { reg::RCC().APB2ENR |= reg::rcc_apb2::IOPA << static_cast<unsigned>(port); }

}  // namespace

void configure(Pin p, Mode m) {
  enable_clock(p.port);
  reg::Gpio& g = regs(p.port);
  reg::R& cr = p.n < 8 ? g.CRL : g.CRH;
  const unsigned shift = 4u * (p.n % 8u);
  const auto bits = static_cast<std::uint32_t>(m);
  cr = (cr & ~(0xFu << shift)) | ((bits & 0xFu) << shift);
  if (bits & 0x30u) write(p, bits & 0x10u);  // the pull direction is the ODR bit
}

void configure_output(Pin p, Mode m, bool high) {
  enable_clock(p.port);
  write(p, high);  // ODR first: the output drives this level from its first instant
  configure(p, m);
}

void write(Pin p, bool high) {
  // BSRR sets (low half) or resets (high half) a pin atomically, RM0008 §9.2.5
  regs(p.port).BSRR = 1u << (p.n + (high ? 0u : 16u));
}

bool read(Pin p) { return (regs(p.port).IDR >> p.n) & 1u; }

void toggle(Pin p) { write(p, !((regs(p.port).ODR >> p.n) & 1u)); }

}  // namespace stm32f1::gpio

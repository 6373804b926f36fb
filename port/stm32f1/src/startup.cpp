// Reset handler and the core part of the vector table (PM0056 §2.3.4). The linker script places
// .isr_vector at the image base and defines the symbols below. Handlers are weak aliases of
// Default_Handler: define one with the same name (extern "C") to take it over.
#include <cstdint>

#include "irq_names.hpp"
#include "stm32f1/clock.hpp"

extern "C" {
extern std::uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern void (*__preinit_array_start[])(), (*__init_array_end[])();
int main();

[[noreturn]] void Reset_Handler() {
  // The F103's Cortex-M3 r1p1 leaves CCR.STKALIGN off: handlers would start on a stack aligned
  // to 4 bytes only, not the 8 the AAPCS (and any 64-bit local) expects (ARM IHI0046B 2.3.3).
  // CCR (PM0056 §4.4.7): STKALIGN, and the reset values of every other bit.
  *reinterpret_cast<volatile std::uint32_t*>(0xE000ED14) = 1u << 9;
  for (std::uint32_t *src = _sidata, *dst = _sdata; dst < _edata;) *dst++ = *src++;
  for (std::uint32_t* dst = _sbss; dst < _ebss;) *dst++ = 0;
  // .preinit_array then .init_array (static constructors): sections.ld puts them back to back.
  for (auto* f = __preinit_array_start; f < __init_array_end; ++f) (*f)();
  main();
  for (;;) {
  }
}

// An unexpected exception or interrupt resets the chip: a device in the field recovers instead of
// hanging (attach a debugger and break here to see it). This includes the NMI of the clock
// security system when the crystal fails (clock.hpp), which the next start-ups remember.
void Default_Handler() {
  stm32f1::clock::note_fault();
  constexpr std::uint32_t kAircrReset = 0x05FA0004;  // VECTKEY | SYSRESETREQ, PM0056 §4.4.5
  *reinterpret_cast<volatile std::uint32_t*>(0xE000ED0C) = kAircrReset;
  for (;;) {
  }
}

#define OTA_WEAK_HANDLER(name) void name() __attribute__((weak, alias("Default_Handler")));
OTA_WEAK_HANDLER(NMI_Handler)
OTA_WEAK_HANDLER(HardFault_Handler)
OTA_WEAK_HANDLER(MemManage_Handler)
OTA_WEAK_HANDLER(BusFault_Handler)
OTA_WEAK_HANDLER(UsageFault_Handler)
OTA_WEAK_HANDLER(SVC_Handler)
OTA_WEAK_HANDLER(DebugMon_Handler)
OTA_WEAK_HANDLER(PendSV_Handler)
OTA_WEAK_HANDLER(SysTick_Handler)
OTA_STM32F1_IRQS(OTA_WEAK_HANDLER)  // the device interrupts (irq_names.hpp, irq_vectors.cpp)
#undef OTA_WEAK_HANDLER
}

namespace {

using Handler = void (*)();

struct CoreVectors {
  const void* initial_sp;
  Handler handlers[15];  // Reset .. SysTick; 0 marks the reserved entries
};
static_assert(sizeof(CoreVectors) == 16 * 4);

}  // namespace

// The 16 Cortex-M3 entries. The 43 device entries follow in .isr_vector_irq (irq_vectors.cpp):
// an application links them; the bootloader, which enables no interrupt, saves their 172 bytes.
[[gnu::section(".isr_vector"), gnu::used]] constexpr CoreVectors core_vectors = {
    _estack,
    {Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
     UsageFault_Handler, nullptr, nullptr, nullptr, nullptr, SVC_Handler, DebugMon_Handler,
     nullptr, PendSV_Handler, SysTick_Handler}};

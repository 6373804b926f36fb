// The 43 device entries of the vector table of the medium-density F103 (RM0008 §10.1.2, table
// 63: IRQ 0 WWDG .. IRQ 42 USBWakeup), placed right after the core entries by sections.ld. Only
// linked when something references stm32f1_irq_vectors (ota_firmware_image does it for every
// application). All point to IRQ_Handler (weak, startup.cpp): the port enables no interrupt.
#include <cstddef>
#include <utility>

extern "C" void IRQ_Handler();

namespace {

using Handler = void (*)();
constexpr std::size_t kIrqLines = 43;

struct IrqVectors {
  Handler irq[kIrqLines];
};
static_assert(sizeof(IrqVectors) == kIrqLines * 4);

template <std::size_t... I>
constexpr IrqVectors make_table(std::index_sequence<I...>) {
  return {{((void)I, IRQ_Handler)...}};
}

}  // namespace

extern "C" [[gnu::section(".isr_vector_irq"), gnu::used]] const IrqVectors stm32f1_irq_vectors =
    make_table(std::make_index_sequence<kIrqLines>{});

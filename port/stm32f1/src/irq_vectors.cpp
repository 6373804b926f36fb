// The 43 device entries of the vector table of the medium-density F103 (irq_names.hpp), placed
// right after the core entries by sections.ld. Only linked when something references
// stm32f1_irq_vectors (ota_firmware_image does it for every application; the bootloader has
// none). The port itself enables no interrupt; an application takes one over by defining its
// CMSIS-named handler, e.g. extern "C" void USART1_IRQHandler().
#include "irq_names.hpp"

#define OTA_DECLARE(name) void name();
extern "C" {
OTA_STM32F1_IRQS(OTA_DECLARE)
}
#undef OTA_DECLARE

namespace {

using Handler = void (*)();
constexpr int kIrqLines = 43;

struct IrqVectors {
  Handler irq[kIrqLines];
};
static_assert(sizeof(IrqVectors) == kIrqLines * 4);

}  // namespace

#define OTA_ENTRY(name) name,
extern "C" [[gnu::section(".isr_vector_irq"), gnu::used]] const IrqVectors stm32f1_irq_vectors = {
    {OTA_STM32F1_IRQS(OTA_ENTRY)}};
#undef OTA_ENTRY

// Compiled with -S only (never linked): prints the flash and RAM regions of one image, taken
// from core/include/ota/layout.hpp, as marker lines of the assembly output; gen_memory.cmake turns
// them into the MEMORY block of the linker script (the kernel's asm-offsets trick).
// -DOTA_LD_LAYOUT=kInternalLayout|kExternalLayout  -DOTA_LD_IMAGE=bootloader|app
#include "ota/layout.hpp"

#define OTA_EMIT(name, value) asm volatile("\n@LD " name " %c0" ::"i"(value))

void ota_emit_regions() {
  constexpr const ota::Layout& layout = ota::OTA_LD_LAYOUT;
  constexpr ota::Region flash = layout.OTA_LD_IMAGE;
  static_assert(flash.medium == ota::Medium::internal, "images run from internal flash");
  OTA_EMIT("FLASH_ORIGIN", flash.base);
  OTA_EMIT("FLASH_LENGTH", flash.size);
  OTA_EMIT("RAM_ORIGIN", ota::kSramBase);
  OTA_EMIT("RAM_LENGTH", ota::kSramSize);
  OTA_EMIT("IMAGE_LIMIT", layout.image_limit);  // applications only: what an update may carry
}

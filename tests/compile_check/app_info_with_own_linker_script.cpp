// Linked by the app_info_links_with_own_linker_script_* tests (tests/CMakeLists.txt) with the
// ARM toolchain against a linker script of a user's own (own_linker_script.ld), which keeps the
// app info as docs/client-library.md said it must ("with your own linker script:
// KEEP(*(.ota_app_info)) in a flash section") and defines none of this tree's symbols. The
// document adds that an image without the end record "is not checked for length": such a
// project must still link.
#include "ota/app_info.hpp"

OTA_APP_INFO(1, "my-device");

extern "C" [[noreturn]] void Reset_Handler() {
  for (;;) {
  }
}
extern "C" [[gnu::used, gnu::section(".isr_vector")]] const void* const g_vectors[2] = {
    reinterpret_cast<const void*>(0x20005000), reinterpret_cast<const void*>(&Reset_Handler)};

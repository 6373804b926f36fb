// memcpy and memset as plain byte loops: ~40 bytes instead of newlib's ~400, which matters in the
// bootloader; nothing here copies enough for speed to matter. Compiled without LTO and without
// loop-to-call transformation (CMakeLists.txt), or GCC would turn these loops into calls to
// themselves.
#include <cstddef>
#include <cstdint>

extern "C" void* memcpy(void* dst, const void* src, std::size_t n) {
  auto* d = static_cast<std::uint8_t*>(dst);
  const auto* s = static_cast<const std::uint8_t*>(src);
  while (n--) *d++ = *s++;
  return dst;
}

extern "C" void* memset(void* dst, int value, std::size_t n) {
  auto* d = static_cast<std::uint8_t*>(dst);
  while (n--) *d++ = static_cast<std::uint8_t>(value);
  return dst;
}

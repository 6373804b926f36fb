// Little-endian field access for wire and flash formats. Every multi-byte field the project
// stores or sends is little-endian, read and written through these, never through a cast; the
// exceptions are the structs whose memory layout is their wire layout (Hello, Start, the
// journal record), copied whole under static_asserts on their offsets and on the byte order.
#pragma once

#include <cstdint>

namespace ota {

constexpr void put_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
constexpr void put_u32(std::uint8_t* p, std::uint32_t v) {
  put_u16(p, static_cast<std::uint16_t>(v));
  put_u16(p + 2, static_cast<std::uint16_t>(v >> 16));
}
constexpr std::uint16_t get_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
// Always inlined: GCC folds the four byte loads into one word load only after it has decided
// against inlining the byte form, and a call then costs more than the load (firmware images).
[[gnu::always_inline]] constexpr std::uint32_t get_u32(const std::uint8_t* p) {
  return get_u16(p) | (static_cast<std::uint32_t>(get_u16(p + 2)) << 16);
}

// n bytes of a and b are equal (no libc memcmp in the freestanding images).
constexpr bool bytes_equal(const std::uint8_t* a, const std::uint8_t* b, std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace ota

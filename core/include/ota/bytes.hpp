// Little-endian field access for wire and flash formats. Every multi-byte field the project
// stores or sends is little-endian, read and written through these, never through a cast; the
// exceptions are the structs whose memory layout is their wire layout (Hello, Start, the
// journal record), copied whole under static_asserts on their offsets and on the byte order.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ota {

// At run time on a little-endian machine (the Cortex-M3 and the hosts) a field is copied with
// std::memcpy, which compiles to one load or store (unaligned ones are fine on both): GCC for the
// Cortex-M3 merges byte loads into a word load but not byte stores into a word store, and it
// inlines the byte form of a load only when it happens to see it as small. In constant
// evaluation, and on any other machine, byte by byte.
constexpr bool copy_as_word() {
  return std::endian::native == std::endian::little && !std::is_constant_evaluated();
}

constexpr void put_u16(std::uint8_t* p, std::uint16_t v) {
  if (copy_as_word()) {
    std::memcpy(p, &v, sizeof v);
    return;
  }
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
constexpr void put_u32(std::uint8_t* p, std::uint32_t v) {
  if (copy_as_word()) {
    std::memcpy(p, &v, sizeof v);
    return;
  }
  put_u16(p, static_cast<std::uint16_t>(v));
  put_u16(p + 2, static_cast<std::uint16_t>(v >> 16));
}
constexpr std::uint16_t get_u16(const std::uint8_t* p) {
  if (copy_as_word()) {
    std::uint16_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
constexpr std::uint32_t get_u32(const std::uint8_t* p) {
  if (copy_as_word()) {
    std::uint32_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  return get_u16(p) | (static_cast<std::uint32_t>(get_u16(p + 2)) << 16);
}

// n bytes of a and b are equal (no libc memcmp in the freestanding images).
constexpr bool bytes_equal(const std::uint8_t* a, const std::uint8_t* b, std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace ota

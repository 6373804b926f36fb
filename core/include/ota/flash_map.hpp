// Binds a layout to the flash devices of one board: the internal flash always, a W25Q for the
// external layout. Region-relative helpers used by the flag store, the journal, the installer
// and the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ota/flash.hpp"
#include "ota/layout.hpp"

namespace ota {

#ifndef OTA_FIXED_LAYOUT
// The external flash of a map made without one (`FlashMap{kExternalLayout, internal, nullptr}`):
// every call fails, as a W25Q that does not answer, so a client says HELLO and refuses START
// with flash_error instead of following a null pointer. (A firmware image cannot make such a map.)
Flash& absent_flash();
#endif

// A firmware image is built for one layout: its build defines OTA_FIXED_LAYOUT (core/CMakeLists.txt)
// and the layout becomes a compile-time constant, so every region address and unit size the core
// computes folds into an immediate, and the map's constructor says what the layout needs:
// `FlashMap{internal}` for the internal layout, `FlashMap{internal, w25q}` for the external one
// (a reference: the W25Q cannot be left out). The host tools and tests pick a layout at run time.
struct FlashMap {
#ifdef OTA_FIXED_LAYOUT
  static constexpr const Layout& layout = OTA_FIXED_LAYOUT;
  static constexpr bool kStagesInternally = layout.staging.medium == Medium::internal;

  template <bool B = kStagesInternally, std::enable_if_t<B, int> = 0>
  constexpr explicit FlashMap(Flash& in) : internal(in) {}
  template <bool B = !kStagesInternally, std::enable_if_t<B, int> = 0>
  constexpr FlashMap(Flash& in, Flash& w25q) : internal(in), external(&w25q) {}

  Flash& device(const Region& r) const { return r.medium == Medium::internal ? internal : *external; }
#else
  FlashMap(const Layout& l, Flash& in, Flash* ext) : layout(l), internal(in), external(ext) {}

  const Layout& layout;
  Flash& device(const Region& r) const {
    if (r.medium == Medium::internal) return internal;
    return external ? *external : absent_flash();
  }
#endif
  Flash& internal;
  Flash* external = nullptr;  // the external layout's W25Q
};

// CRC-32 of len bytes of a flash device from addr, continuing from crc (0 to start, or the CRC-32
// of the bytes before them); false if a read failed.
bool crc32_of(Flash& dev, std::uint32_t addr, std::uint32_t len, std::uint32_t& crc);

// True if every byte of [addr, addr+len) reads 0xFF.
bool is_erased(Flash& dev, std::uint32_t addr, std::uint32_t len);

// The first two vector table words of an image of `size` bytes (at most the application area)
// fit this layout: initial stack pointer inside SRAM (word aligned), reset handler a Thumb address
// inside the image, past the two words. A handler beyond the image's end would run whatever the
// rest of the application area holds (erased flash, old code): such an image is not installed.
constexpr bool vector_table_sane(const Layout& l, std::uint32_t sp, std::uint32_t reset, std::uint32_t size) {
  return sp > kSramBase && sp <= kSramBase + kSramSize && sp % 4 == 0 && (reset & 1u) != 0 &&
         (reset & ~1u) >= l.app.base + 8 && (reset & ~1u) < l.app.base + size && size <= l.app.size;
}

}  // namespace ota

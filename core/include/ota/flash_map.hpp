// Binds a layout to the flash devices of one board: the internal flash always, a W25Q for the
// external layout. Region-relative helpers used by the flag store, the journal, the installer
// and the client.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/flash.hpp"
#include "ota/layout.hpp"

namespace ota {

// A firmware image is built for one layout: its build defines OTA_FIXED_LAYOUT (core/CMakeLists.txt)
// and the layout becomes a compile-time constant, so every region address and unit size the core
// computes folds into an immediate. The host tools and tests pick a layout at run time.
struct FlashMap {
#ifdef OTA_FIXED_LAYOUT
  static constexpr const Layout& layout = OTA_FIXED_LAYOUT;
#else
  const Layout& layout;
#endif
  Flash& internal;
  Flash* external = nullptr;  // required by the external layout

  Flash& device(const Region& r) const {
    return r.medium == Medium::internal ? internal : *external;
  }
  bool ready() const {
    return layout.staging.medium == Medium::internal || external != nullptr;
  }
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

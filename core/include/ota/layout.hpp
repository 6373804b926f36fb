// The two flash layouts of the spec, as data. Everything that depends on where things live reads
// it from here: the bootloader, the client, the linker scripts (through generated symbols), the
// host tools and the emulator.
#pragma once

#include <cstdint>

namespace ota {

enum class Medium : std::uint8_t { internal = 0, external = 1 };

struct Region {
  Medium medium;
  std::uint32_t base;
  std::uint32_t size;
  constexpr std::uint32_t end() const { return base + size; }
  constexpr bool contains(std::uint32_t addr) const { return addr >= base && addr - base < size; }
  constexpr bool overlaps(const Region& o) const {
    return medium == o.medium && base < o.end() && o.base < end();
  }
};

enum class LayoutId : std::uint8_t { internal = 1, external = 2 };

struct Layout {
  LayoutId id;
  const char* name;
  Region bootloader;
  Region app;
  Region staging;          // the image is stored from staging.base on
  Region flags;            // the flag page/sector: bytes 0-11 hold "OTA-START" / "OTA-SUCCESS"
  std::uint32_t staging_unit;  // erase unit of the staging medium (1 KB page, 4 KB sector)
  std::uint32_t image_limit;   // largest update image
  // The last erase unit of the staging area lies beyond image_limit; it holds the download
  // journal (which image is being received, how far it got, whether it was installed).
  constexpr Region journal() const {
    return Region{staging.medium, staging.end() - staging_unit, staging_unit};
  }
};

// STM32F103C8 (medium density): 64 KB flash in 1 KB pages, 20 KB SRAM.
inline constexpr std::uint32_t kFlashBase = 0x08000000;
inline constexpr std::uint32_t kFlashSize = 64 * 1024;
inline constexpr std::uint32_t kFlashPage = 1024;
inline constexpr std::uint32_t kSramBase = 0x20000000;
inline constexpr std::uint32_t kSramSize = 20 * 1024;
// VTOR: on the STM32F10x its TBLOFF field is bits 29:9 (PM0056 §4.4.4), so the application's
// vector table, at the start of its area, must be 512-byte aligned.
inline constexpr std::uint32_t kVectorTableAlign = 512;
// W25Q: only block 0 (64 KB = 16 sectors of 4 KB) is used.
inline constexpr std::uint32_t kW25qUsed = 64 * 1024;
inline constexpr std::uint32_t kW25qSector = 4096;
inline constexpr std::uint32_t kW25qPage = 256;

// The spec's table gives the internal app/staging boundary as 0x08008BFF/0x08008C00, which is
// the start of page 35 and contradicts its own page numbers (8-35, 36-62) and sizes (28 KB,
// 27 KB). Flash is erased in pages, so the pages and sizes stand: staging starts at page 36,
// 0x08009000. See docs/layouts.md.
inline constexpr Layout kInternalLayout{
    LayoutId::internal,
    "internal",
    {Medium::internal, 0x08000000, 8 * 1024},   // pages 0-7
    {Medium::internal, 0x08002000, 28 * 1024},  // pages 8-35  (0x08002000-0x08008FFF)
    {Medium::internal, 0x08009000, 27 * 1024},  // pages 36-62 (0x08009000-0x0800FBFF)
    {Medium::internal, 0x0800FC00, 1 * 1024},   // page 63
    kFlashPage,
    26 * 1024,
};

inline constexpr Layout kExternalLayout{
    LayoutId::external,
    "external",
    {Medium::internal, 0x08000000, 8 * 1024},   // pages 0-7
    {Medium::internal, 0x08002000, 56 * 1024},  // pages 8-63
    {Medium::external, 0x000000, 60 * 1024},    // W25Q sectors 0-14
    {Medium::external, 0x00F000, 4 * 1024},     // W25Q sector 15
    kW25qSector,
    56 * 1024,
};

constexpr const Layout* layout_by_id(LayoutId id) {
  return id == LayoutId::internal ? &kInternalLayout
         : id == LayoutId::external ? &kExternalLayout
                                    : nullptr;
}

// ---- compile-time checks: regions fit their chip, do not overlap, and are aligned -----------
constexpr bool fits(const Region& r) {
  return r.medium == Medium::internal
             ? r.base >= kFlashBase && r.end() <= kFlashBase + kFlashSize
             : r.end() <= kW25qUsed;
}
constexpr bool aligned(const Region& r, std::uint32_t unit) {
  return r.base % unit == 0 && r.size % unit == 0;
}
constexpr std::uint32_t unit_of(const Region& r) {
  return r.medium == Medium::internal ? kFlashPage : kW25qSector;
}
constexpr bool valid(const Layout& l) {
  const Region rs[] = {l.bootloader, l.app, l.staging, l.flags};
  for (const Region& a : rs) {
    if (!fits(a) || !aligned(a, unit_of(a)) || a.size == 0) return false;
    for (const Region& b : rs)
      if (&a != &b && a.overlaps(b)) return false;
  }
  return l.bootloader.base == kFlashBase && l.bootloader.medium == Medium::internal &&
         l.app.medium == Medium::internal && l.app.base == l.bootloader.end() &&
         l.app.base % kVectorTableAlign == 0 &&
         l.staging_unit == unit_of(l.staging) && l.flags.size >= 12 &&
         l.image_limit <= l.app.size && l.image_limit <= l.journal().base - l.staging.base;
}
static_assert(valid(kInternalLayout), "internal layout breaks the rules");
static_assert(valid(kExternalLayout), "external layout breaks the rules");
static_assert(kInternalLayout.journal().base == 0x0800F800, "journal = page 62");
static_assert(kExternalLayout.journal().base == 0x00E000, "journal = sector 14");

}  // namespace ota

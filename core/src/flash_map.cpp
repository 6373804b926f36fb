#include "ota/flash_map.hpp"

#include "ota/crc.hpp"

namespace ota {

namespace {
constexpr std::uint32_t kChunk = 128;
}

#ifndef OTA_FIXED_LAYOUT
namespace {
class AbsentFlash final : public Flash {
 public:
  constexpr AbsentFlash() : Flash(FlashGeometry{0, 0, 4096, 1}) {}
  bool read(std::uint32_t, void*, std::size_t) override { return false; }
  bool write(std::uint32_t, const void*, std::size_t) override { return false; }
  bool erase(std::uint32_t) override { return false; }
};
}  // namespace

Flash& absent_flash() {
  static constinit AbsentFlash absent;
  return absent;
}
#endif

bool crc32_of(Flash& dev, std::uint32_t addr, std::uint32_t len, std::uint32_t& crc) {
  std::uint8_t buf[kChunk];
  while (len) {
    const std::uint32_t n = len < kChunk ? len : kChunk;
    if (!dev.read(addr, buf, n)) return false;
    crc = crc32(buf, n, crc);
    addr += n;
    len -= n;
  }
  return true;
}

bool is_erased(Flash& dev, std::uint32_t addr, std::uint32_t len) {
  std::uint8_t buf[kChunk];
  while (len) {
    const std::uint32_t n = len < kChunk ? len : kChunk;
    if (!dev.read(addr, buf, n)) return false;
    for (std::uint32_t i = 0; i < n; ++i)
      if (buf[i] != 0xFF) return false;
    addr += n;
    len -= n;
  }
  return true;
}

}  // namespace ota

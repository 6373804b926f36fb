#include "bluepill/sysmem.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {

bool SysMem::byte_at(std::uint32_t off, std::uint8_t& out) const {
  if (off >= 0x7E0 && off < 0x7E2) {  // F_SIZE: 64 (KB)
    out = off == 0x7E0 ? 64 : 0;
    return true;
  }
  if (off >= 0x7E8 && off < 0x7F4) {
    const std::uint32_t i = off - 0x7E8;
    out = static_cast<std::uint8_t>(uid_[i / 4] >> (8 * (i % 4)));
    return true;
  }
  if (off >= 0x800 && off < 0x810) {  // option bytes: RDP=0xA5, USER=0xFF, Data/WRP = 0xFF
    static constexpr std::uint8_t kOpt[16] = {0xA5, 0x5A, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00,
                                              0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00};
    out = kOpt[off - 0x800];
    return true;
  }
  return false;
}

std::uint32_t SysMem::read(std::uint32_t off, unsigned size) {
  std::uint32_t v = 0;
  for (unsigned i = 0; i < size; ++i) {
    std::uint8_t b = 0;
    if (!byte_at(off + i, b)) {
      error("read of " + where(off) + ": only F_SIZE, the unique ID and the option bytes are modelled");
      return 0;
    }
    v |= static_cast<std::uint32_t>(b) << (8 * i);
  }
  return v;
}

void SysMem::write(std::uint32_t off, unsigned, std::uint32_t value) {
  error("write of " + hex32(value) + " to read-only system memory " + where(off));
}

}  // namespace bluepill

// The STM32F103C8 internal flash (64 pages of 1 KB at 0x08000000) as an ota::Flash.
// Erase/program through the FLASH interface (PM0075): unlock, operate, wait BSY (bounded),
// check EOP/PGERR/WRPRTERR, relock. Pages below `writable_from` are refused: an application or
// a bootloader built on this driver cannot overwrite the bootloader.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/flash.hpp"
#include "ota/layout.hpp"

namespace stm32f1 {

class InternalFlash final : public ota::Flash {
 public:
  explicit constexpr InternalFlash(std::uint32_t writable_from)
      : ota::Flash({ota::kFlashBase, ota::kFlashSize, ota::kFlashPage, 2}),
        writable_from_(writable_from) {}

  bool read(std::uint32_t addr, void* dst, std::size_t len) override;
  // Half-words equal to 0xFFFF are not programmed, only checked to be erased; an odd tail is
  // padded with 0xFF. Every half-word is read back (the ota::Flash contract).
  bool write(std::uint32_t addr, const void* src, std::size_t len) override;
  bool erase(std::uint32_t addr) override;

  // Narrows (never widens) what may be written: an application keeps even its own area safe.
  void protect_below(std::uint32_t addr) {
    if (addr > writable_from_) writable_from_ = addr;
  }

 private:
  bool writable(std::uint32_t addr, std::size_t len) const {
    return addr >= writable_from_ && contains(addr, len);
  }
  // writable() for one page: contains() with the geometry this class always has, folded.
  bool page_writable(std::uint32_t addr) const {
    return addr >= writable_from_ && addr >= ota::kFlashBase &&
           addr - ota::kFlashBase <= ota::kFlashSize - ota::kFlashPage;
  }
  std::uint32_t writable_from_;
};

}  // namespace stm32f1

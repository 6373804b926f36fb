// The flash port contract: the only way the core touches non-volatile memory.
//
// A port implements Flash for each flash device it has (the STM32F1 internal flash, a W25Q on
// SPI, the simulated parts of the tests, ...). Addresses are absolute in the device's own space
// (0x08000000.. for the internal flash, 0x000000.. for a W25Q).
//
// Contract, stricter than any one chip so that core code that passes the simulator runs on all.
// Verification belongs to the port, once: a call returns true only when the flash reads back as
// asked, so the core never reads back what it just wrote.
//  - erase(addr): addr is aligned to erase_size; true only if the unit then reads all 0xFF.
//  - write(addr, data, len): addr is a multiple of write_size; len is any, a last partial write
//    unit is padded with 0xFF. Every write unit written must either read 0xFF..FF before
//    (erased), or be written with all-zero bytes (the STM32F1 lets 0x0000 be programmed over any
//    half-word; a NOR flash can always clear bits). Ports split writes that cross their own
//    program pages. True only if every byte then reads back as written.
//  - read(addr, dst, len): any alignment.
// Every call returns false on failure (programming error, verify mismatch, timeout, power lost in
// a simulation); the contents of the touched unit are then unknown.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ota {

struct FlashGeometry {
  std::uint32_t base;        // first address of the device
  std::uint32_t size;        // bytes
  std::uint32_t erase_size;  // smallest erasable unit (1 KB STM32F1 page, 4 KB W25Q sector)
  std::uint32_t write_size;  // program granule (2 bytes STM32F1, 1 byte W25Q)
};

class Flash {
 public:
  explicit constexpr Flash(FlashGeometry g) : geometry_(g) {}
  Flash(const Flash&) = delete;
  Flash& operator=(const Flash&) = delete;

  virtual bool read(std::uint32_t addr, void* dst, std::size_t len) = 0;
  virtual bool write(std::uint32_t addr, const void* src, std::size_t len) = 0;
  virtual bool erase(std::uint32_t addr) = 0;

  const FlashGeometry& geometry() const { return geometry_; }
  // len as a size_t: a host's 64-bit length is not truncated on its way here.
  bool contains(std::uint32_t addr, std::size_t len) const {
    return addr >= geometry_.base && len <= geometry_.size &&
           addr - geometry_.base <= geometry_.size - len;
  }

 protected:
  ~Flash() = default;

 private:
  FlashGeometry geometry_;
};

}  // namespace ota

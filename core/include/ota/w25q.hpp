// Portable driver for a Winbond W25Q-series SPI NOR flash (and the many parts that share its
// command set), as an ota::Flash over an ota::SpiBus.
//
// Geometry: base 0, `size` bytes (the layouts use block 0 = 64 KB), erase unit 4 KB sector,
// write unit 1 byte. Commands used (W25Q16JV datasheet, section 8):
//   0x06 Write Enable    sets WEL; page program and sector erase are ignored without it,
//                        and the chip clears WEL when either completes.
//   0x02 Page Program    address + 1..256 bytes; the address wraps INSIDE its 256-byte page,
//                        so write() splits at page boundaries. Only turns 1 bits into 0.
//   0x20 Sector Erase    4 KB, address inside the sector.
//   0x03 Read Data       address + any number of bytes.
//   0x05 Read Status 1   BUSY = bit 0, WEL = bit 1; repeated while /CS stays low. The only
//                        command the chip accepts while BUSY.
//   0x9F JEDEC ID        manufacturer, memory type, capacity (log2 of the size in bytes).
// write() and erase() read back what they did (the ota::Flash contract: true only if verified).
// Every wait for BUSY to clear reads the status register at most `poll_limit` times and then
// fails (returns false); nothing here can hang. A chip that is absent or unpowered reads 0xFF,
// i.e. BUSY forever, so every call fails after poll_limit status reads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/flash.hpp"
#include "ota/spi.hpp"

namespace ota {

class W25qFlash final : public Flash {
 public:
  static constexpr std::uint32_t kSectorSize = 4096;
  static constexpr std::uint32_t kPageSize = 256;

  // size: bytes of the chip this driver may touch, from address 0 (at most the chip's capacity).
  // poll_limit: status reads per wait before giving up (>= 1); size it for the slowest
  // operation, a 4 KB sector erase (400 ms max on the W25Q16JV).
  constexpr W25qFlash(SpiBus& spi, std::uint32_t size, std::uint32_t poll_limit)
      : Flash(FlashGeometry{0, size, kSectorSize, 1}), spi_(spi), poll_limit_(poll_limit) {}

  // Reads the JEDEC id (0xMMTTCC) into *jedec_id (may be null). True when a chip answered: the
  // manufacturer byte is neither 0x00 nor 0xFF, and its capacity code does not say it is
  // smaller than `size`. After a failed probe every read, write and erase fails at once instead
  // of polling a missing chip for poll_limit reads each time (which could starve a watchdog);
  // a later successful probe lifts that.
  bool probe(std::uint32_t* jedec_id);

  bool read(std::uint32_t addr, void* dst, std::size_t len) override;
  bool write(std::uint32_t addr, const void* src, std::size_t len) override;
  bool erase(std::uint32_t addr) override;

 private:
  bool wait_ready();
  bool write_enable();
  void begin(std::uint8_t op, std::uint32_t addr);  // selects, sends op + 24-bit address
  // Streams len bytes from addr into dst (if not null) and compares them with expect (if not
  // null; with 0xFF if both are null). True if the chip answered and nothing differed.
  bool stream(std::uint32_t addr, std::uint8_t* dst, const std::uint8_t* expect, std::uint32_t len);

  SpiBus& spi_;
  std::uint32_t poll_limit_;
  bool absent_ = false;  // the last probe found no usable chip
};

}  // namespace ota

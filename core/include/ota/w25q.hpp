// Portable driver for a Winbond W25Q-series SPI NOR flash (and the many parts that share its
// command set), as an ota::Flash over an ota::SpiBus.
//
// Geometry: base 0, `size` bytes (the layouts use block 0 = 64 KB), erase unit 4 KB sector,
// write unit 1 byte. Commands used (W25Q16JV datasheet, section 8):
//   0x06 Write Enable    sets WEL; page program and sector erase are ignored without it,
//                        and the chip clears WEL when either completes. Ignored itself for
//                        tPUW (up to 10 ms) after power-up.
//   0x02 Page Program    address + 1..256 bytes; the address wraps INSIDE its 256-byte page,
//                        so write() splits at page boundaries. Only turns 1 bits into 0.
//   0x20 Sector Erase    4 KB, address inside the sector.
//   0x03 Read Data       address + any number of bytes.
//   0x05 Read Status 1   BUSY = bit 0, WEL = bit 1; repeated while /CS stays low. With the
//                        other status reads and Suspend (0x75), the only commands the chip
//                        accepts while BUSY (datasheet 8.2.4).
//   0x9F JEDEC ID        manufacturer, memory type, capacity (log2 of the size in bytes).
//                        Parts above 16 MB are refused (4-byte address mode, see identify()).
//   0xAB Release Power-down  takes the chip out of the power-down state (0xB9), the only command
//                        it recognises there (0x05 included); /CS must then stay high for
//                        tRES1 (3 us). Ignored while BUSY and harmless when not powered down.
//                        An application may power the chip down to save current; an MCU reset
//                        does not wake it, so probe() sends it first.
//   0x7A Erase/Program Resume  resumes an erase or program suspended by 0x75 (SUS = 1); ignored
//                        unless SUS = 1 and BUSY = 0. While SUS is set the chip refuses every
//                        erase (and program, but outside an erase-suspended sector), and an MCU
//                        reset does not clear it: probe() sends it, after 0xAB, so that an
//                        operation an application suspended completes (0x66 + 0x99, the software
//                        reset, would abort it, corrupting its sector, and a running one too).
// write() and erase() read back what they did (the ota::Flash contract: true only if verified).
// Every wait for BUSY to clear reads the status register at most `poll_limit` times and then
// fails (returns false); nothing here can hang. A chip that is absent or unpowered reads 0xFF,
// i.e. BUSY forever, so every call fails after poll_limit status reads. A bus that failed
// (Bus::failed(): a transfer that timed out) fails every read, write and erase that used it: a
// read does not return what the buffer held before, a verify does not compare stale bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/flash.hpp"
#include "ota/spi.hpp"

namespace ota {

// Bus: anything with SpiBus's select() and transfer(). ota::W25qFlash takes the SpiBus interface
// (compiled once, in w25q.cpp); a firmware image passes its port's own bus class instead
// (stm32f1::Spi1), so that the driver's ~25 bus calls are direct calls: GCC cannot devirtualise
// calls through an interface, even with LTO, and the indirect calls cost the external bootloader
// about 120 bytes.
template <class Bus>
class BasicW25qFlash final : public Flash {
 public:
  static constexpr std::uint32_t kSectorSize = 4096;
  static constexpr std::uint32_t kPageSize = 256;

  // size: bytes of the chip this driver may touch, from address 0 (at most the chip's capacity).
  // poll_limit: status reads per wait before giving up (>= 1); size it for the slowest
  // operation, a 4 KB sector erase (400 ms max on the W25Q16JV).
  constexpr BasicW25qFlash(Bus& spi, std::uint32_t size, std::uint32_t poll_limit)
      : Flash(FlashGeometry{0, size, kSectorSize, 1}), spi_(spi), poll_limit_(poll_limit) {}

  // Wakes the chip from power-down, resumes an operation left suspended, waits for BUSY to clear
  // (an erase the MCU's reset did not stop, or the one resumed), then reads the JEDEC id (0xMMTTCC) into *jedec_id (may be null). True when a chip answered: the
  // manufacturer byte is neither 0x00 nor 0xFF, and its capacity code does not say it is
  // smaller than `size`. After a failed probe every read, write and erase first asks for the id
  // again (one short command, no status polling, which on a missing chip would take poll_limit
  // reads each time and could starve a watchdog) and fails at once if no chip answers: a chip
  // that comes back (a loose contact, a late supply) is used again without a reset.
  bool probe(std::uint32_t* jedec_id);

  bool read(std::uint32_t addr, void* dst, std::size_t len) override;
  bool write(std::uint32_t addr, const void* src, std::size_t len) override;
  bool erase(std::uint32_t addr) override;

 private:
  static constexpr std::uint8_t kWriteEnable = 0x06;
  static constexpr std::uint8_t kPageProgram = 0x02;
  static constexpr std::uint8_t kSectorErase = 0x20;
  static constexpr std::uint8_t kReadData = 0x03;
  static constexpr std::uint8_t kReadStatus1 = 0x05;
  static constexpr std::uint8_t kJedecId = 0x9F;
  static constexpr std::uint8_t kReleasePowerDown = 0xAB;
  static constexpr std::uint8_t kResume = 0x7A;
  // Bytes clocked with /CS high after 0xAB, which the chip ignores: tRES1 (3 us) at an SCK up to
  // 53 MHz, past the 50 MHz that 0x03 allows, so on any bus that can read the chip at all.
  static constexpr std::size_t kReleaseBytes = 20;
  static constexpr std::uint8_t kMaxCapacityCode = 24;  // 16 MB: all a 3-byte address reaches
  static constexpr std::uint8_t kBusy = 0x01;  // SR1 bit 0: program/erase/status write in progress
  static constexpr std::uint8_t kWel = 0x02;   // SR1 bit 1: write enable latch

  bool wait_ready();
  // The bus's verdict, for a bus that can fail (ota/spi.hpp). A transfer on a failed bus leaves
  // rx as it was: the status polls then keep the BUSY they started with and identify()'s zeroed
  // id fails, so only stream() needs to ask.
  bool bus_failed() {
    if constexpr (requires(Bus& b) { b.failed(); }) return spi_.failed();
    return false;
  }
  bool identify(std::uint32_t* jedec_id);  // the JEDEC id check of probe(), without waiting
  bool present() {
    if (absent_) absent_ = !identify(nullptr);
    return !absent_;
  }
  // What every read, write and erase checks first: a chip, and the range inside `size`.
  bool accessible(std::uint32_t addr, std::size_t len) { return present() && contains(addr, len); }
  bool write_enable();
  void command(std::uint8_t op);  // selects, sends op (the caller deselects)
  void begin(std::uint8_t op, std::uint32_t addr);  // selects, sends op + 24-bit address
  // Streams len bytes from addr into dst (if not null) and compares them with expect (if not
  // null; with 0xFF if both are null). True if the chip answered and nothing differed.
  bool stream(std::uint32_t addr, std::uint8_t* dst, const std::uint8_t* expect, std::uint32_t len);

  Bus& spi_;
  std::uint32_t poll_limit_;
  bool absent_ = false;  // the last probe found no usable chip
};

using W25qFlash = BasicW25qFlash<SpiBus>;

// ---- implementation (a template: in the header) ----------------------------------------------

template <class Bus>
void BasicW25qFlash<Bus>::command(std::uint8_t op) {
  spi_.select(true);
  spi_.transfer(&op, nullptr, 1);
}

template <class Bus>
void BasicW25qFlash<Bus>::begin(std::uint8_t op, std::uint32_t addr) {
  const std::uint8_t cmd[4] = {op, static_cast<std::uint8_t>(addr >> 16),
                               static_cast<std::uint8_t>(addr >> 8), static_cast<std::uint8_t>(addr)};
  spi_.select(true);
  spi_.transfer(cmd, nullptr, sizeof cmd);
}

// One 0x05 command, status bytes clocked out until BUSY reads 0 or the limit is reached.
template <class Bus>
bool BasicW25qFlash<Bus>::wait_ready() {
  std::uint8_t sr = kBusy;
  command(kReadStatus1);
  for (std::uint32_t n = 0; n < poll_limit_ && (sr & kBusy) != 0; ++n) spi_.transfer(nullptr, &sr, 1);
  spi_.select(false);
  return (sr & kBusy) == 0;
}

// Waits for the chip, sets WEL and checks that it took (a chip that ignored 0x06 would then
// silently ignore the program/erase too). For tPUW after its power-up (up to 10 ms) the chip
// ignores 0x06: a device that boots faster than that (the bootloader finishing an install after
// a power cut) sends it again until WEL sets, up to poll_limit / 16 times (several times tPUW
// for a poll_limit sized for a sector erase).
template <class Bus>
bool BasicW25qFlash<Bus>::write_enable() {
  // A bus that can tell whether the supply is fit for program and erase (write_allowed(), e.g.
  // from the MCU's voltage detector) vetoes them while it is not.
  if constexpr (requires(Bus& b) { b.write_allowed(); })
    if (!spi_.write_allowed()) return false;
  if (!wait_ready()) return false;
  const std::uint8_t tx[2] = {kReadStatus1, 0xFF};
  std::uint8_t rx[2] = {};
  for (std::uint32_t n = 0; n <= poll_limit_ / 16; ++n) {
    command(kWriteEnable);
    spi_.select(false);
    spi_.select(true);
    spi_.transfer(tx, rx, 2);
    spi_.select(false);
    if ((rx[1] & (kWel | kBusy)) == kWel) return true;
  }
  return false;
}

template <class Bus>
bool BasicW25qFlash<Bus>::stream(std::uint32_t addr, std::uint8_t* dst, const std::uint8_t* expect,
                       std::uint32_t len) {
  if (!wait_ready()) return false;  // a read issued while BUSY would be ignored
  begin(kReadData, addr);
  bool same = true;
  if (dst) spi_.transfer(nullptr, dst, len);  // one transfer: a port may use DMA for it
  for (std::uint32_t i = 0; !dst && i < len; ++i) {
    std::uint8_t b;
    spi_.transfer(nullptr, &b, 1);
    same = same && b == (expect ? expect[i] : 0xFF);
  }
  spi_.select(false);
  return same && !bus_failed();
}

template <class Bus>
bool BasicW25qFlash<Bus>::probe(std::uint32_t* jedec_id) {
  absent_ = true;
  command(kReleasePowerDown);
  spi_.select(false);
  spi_.transfer(nullptr, nullptr, kReleaseBytes);  // /CS high for tRES1
  command(kResume);
  spi_.select(false);
  if (!wait_ready()) return false;  // 0x9F is ignored while an erase is still running
  absent_ = !identify(jedec_id);
  return !absent_;
}

template <class Bus>
bool BasicW25qFlash<Bus>::identify(std::uint32_t* jedec_id) {
  const std::uint8_t tx[4] = {kJedecId, 0xFF, 0xFF, 0xFF};
  std::uint8_t rx[4] = {};
  spi_.select(true);
  spi_.transfer(tx, rx, 4);
  spi_.select(false);
  const std::uint32_t id = std::uint32_t{rx[1]} << 16 | std::uint32_t{rx[2]} << 8 | rx[3];
  if (jedec_id != nullptr) *jedec_id = id;
  const std::uint8_t capacity = rx[3];  // log2(bytes) on Winbond and compatible parts
  if (rx[1] == 0x00 || rx[1] == 0xFF) return false;
  // Parts above 16 MB (W25Q256 and up, code 0x19+) are refused: they may power up in 4-byte
  // address mode (their ADP bit), or be left there by an application (0xB7; a reset does not
  // undo it), and a 3-byte page program would then land elsewhere in the chip.
  return capacity <= kMaxCapacityCode && (std::uint32_t{1} << capacity) >= geometry().size;
}

template <class Bus>
bool BasicW25qFlash<Bus>::read(std::uint32_t addr, void* dst, std::size_t len) {
  if (!accessible(addr, len)) return false;
  return len == 0 || stream(addr, static_cast<std::uint8_t*>(dst), nullptr, static_cast<std::uint32_t>(len));
}

template <class Bus>
bool BasicW25qFlash<Bus>::write(std::uint32_t addr, const void* src, std::size_t len) {
  if (!accessible(addr, len)) return false;
  const auto* p = static_cast<const std::uint8_t*>(src);
  while (len > 0) {
    // The chip wraps inside its 256-byte page: never send past the end of the page.
    std::size_t chunk = kPageSize - (addr % kPageSize);
    if (chunk > len) chunk = len;
    if (!write_enable()) return false;
    begin(kPageProgram, addr);
    spi_.transfer(p, nullptr, chunk);
    spi_.select(false);  // the program starts on the rising edge of /CS
    if (!stream(addr, nullptr, p, static_cast<std::uint32_t>(chunk))) return false;  // verify
    addr += static_cast<std::uint32_t>(chunk);
    p += chunk;
    len -= chunk;
  }
  return true;
}

template <class Bus>
bool BasicW25qFlash<Bus>::erase(std::uint32_t addr) {
  if (!accessible(addr, kSectorSize) || addr % kSectorSize != 0) return false;
  if (!write_enable()) return false;
  begin(kSectorErase, addr);
  spi_.select(false);  // the erase starts on the rising edge of /CS
  return stream(addr, nullptr, nullptr, kSectorSize);  // blank check
}

// Compiled once, in w25q.cpp, for the interface.
extern template class BasicW25qFlash<SpiBus>;

}  // namespace ota

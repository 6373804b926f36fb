// The STM32F103C8 internal flash (medium density), stricter than silicon.
//
// PM0075 (STM32F10xxx Flash programming manual) 2.3.3 programming, 2.3.4 erase; RM0008 3.3.3:
//  - 64 KB at 0x08000000, 64 pages of 1 KB; erased flash reads 0xFF.
//  - Programming is by half-word at a half-word aligned address. Programming a half-word that does
//    not read 0xFFFF is refused with PGERR (FLASH_SR bit 2) and leaves it unchanged, except that
//    0x0000 may be written over any value ("the location is correctly programmed to 0x0000").
//  - A page erase (PER) clears a whole 1 KB page to 0xFF; its address selects the page. The sim
//    demands the page's first address.
//
// Two faces:
//  - ota::Flash (read/write/erase) for the core under test: each write() or erase() call is one
//    power-supply operation (even an empty or invalid one), which may be cut before it or torn
//    (see sim/power.hpp). A write programs half-word by half-word and stops at the first PGERR.
//  - Primitives for the board emulator's FLASH controller: program_halfword(), erase_page(),
//    tear_program(), tear_erase(). They do not consult the power supply (the emulator owns time and
//    power) but do count violations.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>

#include "ota/flash.hpp"
#include "sim/power.hpp"
#include "sim/stored_memory.hpp"

namespace sim {

class InternalFlash final : public ota::Flash, public StoredMemory {
 public:
  static constexpr std::uint32_t kBase = 0x08000000;
  static constexpr std::uint32_t kSize = 64 * 1024;
  static constexpr std::uint32_t kPage = 1024;

  enum class Program : std::uint8_t {
    ok,
    pgerr,        // the half-word did not read 0xFFFF and the value is not 0x0000: unchanged
    misaligned,   // odd address or outside the flash: nothing happens
  };

  explicit InternalFlash(PowerSupply& power);  // contents all 0xFF

  // ota::Flash. read: any alignment. write: addr even, an odd last byte padded with 0xFF. erase:
  // addr on a page boundary. write and erase succeed only as a whole, so they read back as asked.
  bool read(std::uint32_t addr, void* dst, std::size_t len) override;
  bool write(std::uint32_t addr, const void* src, std::size_t len) override;
  bool erase(std::uint32_t addr) override;

  // Primitives (no power supply involved). addr is absolute (0x08000000..).
  Program program_halfword(std::uint32_t addr, std::uint16_t value);
  bool erase_page(std::uint32_t addr);  // false (and a violation) unless a page's first address
  // Power lost while programming: each bit that should go 1 -> 0 randomly does or does not.
  // Nothing happens where program_halfword() would not program (PGERR, misaligned).
  void tear_program(std::uint32_t addr, std::uint16_t value, std::mt19937_64& rng);
  // Power lost while erasing: each 0 bit of the page randomly becomes 1 or stays 0.
  void tear_erase(std::uint32_t addr, std::mt19937_64& rng);
  // How far a torn operation gets: each bit it should change does so with odds 1 in `one_in`
  // (2 by default; 32 is an operation cut early, which leaves most of the old contents, a vector
  // table among them).
  void set_tear_odds(std::uint32_t one_in) { tear_one_in_ = one_in; }

  // bytes(), load()/save() of the raw 64 KB image, violations(): StoredMemory.

 private:
  std::uint16_t halfword(std::uint32_t offset) const;
  void set_halfword(std::uint32_t offset, std::uint16_t value);
  Program check_program(std::uint32_t addr, std::uint16_t value);

  std::uint16_t tear_mask(std::mt19937_64& rng) const;  // bits set with odds 1 in tear_one_in_

  PowerSupply& power_;
  std::uint32_t tear_one_in_ = 2;
};

}  // namespace sim

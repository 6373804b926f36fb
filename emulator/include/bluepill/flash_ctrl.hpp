// The FLASH program/erase controller, FPEC (RM0008 section 3.3.3, PM0075), in front of
// sim::InternalFlash (the array and its rules).
//
//  - KEYR: 0x45670123 then 0xCDEF89AB unlocks CR; any other sequence locks the FPEC until the
//    next reset (reported). CR.LOCK=1 locks again. CR writes while locked are reported.
//  - PG: a half-word write to the flash programs it; BSY for tPROG (40 / 52.5 / 70 us), then EOP.
//    A half-word that is not 0xFFFF (unless 0x0000 is written) is refused with PGERR. Byte or
//    word writes, writes without PG, writes while PER/MER is set: reported (bus error on silicon).
//  - PER + AR + STRT erases a page, MER + STRT all of them: BSY for tERASE (20..40 ms), then EOP.
//  - The CPU stalls while an operation runs if it executes from flash (the board advances time).
//  - A power cut during an operation tears it: a torn half-word or page (sim::InternalFlash).
//  - Config::write_protect: programming/erasing a protected page sets WRPRTERR (reported).
//  - Config::worn_pages: an erase of a worn page ends with EOP and no error, as any other, but
//    leaves bits programmed (erase_worn_page): only a read-back sees it.
//  - ACR (latency, prefetch), OBR (no read-out protection) and WRPR.
#pragma once

#include <random>

#include "bluepill/peripheral.hpp"
#include "bluepill/time.hpp"

namespace bluepill {

class FlashCtrl final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 4; }
  explicit FlashCtrl(Chip& chip) : WordRegisters(chip, "FLASH", 0x40022000, 0x400) {}
  void reset() override;

  // A CPU or DMA store into the flash address space (absolute 0x08000000.. address).
  void store(std::uint32_t addr, unsigned size, std::uint32_t value);
  bool busy() const { return op_ != Op::none; }
  Cycles busy_until() const { return done_at_; }
  std::uint32_t latency() const { return acr_ & 7; }
  bool half_cycle() const { return (acr_ & 0x08) != 0; }  // HLFCYA
  bool prefetch() const { return (acr_ & 0x10) != 0; }    // PRFTBE
  // A worn page's erase (Config::worn_pages) leaves these bits of the words at page offsets
  // 0x000, 0x100, 0x200 and 0x300 as they were: a 0 there stays 0.
  static constexpr std::uint32_t kWornBits = 0x0F0F0F0F;
  static constexpr std::uint32_t kWornStride = 0x100;
  // Power is lost now: an operation in progress is torn.
  void power_cut(std::mt19937_64& rng);

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  bool hsi_running(const char* what, std::uint32_t addr);  // reports the operation if not
  enum class Op : std::uint8_t { none, program, erase, mass_erase };
  void begin(Op op, std::uint32_t addr, std::uint16_t value, Cycles duration);
  void complete();
  void update_irq();
  bool protected_page(std::uint32_t addr) const;
  bool worn_page(std::uint32_t addr) const;
  void erase_page(std::uint32_t addr);  // as a good or a worn page erases

  std::uint32_t acr_ = 0x30, sr_ = 0, cr_ = 0x80, ar_ = 0;
  int key_state_ = 0;   // 0: locked, waiting for KEY1; 1: KEY1 seen; 2: unlocked
  bool key_dead_ = false;  // wrong sequence: locked until reset
  Op op_ = Op::none;
  std::uint32_t op_addr_ = 0;
  std::uint16_t op_value_ = 0;
  Cycles done_at_ = 0;
  Scheduler::Id event_ = 0;
};

}  // namespace bluepill

// A Winbond W25Q SPI NOR flash at SPI command level, stricter than silicon. The W25qFlash driver
// talks to it in the tests; the board emulator attaches it to its SPI1 model.
//
// Facts modelled (W25Q16JV datasheet: status registers, instruction descriptions, AC characteristics):
//  - 0x9F JEDEC id: 0xEF (Winbond), 0x40, capacity code = log2(bytes). 0xAB returns the device id
//    (capacity code - 1) after 3 dummy bytes.
//  - 0x05 status register 1: BUSY (bit 0) while a program/erase runs, WEL (bit 1). Repeats while
//    /CS stays low. The only command accepted while BUSY; others are ignored (output Hi-Z, 0xFF),
//    0xAB silently (the datasheet says it is ignored then), the rest as violations.
//  - 0xB9 power-down (entered at once here; silicon takes tDP, 3 us): then only 0xAB is
//    recognised, everything else, 0x05 included, is ignored with DO Hi-Z (0xFF), as a violation.
//    0xAB releases it on /CS rising; /CS must then stay high for tRES1 (3 us on set_timing()'s
//    clock) before the next command, or that command is ignored, as a violation. The chip
//    always powers up out of power-down, and an MCU reset alone does not take it out.
//  - 0x75 erase/program suspend: accepted only while a 0x20 or 0x02 runs (BUSY = 1, SUS = 0),
//    ignored otherwise. SUS (status register 2 bit 7, read with 0x35) sets at once, BUSY clears
//    within tSUS (20 us). While suspended, 0x20 is not allowed, nor 0x02 after a program
//    suspend or into the erase-suspended sector: not executed, as violations. 0x7A
//    resumes it (SUS = 1 and BUSY = 0, else ignored, silently): SUS clears, BUSY sets for the
//    time the operation had left. SUS is volatile: a power cycle clears it, tearing the suspended
//    operation; an MCU reset does not. (W25Q32BV/W25Q40BL datasheets, 75h/7Ah; the JV parts
//    are the same.) Contents show the suspended operation as complete, as for one in progress.
//  - 0x06 sets WEL, 0x04 clears it. 0x02 and 0x20 are ignored unless WEL is set; WEL clears when
//    the operation completes. They execute on the rising edge of /CS, and only if /CS rises after
//    a whole command: a 0x20 with exactly 3 address bytes, a 0x02 with 3 address bytes and at
//    least one data byte.
//  - 0x02 page program: data bytes go to consecutive addresses that WRAP inside the 256-byte
//    page (more than 256 bytes: the last 256 count). Programming only turns 1 bits into 0.
//  - 0x20 erases the 4 KB sector holding the address to 0xFF.
//  - Write protection (protect()): 0x02 and 0x20 inside the protected range are not executed.
//  - 0x03 read: 3 address bytes, then any number of bytes, continuing across the chip (wrapping
//    from the last address to 0).
//  - tPP page program 3 ms max, tSE 4 KB sector erase 45 ms typ / 400 ms max (kW25qTypical uses
//    0.7 ms for tPP, the W25Q-JV family's figure; some revisions give 0.4 ms).
// Stricter than silicon: each of these is counted in violations() (the command still behaves as
// the silicon does): a command while BUSY other than 0x05, program/erase without WEL, /CS rising
// in the middle of a command, an unknown command, a page program that wraps inside its page, data
// sent with /CS high (clocks of 0xFF with /CS high are a driver's way to wait, and silicon ignores
// them: not counted), and programming a byte that is neither erased (0xFF) nor programmed to
// 0x00 (the ota::Flash contract; the chip itself would AND the bits).
//
// Power-up: for tPUW after VCC passes the write-inhibit threshold the chip ignores 0x06 (so WEL
// stays 0 and every program and erase is refused); power_up() starts that window on the clock
// of set_timing() (the W25Q16 datasheets give tPUW up to 10 ms). Not a violation: silicon ignores
// the command silently, so a driver must check WEL (and may retry) before it programs.
// Power: each program or erase command executed on /CS rising is one PowerSupply operation, which
// may be cut before it or torn (bits that should change randomly do or do not), see sim/power.hpp.
// While the power is gone the chip does nothing and its output reads 0xFF. A cut clears WEL.
// Timing: by default operations complete at once. With set_timing() BUSY stays set for the given
// duration of virtual time; power_cut() during that time tears the operation in progress.
// Contents (bytes(), save()) show an operation in progress as already complete.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ota/spi.hpp"
#include "sim/power.hpp"
#include "sim/stored_memory.hpp"
#include "sim/violations.hpp"

namespace sim {

struct W25qPart {
  std::uint32_t jedec_id;
  std::uint32_t capacity;  // bytes, 2^(jedec_id & 0xFF)
};
inline constexpr W25qPart kW25Q16JV{0xEF4015, 2u << 20};
inline constexpr W25qPart kW25Q32JV{0xEF4016, 4u << 20};
inline constexpr W25qPart kW25Q64JV{0xEF4017, 8u << 20};
inline constexpr W25qPart kW25Q128JV{0xEF4018, 16u << 20};

struct W25qTiming {
  std::uint64_t page_program_ns;
  std::uint64_t sector_erase_ns;
};
inline constexpr W25qTiming kW25qTypical{700'000, 45'000'000};
inline constexpr W25qTiming kW25qMax{3'000'000, 400'000'000};

class W25qChip final : public ota::SpiBus, public StoredMemory {
 public:
  static constexpr std::uint32_t kPageSize = 256;
  static constexpr std::uint32_t kSectorSize = 4096;
  using Clock = std::function<std::uint64_t()>;  // virtual time in nanoseconds

  explicit W25qChip(PowerSupply& power, W25qPart part = kW25Q16JV);  // contents all 0xFF

  // Program/erase keep BUSY set for timing's durations, measured on `now`. An empty clock
  // restores instant operations.
  void set_timing(Clock now, W25qTiming timing);

  // ota::SpiBus
  void select(bool asserted) override;
  void transfer(const std::uint8_t* tx, std::uint8_t* rx, std::size_t len) override;

  // The power is lost now: an operation in progress is torn (with the supply's rng), WEL and
  // any command in flight are lost, and the supply is cut.
  void power_cut();
  // VCC has just risen: 0x06 is ignored for inhibit_ns of set_timing()'s clock (no clock: none).
  void power_up(std::uint64_t inhibit_ns);
  std::uint64_t write_enables_ignored() const { return wren_ignored_; }  // within tPUW

  // Write protection as the status registers' BP/TB/SEC/CMP bits, or WPS = 1 with its block
  // locks (set at every power-up), would set it: page program and sector erase addressed in
  // [from, to) are not executed, silently (WEL stays set; no violation: silicon does the same),
  // and reads are unaffected. from == to: nothing protected.
  void protect(std::uint32_t from, std::uint32_t to) {
    protect_from_ = from;
    protect_to_ = to;
  }

  std::uint8_t status();  // status register 1 now (BUSY, WEL)
  bool busy() { return (status() & 0x01) != 0; }
  bool selected() const { return selected_; }  // /CS low: a command under way
  bool powered_down() const { return powered_down_; }  // after 0xB9, until 0xAB or a power cycle
  bool suspended() const { return suspended_; }  // SUS: after 0x75, until 0x7A or a power cycle

  const W25qPart& part() const { return part_; }
  // bytes(), load()/save() of the raw image of the whole chip, violations(): StoredMemory.

 private:
  std::uint8_t shift(std::uint8_t in);  // one byte on the bus while selected
  void finish();                         // /CS rising: execute the command
  void execute(std::uint32_t addr, std::uint32_t len, const std::uint8_t* target,
               std::uint64_t duration_ns);
  void tear();
  void tear_all();         // the operation in progress, and the suspended one
  void swap_suspended();   // the suspended operation <-> the last executed one
  void sync();  // notice a power cut made elsewhere, complete a finished operation
  void lose_volatile();
  bool in_progress();

  PowerSupply& power_;
  W25qPart part_;
  Clock now_;
  W25qTiming timing_{};
  std::uint64_t seen_epoch_;
  std::uint64_t write_inhibit_until_ = 0;  // ns on now_: 0x06 ignored before (tPUW)
  std::uint64_t wren_ignored_ = 0;
  std::uint32_t protect_from_ = 0, protect_to_ = 0;

  // volatile state
  bool wel_ = false;
  bool selected_ = false;
  bool ignored_ = false;     // the current command arrived while BUSY or in power-down
  bool powered_down_ = false;
  bool suspended_ = false;          // SUS
  bool suspended_erase_ = false;    // a 0x20 is suspended (else a 0x02)
  std::uint32_t susp_addr_ = 0, susp_len_ = 0;     // the suspended operation, kept to tear it
  std::array<std::uint8_t, kSectorSize> susp_before_{};
  std::uint64_t suspend_left_ns_ = 0;   // of the suspended operation's BUSY time
  std::uint64_t suspending_until_ = 0;  // ns on now_: BUSY until tSUS after the 0x75
  std::uint64_t released_at_ = 0;  // ns on now_ of the last release from power-down (tRES1 after it)
  bool releasing_ = false;         // released_at_ is set and tRES1 may not have passed
  std::uint32_t count_ = 0;  // bytes since /CS fell
  std::uint8_t op_ = 0;
  std::uint32_t addr_ = 0;
  std::array<std::uint8_t, kPageSize> page_{};  // page program buffer, 0xFF = leave the bit
  // the operation last executed, kept to tear it: its range, contents before, end of BUSY
  bool running_ = false;
  std::uint32_t op_addr_ = 0;
  std::uint32_t op_len_ = 0;
  std::array<std::uint8_t, kSectorSize> before_{};
  std::uint64_t done_at_ = 0;
};

}  // namespace sim

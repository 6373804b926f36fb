// Settings of an emulated board.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

namespace bluepill {

// Durations of flash and W25Q operations: the datasheets' typical or maximum figure, or a
// random one within the datasheet range (min..max; W25Q: typ/2..max, no minimum is given).
enum class TimingMode : std::uint8_t { typical, maximum, random };

// A broken SPI1, to test the firmware's timeouts (a working chip never does this; an SPI1 whose
// kernel clock or shifter stopped would). frames_never_start: a byte written to DR stays in the
// TX buffer for good (TXE stays 0, RXNE never sets, BSY stays 0). frames_never_end: the first
// frame started stays on the wire (BSY stays 1, RXNE never sets; the next byte waits behind it,
// TXE 0). The W25Q sees no clock either way.
enum class SpiFault : std::uint8_t { none, frames_never_start, frames_never_end };

struct Config {
  // Internal flash and W25Q contents are loaded from these files if they exist (raw images:
  // 64 KB, and the W25Q's whole capacity) and written back at power-off. Empty: memory only.
  std::filesystem::path flash_file;
  std::filesystem::path w25q_file;
  // Called with each file's new copy before it is renamed over the file (sim::StoredMemory::save),
  // with the file's name: the bluepill tool locks the new copy there, so that the name never
  // leads to an unlocked file. Empty: nothing is called.
  std::function<void(const std::filesystem::path& part, const std::filesystem::path& file)> before_save_rename;
  bool w25q = true;  // a W25Q16 on SPI1 (chip select PA4)
  // Its first 64 KB (block 0, all the layout uses) write-protected, as status register bits or
  // WPS block locks left by another project would: programs and erases there are not executed.
  bool w25q_protected = false;
  // After power-on the W25Q ignores Write Enable for this long (tPUW: up to 10 ms in the W25Q16
  // datasheets; the CPU starts at once here, without the MCU's own reset delay).
  double w25q_write_inhibit_us = 10'000;
  SpiFault spi1_fault = SpiFault::none;
  bool hse = true;   // the 8 MHz crystal; false: HSE never gets ready (nor a PLL fed by it)
  // The crystal's start-up time, HSEON to HSERDY: 2 ms typical for 8 MHz (DS5319 tSU(HSE));
  // crystals and load capacitors at their limits, or a cold board, take several times that.
  double hse_startup_us = 2'000;
  // false: the PLL never locks (PLLRDY stays 0 whatever feeds it), as on a damaged or
  // out-of-spec part; the firmware must give up waiting and run on its source's own clock.
  bool pll_locks = true;
  // Core clock cycles each instruction takes. 1 is the Cortex-M3 at its best, as most single
  // instructions are; on silicon, code fetched from flash at 72 MHz (2 wait states: prefetch
  // refills after every taken branch), loads and stores (2 cycles), multiplies and divisions
  // take 1.3-2x that on the average. Tests set 2 where a timing margin must hold on silicon.
  double cycles_per_instruction = 1;
  std::uint32_t lsi_hz = 40'000;  // the IWDG's clock: 30-60 kHz on real chips (DS5319 table 24)
  // The HSI's deviation from 8 MHz (0.01 = +1 %): factory-trimmed to 1 % at 25 °C, it drifts to
  // -2 .. +2.5 % over -40..105 °C (DS5319, HSI oscillator characteristics). Everything clocked
  // from it (also the PLL fed by HSI/2) runs that much off, USART1's baud rate included.
  double hsi_error = 0;
  // The PVD's thresholds off their typical values (DS5319 table 12: each level spreads about
  // -0.12 .. +0.12 V from part to part; at PLS = 111 the falling threshold is 2.66 V min,
  // 2.78 V typical, 2.90 V max). A part at -0.12 V keeps PVDO at 0 down to 2.66 V, below the
  // W25Q16JV's 2.7 V: why docs/design.md asks for a supervisor on the external layout.
  double pvd_offset_volts = 0;
  // The far end of USART1 runs at this rate; USART1 set more than 2.5 % away from it (a BRR
  // computed for the wrong clock) is an error: the bytes would be garbled.
  std::uint32_t link_baud = 115200;
  TimingMode timing = TimingMode::typical;
  std::uint64_t seed = 1;  // random timings, torn bits, SRAM contents at power-on
  // The 96-bit unique device ID at 0x1FFFF7E8 (three words, lowest address first).
  std::array<std::uint32_t, 3> uid = {0x066DFF34, 0x3634524E, 0x43113026};
  // Write protection as the option bytes would set it: bit n protects pages 4n..4n+3 (FLASH_WRPR
  // reads the complement). Programming or erasing a protected page sets WRPRTERR (reported).
  std::uint32_t write_protect = 0;
  // The "hardware watchdog" option (WDG_SW = 0 in the user option byte, FLASH_OBR bit 2): the
  // IWDG starts by itself at every reset, with its reset values (/4, 0xFFF: 410 ms at 40 kHz).
  bool hardware_watchdog = false;
  // PM0075 (PGERR): a half-word that is not erased cannot be programmed, except with 0x0000,
  // which the STM32F1 programs over anything. Not every "F103" clone honours that exception
  // (reports exist for GigaDevice parts): false models such a chip, where 0x0000 over a
  // programmed half-word sets PGERR like any other value.
  bool zero_over_data = true;
  // Worn internal flash pages (DS5319 rates them for 10,000 erase cycles), each named by any
  // address in it: a page erase there (PER, or MER) ends as any other, BSY then EOP and no error
  // flag (the FPEC does not check what it erased, PM0075: only a read-back finds it), but leaves
  // bits programmed: the words at page offsets 0x000, 0x100, 0x200 and 0x300 keep the 0 bits of
  // their old value under kWornBits (FlashCtrl; they read old | ~kWornBits). Images the board
  // loads (load_image) are written as on a good page. Board::set_worn_pages changes it at once.
  std::vector<std::uint32_t> worn_pages;
  bool strict = true;       // stop at the first error (otherwise: report it and go on)
  double latency_ms = 0;    // one-way latency of the USART1 link, in virtual time
  bool realtime = false;    // pace virtual time to wall-clock time
};

}  // namespace bluepill

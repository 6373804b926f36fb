// Base of every memory-mapped block of the board.
//
// The bus hands each access to the block that owns the address, with the offset inside the
// block and the access size (1, 2 or 4 bytes). Most STM32F1 registers are 32-bit words whose
// side effects happen on any access: WordRegisters turns a byte or half-word access into a word
// access of the register holding it (a write puts the value in its byte lane, other bits 0; a
// read returns the lane), which is what 16-bit register declarations of older ST headers rely on.
//
// Anything a block does not model is reported as an error through unmodelled(): the firmware
// must never run on a register behaviour that nobody wrote down.
#pragma once

#include <cstdint>
#include <string>

namespace bluepill {

class Chip;

class Peripheral {
 public:
  Peripheral(Chip& chip, const char* name, std::uint32_t base, std::uint32_t size)
      : chip_(chip), name_(name), base_(base), size_(size) {}
  Peripheral(const Peripheral&) = delete;
  Peripheral& operator=(const Peripheral&) = delete;
  virtual ~Peripheral() = default;

  virtual std::uint32_t read(std::uint32_t offset, unsigned size) = 0;
  virtual void write(std::uint32_t offset, unsigned size, std::uint32_t value) = 0;
  virtual void reset() = 0;
  // False while RCC gates the block's clock off: the bus then reports the access as an error.
  virtual bool clocked() const { return true; }
  // True while its RCC reset bit is set: the block is held in reset, and the bus reports any
  // access as an error (RM0008 §7.3.4: "1: Reset", until the bit is cleared).
  virtual bool held_in_reset() const { return false; }

  const char* name() const { return name_; }
  std::uint32_t base() const { return base_; }
  std::uint32_t size() const { return size_; }
  Chip& chip() { return chip_; }

 protected:
  std::uint32_t unmodelled_read(std::uint32_t offset);
  void unmodelled_write(std::uint32_t offset, std::uint32_t value);
  void error(const std::string& what);
  void warning(const std::string& what);
  std::string where(std::uint32_t offset) const;  // "USART1+0x0C (0x4001380C)"

  Chip& chip_;

 private:
  const char* name_;
  std::uint32_t base_;
  std::uint32_t size_;
};

class WordRegisters : public Peripheral {
 public:
  using Peripheral::Peripheral;
  std::uint32_t read(std::uint32_t offset, unsigned size) final;
  void write(std::uint32_t offset, unsigned size, std::uint32_t value) final;

 protected:
  virtual std::uint32_t read32(std::uint32_t offset) = 0;  // offset is word aligned
  virtual void write32(std::uint32_t offset, std::uint32_t value) = 0;
  // The narrowest write RM0008 allows for the block's registers: 4 where it says "have to be
  // accessed by words" (GPIO/AFIO 9.2/9.4, DMA 13.4, RCC 7.3, FLASH), 2 where it says "half-words
  // or words" (USART 27.6, SPI 25.5, IWDG 19.4, PWR 4.4). A narrower write is an error; lenient,
  // the whole word is written with the value repeated in every lane, as reported of the APB
  // bridge (DMA, RCC and FLASH sit on AHB: there the silicon's behaviour is not documented).
  virtual unsigned narrowest_write() const { return 1; }
};

}  // namespace bluepill

// GPIO ports A, B, C (RM0008 section 9.2) and AFIO (9.4).
//
// Pin levels: a general-purpose output drives ODR; an input with pull reads ODR (the pull
// direction); a floating input reads what the outside world drives (set_external(), default
// high for PA10 = USART1 RX idle and low elsewhere); an alternate-function output reads as
// driven by its peripheral (reported as its ODR bit). The board watches PC13 (the Blue Pill's
// LED, lit when the pin is low) and PA4 (the W25Q chip select) through on_change.
#pragma once

#include <functional>

#include "bluepill/peripheral.hpp"

namespace bluepill {

class Gpio final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 4; }
  Gpio(Chip& chip, const char* name, std::uint32_t base, int enable_bit, char port)
      : WordRegisters(chip, name, base, 0x400), enable_bit_(enable_bit), port_(port) {}
  void reset() override;
  bool clocked() const override;
  bool held_in_reset() const override;

  enum class Mode : std::uint8_t { analog, input_floating, input_pull, output, output_od, af, af_od };
  Mode mode(int pin) const;
  bool is_output(int pin) const { return mode(pin) >= Mode::output; }
  bool is_af(int pin) const { return mode(pin) >= Mode::af; }
  bool level(int pin) const;  // what the pin is at now
  std::uint16_t odr() const { return static_cast<std::uint16_t>(odr_); }
  void set_external(int pin, bool high);
  char port() const { return port_; }

  // Called after any change of ODR or of a pin's configuration.
  std::function<void(Gpio&)> on_change;

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  void changed() {
    if (on_change) on_change(*this);
  }
  int enable_bit_;
  char port_;
  std::uint32_t crl_ = 0, crh_ = 0, odr_ = 0, lckr_ = 0;
  // LCKR key sequence (RM0008 9.2.7): 0 none, 1..3 after writing LCKK 1, 0, 1 with the same LCK
  // bits, 4 once the read that completes it has happened (LCKK = 1: locked until reset).
  int lock_step_ = 0;
  std::uint32_t cr_locked_write(std::uint32_t old, std::uint32_t v, unsigned first_pin);
  std::uint16_t external_ = 0;
  bool external_set_ = false;
};

class Afio final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 4; }
  explicit Afio(Chip& chip) : WordRegisters(chip, "AFIO", 0x40010000, 0x400) {}
  void reset() override;
  bool clocked() const override;
  bool held_in_reset() const override;
  std::uint32_t mapr() const { return mapr_; }

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  std::uint32_t evcr_ = 0, mapr_ = 0, exticr_[4] = {}, mapr2_ = 0;
};

}  // namespace bluepill

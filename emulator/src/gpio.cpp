#include "bluepill/gpio.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {

void Gpio::reset() {
  crl_ = crh_ = 0x44444444;  // all floating inputs
  odr_ = lckr_ = 0;
  lock_step_ = 0;
  if (!external_set_) external_ = port_ == 'A' ? static_cast<std::uint16_t>(1u << 10) : 0;  // PA10 = RX idles high
  changed();
}

bool Gpio::clocked() const { return chip_.rcc.apb2_enabled(enable_bit_); }
bool Gpio::held_in_reset() const { return chip_.rcc.apb2_in_reset(enable_bit_); }

Gpio::Mode Gpio::mode(int pin) const {
  const std::uint32_t cr = pin < 8 ? crl_ : crh_;
  const std::uint32_t nib = (cr >> (4 * (pin & 7))) & 0xF;
  const std::uint32_t mode = nib & 3, cnf = nib >> 2;
  if (mode == 0) return cnf == 0 ? Mode::analog : cnf == 1 ? Mode::input_floating : Mode::input_pull;
  switch (cnf) {
    case 0: return Mode::output;
    case 1: return Mode::output_od;
    case 2: return Mode::af;
    default: return Mode::af_od;
  }
}

bool Gpio::level(int pin) const {
  const bool out = (odr_ >> pin) & 1;
  const bool ext = (external_ >> pin) & 1;
  switch (mode(pin)) {
    case Mode::analog: return false;
    case Mode::input_floating: return ext;
    case Mode::input_pull: return external_set_ && ((external_ >> pin) & 1) != out ? ext : out;
    case Mode::output_od: return out && ext;
    default: return out;
  }
}

void Gpio::set_external(int pin, bool high) {
  external_set_ = true;
  external_ = static_cast<std::uint16_t>(high ? external_ | (1u << pin) : external_ & ~(1u << pin));
}

std::uint32_t Gpio::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: return crl_;
    case 0x04: return crh_;
    case 0x08: {
      std::uint32_t idr = 0;
      for (int p = 0; p < 16; ++p)
        if (level(p)) idr |= 1u << p;
      return idr;
    }
    case 0x0C: return odr_;
    case 0x10: case 0x14: return 0;  // write-only
    case 0x18:
      // RM0008 9.2.7: "Write 1, Write 0, Write 1, Read 0, Read 1": the read after the third
      // write still shows LCKK = 0 and completes the lock.
      if (lock_step_ == 3) {
        lock_step_ = 4;
        return lckr_ & 0xFFFF;
      }
      return lock_step_ == 4 ? (lckr_ & 0xFFFF) | 0x10000 : lckr_ & 0xFFFF;
    default: return unmodelled_read(off);
  }
}

void Gpio::write32(std::uint32_t off, std::uint32_t v) {
  switch (off) {
    case 0x00: crl_ = cr_locked_write(crl_, v, 0); break;
    case 0x04:
      crh_ = cr_locked_write(crh_, v, 8);
      // DS5319 (pin descriptions, PC13-PC15): supplied through the power switch, these pins may
      // drive at 2 MHz at most (30 pF) and must not source current: a blue pill's LED on PC13
      // sinks, from an output set to 2 MHz.
      for (int pin = 13; port_ == 'C' && pin <= 15; ++pin)
        if (const std::uint32_t speed = (crh_ >> (4 * (pin - 8))) & 3; speed == 1 || speed == 3)
          warning("PC" + std::to_string(pin) + " set as a " + (speed == 1 ? "10" : "50") +
                  " MHz output: DS5319 allows PC13-PC15 2 MHz at most (output_2mhz)");
      break;
    case 0x08: error("write to read-only " + where(off)); return;
    case 0x0C: odr_ = v & 0xFFFF; break;
    case 0x10: odr_ = (odr_ & ~(v >> 16) & 0xFFFF) | (v & 0xFFFF); break;  // BSRR: set wins over reset (RM0008 9.2.5)
    case 0x14: odr_ &= ~(v & 0xFFFF); break;
    case 0x18: {
      // RM0008 9.2.7: LCK bits can only be written while LCKK is 0; LCKK only through the key
      // sequence (1, 0, 1 with LCK unchanged), and any error in the sequence aborts it.
      if (lock_step_ == 4) {
        error("write to " + where(off) + " after the port configuration was locked: ignored until reset");
        return;
      }
      const std::uint32_t lck = v & 0xFFFF, kk = (v >> 16) & 1;
      const bool same = lck == (lckr_ & 0xFFFF);
      if (kk && (lock_step_ == 0 || lock_step_ == 3)) lock_step_ = 1;
      else if (!kk && lock_step_ == 1 && same) lock_step_ = 2;
      else if (kk && lock_step_ == 2 && same) lock_step_ = 3;
      else lock_step_ = 0;
      lckr_ = lck;
      return;
    }
    default: unmodelled_write(off, v); return;
  }
  changed();
}

// RM0008 9.2.7: once LCKK is set, the CRL/CRH fields of the pins whose LCK bit is set keep their
// configuration until the next reset; a write that would change them is reported.
std::uint32_t Gpio::cr_locked_write(std::uint32_t old, std::uint32_t v, unsigned first_pin) {
  if (lock_step_ != 4) return v;
  std::uint32_t keep = 0;
  for (unsigned i = 0; i < 8; ++i)
    if ((lckr_ >> (first_pin + i)) & 1u) keep |= 0xFu << (4 * i);
  if ((old ^ v) & keep)
    error("write of " + hex32(v) + " to " + where(first_pin ? 4 : 0) +
          " changes the configuration of a locked pin (GPIOx_LCKR): ignored until reset");
  return (v & ~keep) | (old & keep);
}

void Afio::reset() {
  evcr_ = mapr_ = mapr2_ = 0;
  for (auto& e : exticr_) e = 0;
}

bool Afio::clocked() const { return chip_.rcc.apb2_enabled(0); }
bool Afio::held_in_reset() const { return chip_.rcc.apb2_in_reset(0); }

std::uint32_t Afio::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: return evcr_;
    case 0x04: return mapr_ & ~0x07000000u;  // SWJ_CFG is write-only
    case 0x08: case 0x0C: case 0x10: case 0x14: return exticr_[(off - 8) / 4];
    case 0x1C: return mapr2_;
    default: return unmodelled_read(off);
  }
}

void Afio::write32(std::uint32_t off, std::uint32_t v) {
  switch (off) {
    case 0x00: evcr_ = v & 0xFF; break;
    case 0x04:
      mapr_ = v;
      if (v & 0x5u) error("AFIO_MAPR remaps SPI1 or USART1 (" + hex32(v) + "): the board wires them to PA4-7, PA9/10");
      break;
    case 0x08: case 0x0C: case 0x10: case 0x14: exticr_[(off - 8) / 4] = v & 0xFFFF; break;
    case 0x1C: mapr2_ = v; break;
    default: unmodelled_write(off, v); break;
  }
}

}  // namespace bluepill

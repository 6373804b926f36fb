#include "bluepill/usart.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kPe = 1u << 0, kFe = 1u << 1, kNe = 1u << 2, kOre = 1u << 3, kIdle = 1u << 4,
                        kRxne = 1u << 5, kTc = 1u << 6, kTxe = 1u << 7, kLbd = 1u << 8, kCts = 1u << 9;
constexpr std::uint32_t kUe = 1u << 13, kM = 1u << 12, kTe = 1u << 3, kRe = 1u << 2, kRxneie = 1u << 5,
                        kTcie = 1u << 6, kTxeie = 1u << 7, kIdleie = 1u << 4;
constexpr std::uint32_t kDmar = 1u << 6, kDmat = 1u << 7;
constexpr int kDmaRx = 5, kDmaTx = 4;
}  // namespace

void Usart::reset() {
  sr_ = kTxe | kTc;
  brr_ = cr1_ = cr2_ = cr3_ = gtpr_ = 0;
  warned_baud_ = false;
  tdr_ = shift_ = rdr_ = 0;
  shifting_ = sr_read_ = dma_busy_ = overrun_next_ = warned_deaf_ = has_been_on_ = false;
  chip_.cancel(tx_event_);
  chip_.cancel(idle_event_);
  chip_.irq(irq::usart1, false);
}

bool Usart::clocked() const { return chip_.rcc.apb2_enabled(14); }
bool Usart::held_in_reset() const { return chip_.rcc.apb2_in_reset(14); }

std::uint32_t Usart::baud() const { return brr_ == 0 ? 0 : chip_.rcc.pclk2() / brr_; }

Cycles Usart::frame_cycles() const {
  if (!(cr1_ & kUe) || brr_ == 0) return 0;
  static constexpr std::uint32_t kStopHalfBits[4] = {2, 1, 4, 3};
  const std::uint64_t half_bits = 2 * (1 + ((cr1_ & kM) ? 9 : 8)) + kStopHalfBits[(cr2_ >> 12) & 3];
  return static_cast<Cycles>(half_bits * brr_ * kTimeHz / (2 * static_cast<std::uint64_t>(chip_.rcc.pclk2())));
}

// (A USART whose clock is gated off receives nothing either, whatever its registers hold.)
bool Usart::receiver_on() const { return (cr1_ & kUe) && (cr1_ & kRe) && brr_ != 0 && clocked(); }

// A byte sent at `from` baud as the receiver at `to` baud samples it: the start bit's falling edge
// starts it, each data bit is read at the middle of its own bit time (the 16x oversampling's
// majority, RM0008 27.3.3), the stop bit after them; `framing` if that reads 0. At a rate too far
// from the sender's the bits are read off the wrong bit times: the byte is garbled.
std::uint8_t Usart::resampled(std::uint8_t byte, std::uint64_t from, std::uint64_t to, bool& framing) {
  auto level = [&](double t) {  // the line at t sender bit times after the start edge
    const auto bit = static_cast<unsigned>(t);
    return bit == 0 ? 0u : bit <= 8 ? (byte >> (bit - 1)) & 1u : 1u;  // start, data LSB first, stop/idle
  };
  const double scale = static_cast<double>(from) / static_cast<double>(to);  // sender bit times per receiver bit
  std::uint8_t out = 0;
  for (unsigned k = 0; k < 8; ++k) out |= static_cast<std::uint8_t>(level((k + 1.5) * scale) << k);
  framing = level(9.5 * scale) == 0;
  return out;
}

bool Usart::rate_mismatch() const {
  const std::uint64_t want = chip_.config().link_baud, got = baud();
  return want != 0 && (got * 1000 < want * 975 || got * 1000 > want * 1025);
}

void Usart::check_link(bool tx) {
  const std::uint64_t want = chip_.config().link_baud, got = baud();
  if (!warned_baud_ && rate_mismatch()) {
    warned_baud_ = true;
    error("USART1 runs at " + std::to_string(got) + " baud (PCLK2 " + std::to_string(chip_.rcc.pclk2()) +
          " Hz / BRR " + std::to_string(brr_) + "), the far end at " + std::to_string(want) +
          ": every byte is garbled");
  }
  if (tx && !warned_tx_pin_ && !chip_.gpioa.is_af(9)) {
    warned_tx_pin_ = true;
    error("USART1 transmits but PA9 (TX) is not an alternate-function output: nothing leaves the chip");
  }
  if (!tx && !warned_rx_pin_ && chip_.gpioa.is_output(10)) {
    warned_rx_pin_ = true;
    error("USART1 receives but PA10 (RX) is configured as an output");
  }
}

std::uint32_t Usart::read32(std::uint32_t off) {
  switch (off) {
    case 0x00: sr_read_ = true; return sr_;
    case 0x04: {
      const std::uint32_t v = rdr_;
      sr_ &= ~kRxne;
      if (sr_read_) sr_ &= ~(kOre | kIdle | kNe | kFe | kPe);
      sr_read_ = false;
      update_irq();
      return v;
    }
    case 0x08: return brr_;
    case 0x0C: return cr1_;
    case 0x10: return cr2_;
    case 0x14: return cr3_;
    case 0x18: return gtpr_;
    default: return unmodelled_read(off);
  }
}

void Usart::write32(std::uint32_t off, std::uint32_t v) {
  switch (off) {
    case 0x00:  // rc_w0 bits: CTS, LBD, TC, RXNE
      sr_ &= v | ~(kCts | kLbd | kTc | kRxne);
      update_irq();
      break;
    case 0x04:
      if (sr_read_) sr_ &= ~kTc;
      sr_read_ = false;
      write_dr(v & 0x1FF);
      break;
    case 0x08:
      if (shifting_) error("USART1 BRR changed while a frame is being sent");
      brr_ = v & 0xFFFF;
      warned_baud_ = false;
      break;
    case 0x0C: {
      const bool was_on = receiver_on();
      cr1_ = v & 0x3FFF;
      if (cr1_ & 0x0700) error("USART1 parity/wake-up (CR1 " + hex32(cr1_) + ") is not modelled");
      update_irq();
      if (receiver_on()) has_been_on_ = true;
      if (!was_on && receiver_on() && chip_.board().uart_rx_ready) chip_.board().uart_rx_ready();
      update_dma();
      break;
    }
    case 0x10:
      cr2_ = v & 0x7F7F;
      if (cr2_ & 0x4F00) error("USART1 synchronous/LIN mode (CR2 " + hex32(cr2_) + ") is not modelled");
      break;
    case 0x14:
      cr3_ = v & 0x7FF;
      if (cr3_ & ~(kDmar | kDmat | 1u)) error("USART1 CR3 features " + hex32(cr3_) + " are not modelled");
      update_irq();
      update_dma();
      break;
    case 0x18: gtpr_ = v & 0xFFFF; break;
    default: unmodelled_write(off, v); break;
  }
}

void Usart::write_dr(std::uint32_t v) {
  if (!(sr_ & kTxe)) error("USART1 DR written while TXE=0: the byte waiting in TDR is lost");
  tdr_ = static_cast<std::uint8_t>(v);
  sr_ &= ~kTxe;
  if (!((cr1_ & kUe) && (cr1_ & kTe))) {
    error("USART1 DR written while the transmitter is off (UE/TE clear): nothing is sent");
    update_irq();
    return;
  }
  if (brr_ == 0) {
    error("USART1 DR written with BRR = 0");
    return;
  }
  if (!shifting_) start_frame(chip_.now());
  update_irq();
}

void Usart::start_frame(Cycles at) {
  shift_ = tdr_;
  shifting_ = true;
  sr_ |= kTxe;  // (TC is not cleared by a frame starting: only by SR read then DR write, or a 0)
  check_link(true);
  tx_event_ = chip_.at(at + frame_cycles(), [this](Cycles when) { frame_done(when); });
  update_irq();
  update_dma();
}

void Usart::frame_done(Cycles when) {
  tx_event_ = 0;
  shifting_ = false;
  if (chip_.gpioa.is_af(9) && chip_.board().uart_tx) {
    bool framing = false;  // (the far end's: not ours to flag)
    // Lenient, a rate off the far end's goes on: as the far end reads it.
    chip_.board().uart_tx(rate_mismatch() ? resampled(shift_, baud(), chip_.config().link_baud, framing) : shift_, when);
  }
  if (!(sr_ & kTxe) && (cr1_ & kUe) && (cr1_ & kTe)) start_frame(when);
  else sr_ |= kTc;
  update_irq();
}

bool Usart::receive(std::uint8_t byte, Cycles when) {
  if (!receiver_on()) return false;
  check_link(false);
  if (sr_ & kOre) {
    // As on silicon the receiver takes nothing more, and sets no other flag, until SR then DR
    // are read: the DMA's reads of DR do not clear ORE, so firmware that never does stays deaf.
    if (!warned_deaf_) warning("USART1 receives nothing while ORE is set: read SR then DR to clear it");
    warned_deaf_ = true;
    return true;
  }
  if ((sr_ & kRxne) || overrun_next_) {
    overrun_next_ = warned_deaf_ = false;
    sr_ |= kOre;
    warning("USART1 overrun: a byte arrived while RXNE was still set; it is lost (ORE set)");
  } else {
    bool framing = false;
    rdr_ = rate_mismatch() ? resampled(byte, chip_.config().link_baud, baud(), framing) : byte;
    sr_ |= kRxne | (framing ? kFe : 0u);
  }
  chip_.cancel(idle_event_);
  idle_event_ = chip_.at(when + frame_cycles(), [this](Cycles) {
    idle_event_ = 0;
    sr_ |= kIdle;
    update_irq();
  });
  update_dma();
  update_irq();
  return true;
}

std::uint8_t Usart::dma_read_dr() {
  sr_ &= ~kRxne;
  update_irq();
  return rdr_;
}

void Usart::update_dma() {
  if (dma_busy_) return;
  dma_busy_ = true;
  if ((cr3_ & kDmar) && (sr_ & kRxne)) chip_.dma1.request(kDmaRx);
  while ((cr3_ & kDmat) && (sr_ & kTxe) && (cr1_ & kUe) && (cr1_ & kTe) && chip_.dma1.request(kDmaTx)) {
  }
  dma_busy_ = false;
}

void Usart::update_irq() {
  const bool level = ((cr1_ & kTxeie) && (sr_ & kTxe)) || ((cr1_ & kTcie) && (sr_ & kTc)) ||
                     ((cr1_ & kRxneie) && (sr_ & (kRxne | kOre))) || ((cr1_ & kIdleie) && (sr_ & kIdle));
  chip_.irq(irq::usart1, level && (cr1_ & kUe));
}

}  // namespace bluepill

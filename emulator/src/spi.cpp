#include "bluepill/spi.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kMstr = 1u << 2, kSpe = 1u << 6, kLsbfirst = 1u << 7, kSsi = 1u << 8, kSsm = 1u << 9,
                        kDff = 1u << 11;
constexpr std::uint32_t kRxdmaen = 1u << 0, kTxdmaen = 1u << 1, kSsoe = 1u << 2, kErrie = 1u << 5,
                        kRxneie = 1u << 6, kTxeie = 1u << 7;
constexpr std::uint32_t kRxne = 1u << 0, kTxe = 1u << 1, kModf = 1u << 5, kOvr = 1u << 6, kBsy = 1u << 7;
constexpr int kDmaRx = 2, kDmaTx = 3;
}  // namespace

void Spi::reset() {
  cr1_ = cr2_ = 0;
  sr_ = 0;
  crcpr_ = 7;
  rx_ = txbuf_ = shifting_ = 0;
  busy_ = txfull_ = ovr_dr_read_ = false;
  chip_.cancel(event_);
  update_cs();
  chip_.irq(irq::spi1, false);
}

bool Spi::clocked() const { return chip_.rcc.apb2_enabled(12); }
bool Spi::held_in_reset() const { return chip_.rcc.apb2_in_reset(12); }

Cycles Spi::frame_cycles() const {
  const std::uint64_t bits = (cr1_ & kDff) ? 16 : 8;
  const std::uint64_t div = 2u << ((cr1_ >> 3) & 7);
  return static_cast<Cycles>(bits * div * kTimeHz / chip_.rcc.pclk2());
}

void Spi::update_cs() {
  const Gpio& a = chip_.gpioa;
  bool asserted = false;
  if (a.is_output(4) && !a.is_af(4)) asserted = !a.level(4);
  else if (a.is_af(4)) asserted = (cr1_ & kSpe) && (cr2_ & kSsoe) && !(cr1_ & kSsm);
  if (asserted == cs_) return;
  settle();
  // (A frame stalled by SpiFault::frames_never_end clocks no bit: nothing is cut.)
  if (busy_ && frame_end_ != kNever) error(std::string("W25Q chip select ") + (asserted ? "asserted" : "released") +
                   " while SPI1 is still shifting a frame (wait for BSY=0): the chip sees a cut byte");
  cs_ = asserted;
  if (w25q_) chip_.w25q_select(cs_);
}

void Spi::start(std::uint16_t v, Cycles at) {
  const std::uint32_t sck = chip_.rcc.pclk2() / (2u << ((cr1_ >> 3) & 7));
  if (sck > 18'000'000)
    error("SPI1 SCK at " + std::to_string(sck) + " Hz: the STM32F103's SPI master runs at 18 MHz at most (DS5319)");
  // RM0008 9.1.11, table 25 (SPI1 as master): SCK and MOSI alternate-function push-pull (open
  // drain drives no high level without a pull-up), MISO a digital input (floating or pulled; in
  // analog mode its Schmitt trigger is off and the SPI reads 0).
  using Mode = Gpio::Mode;
  const Gpio& a = chip_.gpioa;
  if (!warned_pins_ && (a.mode(5) != Mode::af || a.mode(7) != Mode::af)) {
    warned_pins_ = true;
    error("SPI1 sends but PA5 (SCK) / PA7 (MOSI) are not alternate-function push-pull outputs: the W25Q sees no "
          "clock or no data");
  }
  if (!warned_pins_ && a.mode(6) != Mode::input_floating && a.mode(6) != Mode::input_pull) {
    warned_pins_ = true;
    error("SPI1 sends but PA6 (MISO) is not a digital input (floating or pulled): the W25Q's answers are not read");
  }
  shifting_ = v;
  busy_ = true;
  txfull_ = false;
  // SpiFault::frames_never_end: the frame stays on the wire.
  frame_end_ = chip_.config().spi1_fault == SpiFault::frames_never_end ? kNever : at + frame_cycles();
  schedule();
}

void Spi::settle() {
  while (busy_ && chip_.now() >= frame_end_) {
    std::uint16_t in = 0xFFFF;
    if (cs_ && w25q_) {
      const int n = (cr1_ & kDff) ? 2 : 1;
      std::uint8_t tx[2], rx[2] = {0xFF, 0xFF};
      for (int i = 0; i < n; ++i) {
        int b = n == 2 && !(cr1_ & kLsbfirst) ? 1 - i : i;
        tx[i] = static_cast<std::uint8_t>(shifting_ >> (8 * b));
      }
      if (cr1_ & kLsbfirst) error("SPI1 LSB-first frames: the W25Q expects MSB first");
      if (((cr1_ >> 1) ^ cr1_) & 1u)  // CPOL (bit 1) != CPHA (bit 0)
        error("SPI1 in mode " + std::to_string(cr1_ & 3u) + " (CPOL/CPHA): the W25Q samples in modes 0 and 3 only");
      chip_.w25q_transfer(tx, rx, static_cast<std::size_t>(n));
      in = n == 2 ? static_cast<std::uint16_t>(rx[0] << 8 | rx[1]) : rx[0];
    }
    // RM0008 25.3.10: a frame that ends while RXNE is still set overruns (OVR), and every frame
    // after it is lost too until OVR is cleared (DR read, then SR read).
    if (sr_ & (kRxne | kOvr)) sr_ |= kOvr;
    else {
      rx_ = in;
      sr_ |= kRxne;
    }
    const Cycles end = frame_end_;
    busy_ = false;
    if (txfull_) start(txbuf_, end);
  }
}

void Spi::schedule() {
  chip_.cancel(event_);
  if (!busy_ || frame_end_ == kNever || !(cr2_ & (kRxdmaen | kTxdmaen | kErrie | kRxneie | kTxeie))) return;
  event_ = chip_.at(frame_end_, [this](Cycles) {
    event_ = 0;
    settle();
    update_irq_dma();
    schedule();
  });
}

void Spi::update_irq_dma() {
  const bool txe = !txfull_;
  const bool level = ((cr2_ & kTxeie) && txe) || ((cr2_ & kRxneie) && (sr_ & kRxne)) ||
                     ((cr2_ & kErrie) && (sr_ & (kOvr | kModf)));
  chip_.irq(irq::spi1, level);
  if ((cr2_ & kRxdmaen) && (sr_ & kRxne)) chip_.dma1.request(kDmaRx);
  if ((cr2_ & kTxdmaen) && !txfull_) chip_.dma1.request(kDmaTx);
}

std::uint8_t Spi::dma_read_dr() {
  settle();
  sr_ &= ~kRxne;
  ovr_dr_read_ = (sr_ & kOvr) != 0;
  return static_cast<std::uint8_t>(rx_);
}

void Spi::dma_write_dr(std::uint8_t b) { write32(0x0C, b); }

std::uint32_t Spi::read32(std::uint32_t off) {
  settle();
  switch (off) {
    case 0x00: return cr1_;
    case 0x04: return cr2_;
    case 0x08: {
      const std::uint32_t v = sr_ | (txfull_ ? 0 : kTxe) | (busy_ ? kBsy : 0);
      // RM0008 25.3.10: OVR is cleared by a read of DR followed by a read of SR (this one).
      if (ovr_dr_read_ && (sr_ & kOvr)) {
        sr_ &= ~kOvr;
        update_irq_dma();
      }
      ovr_dr_read_ = false;
      return v;
    }
    case 0x0C: {
      const std::uint16_t v = rx_;
      sr_ &= ~kRxne;
      ovr_dr_read_ = (sr_ & kOvr) != 0;  // step 1 of clearing OVR; the SR read that follows is step 2
      update_irq_dma();
      return v;
    }
    case 0x10: return crcpr_;
    case 0x14: case 0x18: return 0;  // CRC not modelled: reads 0 (reported if CRC is enabled)
    case 0x1C: case 0x20: return 0;  // I2S off
    default: return unmodelled_read(off);
  }
}

void Spi::write32(std::uint32_t off, std::uint32_t v) {
  settle();
  switch (off) {
    case 0x00: {
      const bool was_on = cr1_ & kSpe;
      if (was_on && !(v & kSpe) && (busy_ || txfull_))
        error("SPI1 disabled (SPE=0) while BSY: RM0008 25.3.8 says wait for TXE=1 and BSY=0 first");
      // RM0008 25.5.1: DFF only while SPE=0; BR, CPOL and CPHA not while a frame is under way.
      if (was_on && (v & kSpe) && ((v ^ cr1_) & kDff)) error("SPI1 CR1.DFF changed while SPE=1");
      if ((busy_ || txfull_) && ((v ^ cr1_) & 0x3Bu)) error("SPI1 CR1 BR/CPOL/CPHA changed during a frame");
      cr1_ = v & 0xFFFF;
      if (cr1_ & (1u << 13)) error("SPI1 hardware CRC is not modelled");
      if ((cr1_ & kSpe) && !(cr1_ & kMstr)) error("SPI1 slave mode is not modelled (MSTR=0)");
      if ((cr1_ & kSpe) && (cr1_ & kMstr)) {
        if ((cr1_ & kSsm) && !(cr1_ & kSsi)) {
          sr_ |= kModf;
          cr1_ &= ~(kSpe | kMstr);
          error("SPI1 master with SSM=1 and SSI=0: mode fault (MODF), SPE and MSTR cleared");
        } else if (!(cr1_ & kSsm) && !(cr2_ & kSsoe)) {
          error("SPI1 master with hardware NSS input (SSM=0, SSOE=0) is not modelled");
        }
      }
      if ((cr1_ & 0xC000) != 0) error("SPI1 bidirectional mode is not modelled");
      update_cs();
      break;
    }
    case 0x04:
      cr2_ = v & 0xE7;
      update_cs();
      update_irq_dma();
      schedule();
      break;
    case 0x08: sr_ &= ~(1u << 4) | v; break;  // CRCERR rc_w0; others read-only
    case 0x0C:
      if (!(cr1_ & kSpe)) {
        error("SPI1 DR written while SPE=0: nothing is sent");
        break;
      }
      if (txfull_) error("SPI1 DR written while TXE=0: the byte waiting in the TX buffer is lost");
      if (!busy_ && chip_.config().spi1_fault != SpiFault::frames_never_start) start(static_cast<std::uint16_t>(v), chip_.now());
      else {
        txbuf_ = static_cast<std::uint16_t>(v);
        txfull_ = true;
      }
      update_irq_dma();
      break;
    case 0x10: crcpr_ = v & 0xFFFF; break;
    case 0x1C:
      if (v & (1u << 11)) error("I2S mode is not modelled");
      break;
    default: unmodelled_write(off, v); break;
  }
}

}  // namespace bluepill

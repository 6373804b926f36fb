#include "bluepill/dma.hpp"

#include "bluepill/chip.hpp"

namespace bluepill {

namespace {
constexpr std::uint32_t kEn = 1u << 0, kTcie = 1u << 1, kHtie = 1u << 2, kTeie = 1u << 3, kDir = 1u << 4,
                        kCirc = 1u << 5, kPinc = 1u << 6, kMinc = 1u << 7, kMem2mem = 1u << 14;
constexpr std::uint32_t kGif = 1, kTcif = 2, kHtif = 4, kTeif = 8;
unsigned item_size(std::uint32_t bits) { return bits == 0 ? 1 : bits == 1 ? 2 : 4; }
}  // namespace

void Dma::reset() {
  for (auto& c : ch_) c = Channel{};
  isr_ = 0;
  for (int i = 1; i <= 7; ++i) update_irq(i);
}

bool Dma::clocked() const { return chip_.rcc.ahb_enabled(0); }

std::uint32_t Dma::read32(std::uint32_t off) {
  if (off == 0x00) return isr_;
  if (off == 0x04) return 0;
  if (off >= 0x08 && off < 0x08 + 7 * 20) {
    const Channel& c = ch_[(off - 8) / 20];
    switch ((off - 8) % 20) {
      case 0: return c.ccr;
      case 4: return c.left;
      case 8: return c.cpar;
      case 12: return c.cmar;
      default: break;
    }
  }
  return unmodelled_read(off);
}

void Dma::write32(std::uint32_t off, std::uint32_t v) {
  if (off == 0x00) return error("write to read-only DMA1_ISR");
  if (off == 0x04) {
    for (int i = 0; i < 7; ++i) {
      const std::uint32_t bits = (v >> (4 * i)) & 0xF;
      if (bits & kGif) isr_ &= ~(0xFu << (4 * i));
      else isr_ &= ~(bits << (4 * i));
      update_irq(i + 1);
    }
    return;
  }
  if (off < 0x08 || off >= 0x08 + 7 * 20) return unmodelled_write(off, v);
  const int n = static_cast<int>((off - 8) / 20) + 1;
  Channel& c = ch_[n - 1];
  const std::uint32_t reg = (off - 8) % 20;
  const bool en = (c.ccr & kEn) != 0;
  switch (reg) {
    case 0: {
      if (en && (v & kEn) && ((v ^ c.ccr) & ~(kEn | kTcie | kHtie | kTeie)))
        warning("DMA1 channel " + std::to_string(n) + " configuration changed while enabled");
      c.ccr = v & 0x7FFF;
      if (!en && (v & kEn)) start(n);
      update_irq(n);
      return;
    }
    case 4:
    case 8:
    case 12:
      if (en) {
        error("DMA1 channel " + std::to_string(n) + (reg == 4 ? " CNDTR" : reg == 8 ? " CPAR" : " CMAR") +
              " written while the channel is enabled (ignored by silicon)");
        return;
      }
      if (reg == 4) c.cndtr = c.left = v & 0xFFFF;
      if (reg == 8) c.cpar = v;
      if (reg == 12) c.cmar = v;
      return;
    default: return unmodelled_write(off, v);
  }
}

void Dma::start(int n) {
  Channel& c = ch_[n - 1];
  // RM0008 13.4.4: CNDTR is not reloaded by EN; it holds what is left (0 after a normal-mode
  // transfer, and then "no transaction can be served whether the channel is enabled or not").
  c.paddr = c.cpar;
  c.maddr = c.cmar;
  if (c.left == 0) return;
  if (c.ccr & kMem2mem) {
    while ((c.ccr & kEn) && c.left != 0) transfer(n);
    return;
  }
  // The requesting peripheral may already be asking.
  if (n == 4 || n == 5) chip_.usart1.dma_channel_changed();
}

bool Dma::request(int n) {
  if (!clocked() || !enabled(n)) return false;
  transfer(n);
  return true;
}

void Dma::transfer(int n) {
  Channel& c = ch_[n - 1];
  const unsigned psize = item_size((c.ccr >> 8) & 3), msize = item_size((c.ccr >> 10) & 3);
  const bool to_periph = (c.ccr & kDir) != 0;
  // MEM2MEM: "peripheral" side is the source unless DIR says memory is.
  const std::uint32_t src = to_periph ? c.maddr : c.paddr, dst = to_periph ? c.paddr : c.maddr;
  const unsigned ssize = to_periph ? msize : psize, dsize = to_periph ? psize : msize;
  std::uint32_t value = 0;
  bool ok = true;
  if (!(c.ccr & kMem2mem) && !to_periph && src == chip_.usart1.base() + 4) value = chip_.usart1.dma_read_dr();
  else if (!(c.ccr & kMem2mem) && !to_periph && src == chip_.spi1.base() + 0xC) value = chip_.spi1.dma_read_dr();
  else ok = chip_.bus_read(src, ssize, value);
  if (ok) {
    if (dsize < 4) value &= (1u << (8 * dsize)) - 1;
    if (!(c.ccr & kMem2mem) && to_periph && dst == chip_.usart1.base() + 4) chip_.usart1.dma_write_dr(static_cast<std::uint8_t>(value));
    else if (!(c.ccr & kMem2mem) && to_periph && dst == chip_.spi1.base() + 0xC) chip_.spi1.dma_write_dr(static_cast<std::uint8_t>(value));
    else ok = chip_.bus_write(dst, dsize, value);
  }
  if (!ok) {
    error("DMA1 channel " + std::to_string(n) + " bus error (source " + hex32(src) + ", destination " + hex32(dst) + ")");
    isr_ |= (kGif | kTeif) << (4 * (n - 1));
    c.ccr &= ~kEn;
    update_irq(n);
    return;
  }
  if (c.ccr & kPinc) c.paddr += psize;
  if (c.ccr & kMinc) c.maddr += msize;
  --c.left;
  if (c.left == c.cndtr / 2) isr_ |= (kGif | kHtif) << (4 * (n - 1));
  if (c.left == 0) {
    isr_ |= (kGif | kTcif) << (4 * (n - 1));
    if (c.ccr & kCirc) {
      c.left = c.cndtr;
      c.paddr = c.cpar;
      c.maddr = c.cmar;
    }
  }
  update_irq(n);
}

void Dma::update_irq(int n) {
  const std::uint32_t f = (isr_ >> (4 * (n - 1))) & 0xF;
  const std::uint32_t ccr = ch_[n - 1].ccr;
  const bool level = ((f & kTcif) && (ccr & kTcie)) || ((f & kHtif) && (ccr & kHtie)) || ((f & kTeif) && (ccr & kTeie));
  chip_.irq(irq::dma1_ch1 + n - 1, level);
}

}  // namespace bluepill

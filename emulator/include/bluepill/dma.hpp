// DMA1 (RM0008 section 13), channels 1-7.
//
// A channel moves one item per request from its peripheral (USART1 RX = channel 5, USART1 TX =
// channel 4, SPI1 RX = channel 2, SPI1 TX = channel 3), or all at once for MEM2MEM. CNDTR counts
// down; at 0 TCIF is set and a circular channel reloads its count and addresses, a normal one
// stops. HTIF is set at half the count. CNDTR/CPAR/CMAR written while EN=1 is an error (the
// silicon ignores it). A bus error sets TEIF and disables the channel (and is reported).
// Interrupts 11..17 follow TCIE/HTIE/TEIE.
#pragma once

#include "bluepill/peripheral.hpp"

namespace bluepill {

class Dma final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 4; }
  explicit Dma(Chip& chip) : WordRegisters(chip, "DMA1", 0x40020000, 0x400) {}
  void reset() override;
  bool clocked() const override;

  // The peripheral of channel ch (1-7) asks for one item. Returns true if one moved.
  bool request(int ch);
  bool enabled(int ch) const { return (ch_[ch - 1].ccr & 1) != 0 && ch_[ch - 1].left != 0; }
  std::uint32_t cpar(int ch) const { return ch_[ch - 1].cpar; }

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  struct Channel {
    std::uint32_t ccr = 0, cndtr = 0, cpar = 0, cmar = 0;
    std::uint32_t left = 0;  // items left (CNDTR as read)
    std::uint32_t paddr = 0, maddr = 0;
  };
  void start(int ch);
  void transfer(int ch);
  void update_irq(int ch);
  Channel ch_[7];
  std::uint32_t isr_ = 0;
};

}  // namespace bluepill

// SPI1 (RM0008 section 25), master mode, with a device (the W25Q) on its bus.
//
// A DR write while TXE=1 starts a frame at once if the shifter is idle (TXE set again, BSY set),
// else waits in the TX buffer (TXE=0). A frame lasts 8 (16 with DFF) SCK periods at PCLK2 /
// (2 << BR); when it ends the byte is exchanged with the device, RXNE is set (OVR if RXNE was
// still set: the new byte is lost, and so is every later one until OVR is cleared by a DR read
// followed by an SR read, RM0008 25.3.10) and the next buffered byte starts. Chip select is the
// board's PA4: a GPIO output, or the hardware NSS (SSOE) when PA4 is an alternate function.
// Reported errors: chip select moving while a frame is on the wire (the device sees a cut
// byte), frames while SCK/MOSI (PA5/PA7) are not alternate-function outputs, master mode
// without SSM+SSI or SSOE (the silicon raises MODF).
#pragma once

#include "bluepill/peripheral.hpp"
#include "bluepill/time.hpp"

namespace bluepill {

class Spi final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 2; }
  explicit Spi(Chip& chip) : WordRegisters(chip, "SPI1", 0x40013000, 0x400) {}
  void reset() override;
  bool clocked() const override;
  bool held_in_reset() const override;

  // The W25Q on the bus (or its wiring cut): chip select and frames go to it through the Chip
  // (Chip::w25q_select / w25q_transfer), which reports the rules it breaks.
  void connect_w25q(bool connected) { w25q_ = connected; }
  // The board recomputes the chip select level after every GPIOA/SPI change.
  void update_cs();
  bool cs_asserted() const { return cs_; }
  std::uint8_t dma_read_dr();
  void dma_write_dr(std::uint8_t b);

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  void settle();  // complete the frames that ended by now
  void start(std::uint16_t v, Cycles at);
  Cycles frame_cycles() const;
  void update_irq_dma();
  void schedule();

  bool w25q_ = false;
  std::uint32_t cr1_ = 0, cr2_ = 0, sr_ = 0, crcpr_ = 7;
  std::uint16_t rx_ = 0, txbuf_ = 0, shifting_ = 0;
  bool busy_ = false, txfull_ = false;
  bool ovr_dr_read_ = false;  // DR read while OVR was set: the next SR read clears OVR
  Cycles frame_end_ = 0;
  bool cs_ = false;
  bool warned_pins_ = false;
  Scheduler::Id event_ = 0;
};

}  // namespace bluepill

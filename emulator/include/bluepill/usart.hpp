// USART1 (RM0008 section 27.6), asynchronous mode.
//
// Transmit: a DR write while TXE=1 fills TDR; TDR moves to the shift register at once when it is
// idle (TXE set again, TC cleared); a frame lasts (1 start + 8/9 data + stop bits) bit times at
// PCLK2 / BRR. When the frame ends the byte leaves on the wire and TC is set if TDR is empty.
// A DR write while TXE=0 overwrites TDR (a byte is lost): reported as an error.
// Receive: the board's wire calls receive() when a frame has arrived. RDR takes the byte and
// RXNE is set; if RXNE was still set the new byte is lost and ORE is set, as on silicon, and
// from then on every byte is lost until ORE is cleared (silicon stops raising RXNE). IDLE is
// set one frame time after the last frame if no other arrives. RXNE is cleared by reading DR
// (or writing 0); ORE/IDLE/NE/FE/PE by reading SR then DR; TC by writing 0 or SR-read + DR write.
// DMA: CR3.DMAR requests DMA1 channel 5 at each received byte, CR3.DMAT channel 4 while TXE.
// Interrupt 37 follows TXEIE/TCIE/RXNEIE/IDLEIE with their flags.
#pragma once

#include "bluepill/peripheral.hpp"
#include "bluepill/time.hpp"

namespace bluepill {

class Usart final : public WordRegisters {
 public:
  unsigned narrowest_write() const override { return 2; }
  explicit Usart(Chip& chip) : WordRegisters(chip, "USART1", 0x40013800, 0x400) {}
  void reset() override;
  bool clocked() const override;
  bool held_in_reset() const override;

  // Frame duration in virtual time, 0 if the USART cannot run (UE=0 or BRR=0).
  Cycles frame_cycles() const;
  bool receiver_on() const;
  // The receiver was on at some time since the last reset (a byte lost before that is only the
  // firmware not having started yet; after, it is the firmware switching it off).
  bool has_been_on() const { return has_been_on_; }
  // A frame has completely arrived. Returns false if the receiver was off (the byte is lost).
  bool receive(std::uint8_t byte, Cycles when);
  // DMA side of DR (no SR-read sequence involved).
  std::uint8_t dma_read_dr();
  void dma_write_dr(std::uint8_t b) { write_dr(b); }
  std::uint32_t baud() const;
  void dma_channel_changed() { update_dma(); }
  // The next byte finds RDR still full, as if the DMA had been held off past a character time:
  // it is lost and ORE is set (fault injection for tests).
  void overrun_next() { overrun_next_ = true; }

 protected:
  std::uint32_t read32(std::uint32_t offset) override;
  void write32(std::uint32_t offset, std::uint32_t value) override;

 private:
  void write_dr(std::uint32_t v);
  void start_frame(Cycles at);
  void frame_done(Cycles when);
  void update_irq();
  void update_dma();
  void check_link(bool tx);  // the rate against the far end's, the TX/RX pin modes (each reported once)
  bool rate_mismatch() const;  // more than 2.5 % off the far end's (Config::link_baud): bytes are garbled
  static std::uint8_t resampled(std::uint8_t byte, std::uint64_t from, std::uint64_t to, bool& framing);

  std::uint32_t sr_ = 0, brr_ = 0, cr1_ = 0, cr2_ = 0, cr3_ = 0, gtpr_ = 0;
  std::uint8_t tdr_ = 0, shift_ = 0, rdr_ = 0;
  bool shifting_ = false;
  bool sr_read_ = false;  // SR was read: the next DR access clears the error flags / TC
  Scheduler::Id tx_event_ = 0, idle_event_ = 0;
  bool dma_busy_ = false;
  bool overrun_next_ = false;
  bool has_been_on_ = false;
  bool warned_deaf_ = false;  // one warning per overrun for the bytes lost while ORE is set
  bool warned_tx_pin_ = false, warned_rx_pin_ = false, warned_baud_ = false;
};

}  // namespace bluepill

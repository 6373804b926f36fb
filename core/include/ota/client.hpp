// The device side of an update: the OTA client library a user puts in their application (and the
// bootloader runs in recovery mode). Portable: it reaches the board only through the flash map
// and the link.
//
// Use (see docs/client-library.md):
//     ota::UpdateClient client(map, link, info);
//     client.boot();                       // once, at start-up: HELLO with any pending report
//     for (;;) {
//       client.receive(bytes, n);          // whatever the UART delivered
//       if (client.reset_requested() && uart_drained()) system_reset();
//     }
//
// What it does, in the spec's terms: START is checked (size against the staging limit, packet
// parameters, vector table) before anything is erased; DATA is stored in order from the start of
// the staging area, each staging unit erased just before its first packet and marked done in the
// journal once written and verified, so that an interrupted download resumes; after the last
// packet the CRC-32 of everything stored is compared with START's; equal: "OTA-START" is written,
// RESULT ok is sent and a reset is requested. At boot, "OTA-SUCCESS" is reported in HELLO until
// the server acknowledges it, then cleared. A leftover "OTA-START" (the install failed) is
// reported as such and does not block a new START.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/flags.hpp"
#include "ota/link.hpp"
#include "ota/protocol.hpp"

namespace ota {

struct DeviceInfo {
  Role role = Role::application;
  std::uint32_t app_version = 0;
  // ota_app_info.product, said in HELLO; an application refuses images of another product. The
  // bootloader takes any; in recovery it says the product of the valid application it holds
  // (kProductHeld: one whose app info it cannot find), for the server's rule.
  std::uint32_t product = 0;
  std::uint8_t uid[12] = {};
  // DATA frames the server may keep in flight: as many as the receive buffer holds whole while
  // the CPU is stalled by flash operations (stm32f1::kLinkWindow for the port's USART1 ring). Left
  // at 1, the server waits for each ACK: slower, but no receive buffer of one frame is overrun.
  std::uint8_t window = 1;
  // The rate of the link this client talks over (stm32f1: usart1::kBaud), 0 if not fixed: an image
  // whose app info names another is refused (installed, it could not be reached over this link).
  std::uint32_t link_baud = 0;
};

class UpdateClient {
 public:
  // The client keeps a reference to `map`, which must outlive it (a temporary does not compile).
  UpdateClient(const FlashMap& map, Link& link, const DeviceInfo& info);
  UpdateClient(const FlashMap&&, Link&, const DeviceInfo&) = delete;  // any temporary, const ones too

  // Announces the device (HELLO, with the pending report if any). Call once at start-up.
  void boot();
  void receive(const std::uint8_t* bytes, std::size_t len);
  void receive(std::uint8_t byte);

  // True once the download is verified and "OTA-START" written: reset when the link has drained.
  bool reset_requested() const { return reset_requested_; }
  // From an accepted START until the download ends, is ABORTed or the device resets. The client
  // keeps no clock: a server that goes away mid-download leaves it true (to show "updating" only
  // while frames come, watch frames_received() against your own clock).
  bool downloading() const { return active_; }
  // Frames received whole (CRC right, of the server's direction), modulo 256: a change says that
  // a server is there; line noise and the device's own echo do not make frames. The bootloader's recovery idle timer watches it.
  std::uint8_t frames_received() const { return frames_; }

 private:
  // "OTA-START" without a reset of our own pending means the bootloader failed to install the
  // staged image (and started the application it kept, or stayed in recovery mode): say so in
  // HELLO and take an image again.
  bool install_failed() const { return !reset_requested_; }
  void on_frame(const Frame& f);
  void on_start(const Start& s);
  void on_data(const std::uint8_t* p, std::size_t len);
  bool store(std::uint32_t index, const std::uint8_t* p, std::uint32_t len);
  void finish_download();
  Status layout_check() const;
  void send(MsgType t, const std::uint8_t* payload, std::size_t len);
  void send_hello();
  void send_status(MsgType t, Status s);
  void send_start_reply(Status s);
  void send_ack();
  void send_nak(Status s);
  void send_result();
  std::uint32_t packet_len(std::uint32_t index) const;

  const FlashMap& map_;
  Link& link_;
  DeviceInfo info_;
  FlagStore flags_;
  Journal journal_;
  FrameDecoderBuffer<2 + kMaxChunk> decoder_;

  JournalRecord session_;
  std::uint32_t initial_sp_ = 0;  // START's vector table words, checked against DATA 0
  std::uint32_t reset_vector_ = 0;
  std::uint16_t next_ = 0;        // next DATA index expected
  bool active_ = false;           // a START was accepted and the download is not finished
  bool begun_ = false;            // the journal holds this download (a new one: once packet 0 matched)
  bool nak_sent_ = false;         // one NAK per gap: further frames of the gap are dropped quietly
  bool finished_ = false;         // the download ended; result_ is repeated to late DATA
  bool reset_requested_ = false;
  std::uint8_t frames_ = 0;
  static constexpr std::uint8_t kRecoverAnswerEvery = 32;  // divides 256: the count may wrap
  std::uint8_t recovers_ = 0;  // RECOVERs in a row (frames of other types end a run)
  Result result_;
};

}  // namespace ota

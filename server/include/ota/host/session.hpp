// One device's update, as the server sees it: a state machine over the shared protocol source,
// with no I/O of its own. The transport (serial port, TCP, an in-process simulation) feeds it the
// bytes it receives and the time, and sends what take_output() returns. That keeps the same code
// for one device on a bench and for many devices behind a listening socket.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ota/frame.hpp"
#include "ota/protocol.hpp"

namespace ota::host {

struct SessionOptions {
  std::uint16_t packet_size = kMaxChunk;  // capped by the device's max_chunk
  std::uint8_t window = 0;                // 0: as many as the device allows
  bool force = false;                     // push even if the device already runs this version
  // When set, decides `force` for the device that said HELLO (ota serve: once per device, not
  // again each time a device it already upgraded dials in).
  std::function<bool(const Hello&)> force_for;
  std::optional<LayoutId> layout;         // the layout the image was built for, if known
  std::uint32_t product = 0;              // the image's product id (app_info.hpp), 0: none named
  std::uint32_t image_link_baud = 0;      // the link rate its app info names, 0: none
  std::uint32_t link_baud = 0;            // the rate this link runs at (a serial port), 0: unknown (TCP)
  // Recover a device whose application crashes at boot: send RECOVER every few milliseconds so
  // that one lands in the bootloader's listening window, and talk only to the bootloader.
  bool recover = false;
  // With `recover`, for a fleet (`ota serve --recover`): RECOVER only reaches the devices whose
  // application does not answer; an application that answers is updated by itself, and a
  // bootloader is offered its own product's image only, as an application is (a healthy device
  // that dials in during its bootloader's listening window must not change product).
  bool recover_fleet = false;
  // With recover_fleet: false for a device whose bootloader must not be offered the image again
  // (ota serve: one that this serve already gave the whole image; its application crashed or
  // hung, or its bootloader would not answer RECOVER: given again, the same image would be
  // installed after every reset).
  std::function<bool(const Hello&)> recover_again;
  // Only ask who the device is (`ota status`): the first HELLO (the bootloader's, with `recover`)
  // ends the session as `answered`; nothing is offered, no report is acknowledged.
  bool query = false;
  std::uint32_t hello_interval_ms = 500;  // HELLO_REQ period while waiting for the device
  std::uint32_t hello_timeout_ms = 10000;
  // No progress for this long: re-send. The session raises it to the round trips it measures
  // (srtt + 4 x rttvar, as TCP's timer), never below this.
  std::uint32_t reply_timeout_ms = 1500;
  // Re-sends, refusals (NAKs) and device restarts in a row without a packet stored beyond the
  // furthest one so far; one more ends the session (timeout).
  std::uint32_t max_retries = 12;
  std::uint32_t reboot_timeout_ms = 30000;  // from download OK to the new application's HELLO
  // Talk only to the device with this uid: a HELLO from another ends the session (link_lost,
  // foreign_device()). push_tcp sets it on reconnects, to the device it began with.
  std::optional<std::array<std::uint8_t, 12>> device_uid;
};

// How the hello phase asks who is on the link, and how often: HELLO_REQ every hello_interval_ms,
// or, with `recover`, RECOVER often enough that one lands in the bootloader's listening window.
// A connection that dials in during a push is asked the same way (push_tcp).
MsgType hello_ask(const SessionOptions& o);
std::uint32_t hello_ask_interval_ms(const SessionOptions& o);

enum class Outcome : std::uint8_t {
  pending,
  upgraded,         // the device reported upgrade OK running the image's version
  up_to_date,       // the device already ran that version; nothing sent
  answered,         // (query) the device said who it is
  refused,          // the device refused START or the image (reason in detail)
  checksum_failed,  // download finished but the total CRC-32 did not match
  upgrade_failed,   // the device came back without the new version
  timeout,          // the device stopped answering
  link_lost,        // the transport reported the link down
  no_link,          // the serial port could not be opened, or the TCP address not listened on
  interrupted,      // stopped by the user (SIGINT, SIGTERM)
  protocol_error,   // the device speaks another protocol version or sent nonsense
};
const char* to_string(Outcome o);
std::string uid_hex(const Hello& h);  // 24 lowercase hex digits
std::string hex8(std::uint32_t v);     // 8 uppercase hex digits: a product id, a CRC-32
// What a HELLO says, in one line: who runs, on which layout, its pending report and download.
std::string describe(const Hello& h);

// The longest a stopped session waits for the device to answer its ABORT: under systemd's
// default stop timeout (90 s), whatever the reply timeout.
inline constexpr std::uint64_t kMaxStopWaitMs = 60'000;

enum class Phase : std::uint8_t { hello, start, download, reboot, report_ack, done };
const char* to_string(Phase p);

struct Event {
  // "hello", "other" (a second uid answers on the link), "recover", "abort", "start", "resume",
  // "retry", "nak", "downloaded", "done"; the
  // transport adds "open", "connect" and "disconnect" (push.hpp)
  std::string kind;
  std::string text;  // one human-readable line
  std::uint32_t acked = 0;  // packets acknowledged when it happened (progress is shown in order)
};

class Session {
 public:
  Session(std::vector<std::uint8_t> image, std::uint32_t version, SessionOptions options = {});

  void begin(std::uint64_t now_ms);
  void on_bytes(const std::uint8_t* data, std::size_t len, std::uint64_t now_ms);
  void on_tick(std::uint64_t now_ms);
  void on_link_lost(std::uint64_t now_ms);
  // The user stops the push (Ctrl-C): a download under way is ABORTed (the device keeps what it
  // stored, so the next push resumes), and the session ends `interrupted` once the device has
  // answered (or 2 reply timeouts have passed, at most kMaxStopWaitMs): the frames already sent
  // may have completed the download first, which detail() then says.
  void interrupt(std::uint64_t now_ms);

  std::vector<std::uint8_t> take_output();
  std::vector<Event> take_events();

  bool done() const { return phase_ == Phase::done; }
  Phase phase() const { return phase_; }
  // RESULT ok came: the device holds this image, verified.
  bool delivered() const { return delivered_; }
  Phase ended_in() const { return ended_in_; }  // the phase it was in when it ended
  Outcome outcome() const { return outcome_; }
  const std::string& detail() const { return detail_; }
  const std::optional<Hello>& device() const { return device_; }
  // The application version the device's first HELLO in this session said it ran (0: its
  // bootloader answered, or no HELLO yet).
  std::uint32_t first_version() const { return first_version_; }
  bool foreign_device() const { return foreign_; }  // ended on a HELLO from another device_uid
  std::uint32_t packets_acked() const { return base_; }
  std::uint32_t packet_count() const { return count_; }
  std::uint32_t frames_sent() const { return frames_sent_; }
  std::uint32_t resends() const { return resends_; }
  std::uint32_t image_crc() const { return crc_; }
  // How long a silence means "no answer" now: reply_timeout_ms, or more where the round trips
  // measured are longer. The transports judge "is the device still talking" by it too.
  std::uint64_t reply_timeout() const;
  // When no frame of the device's came (since the start, or the reboot phase): "; the device
  // printed text ..." or "; the device sent N bytes that made neither a frame nor text: a link at
  // another baud rate ...". Empty otherwise. The words that end the session include it.
  std::string unframed_bytes() const;

 private:
  void on_frame(const Frame& f, std::uint64_t now);
  void on_stopping_frame(const Frame& f);
  std::string stopped_by_user() const;  // "stopped by the user during <phase>"
  void tally(std::uint8_t byte, FrameDecoder::Event e);
  void forget_unframed();
  std::string line_so_far() const;  // the line being received, "..." after it when cut
  void on_hello(const Hello& h, std::uint64_t now);
  void handshake(const Hello& h, std::uint64_t now);
  void send_frame(MsgType t, const std::uint8_t* payload, std::size_t len, bool flush);
  void send_start(std::uint64_t now);
  void pump(std::uint64_t now);
  void go_back(std::uint32_t next, std::uint64_t now);
  void rehello(std::uint64_t now);
  void ask_hello();
  void finish(Outcome o, std::string detail);
  bool end_reported(const char* why);
  void event(std::string kind, std::string text);
  void progress(std::uint64_t now) { last_progress_ = now; retries_ = 0; }
  void measured(std::uint64_t rtt);
  void acknowledged(std::uint32_t packets, std::uint64_t now);
  bool retry_spent() { return ++retries_ > opt_.max_retries; }

  std::vector<std::uint8_t> image_;
  std::uint32_t version_;
  std::uint32_t crc_;
  SessionOptions opt_;
  std::uint16_t packet_size_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t window_ = 1;
  std::uint32_t base_ = 0;  // every packet below is stored on the device
  std::uint32_t next_ = 0;  // next packet to send
  std::uint32_t sent_ = 0;  // packets below were sent at least once (one sent again is a re-send)
  // Packets in flight allowed now, up to window_: 1 after a reply timeout (the device may only be
  // slow, its ring still full of what we sent: re-sending a whole window would overrun it, and
  // costs a metered link a window of bytes), doubled by each DATA_ACK that moves base.
  std::uint32_t in_flight_ = 1;
  std::uint32_t frames_sent_ = 0;
  std::uint32_t resends_ = 0;
  std::uint32_t retries_ = 0;
  std::uint32_t furthest_ = 0;  // the most packets the device has said it holds, this session
  std::uint64_t start_sent_at_ = 0;      // when START went out (if once)
  std::vector<std::uint64_t> sent_at_;   // per packet: when it went out (if once)
  bool rtt_measured_ = false;            // srtt_ and rttvar_ hold a measurement
  std::uint64_t srtt_ = 0;               // smoothed round trip
  std::uint64_t rttvar_ = 0;
  bool stopping_ = false;  // the user stopped it: ABORT sent, waiting for the device's answer
  std::uint64_t stop_deadline_ = 0;
  bool restarted_ = false;      // the device restarted during the download (HELLO, NAK no_session)
  std::uint8_t aborts_ = 0;  // ABORTs sent for a download the device had in progress
  bool delivered_ = false;   // RESULT ok: the device holds this image, verified
  bool told_reset_ = false;  // recover: the "reset the device" hint was given
  std::uint64_t phase_start_ = 0;
  std::uint64_t last_progress_ = 0;
  std::uint64_t last_hello_req_ = 0;
  Phase phase_ = Phase::hello;
  Phase ended_in_ = Phase::hello;
  Outcome outcome_ = Outcome::pending;
  std::string detail_;
  std::optional<Hello> device_;
  std::uint32_t first_version_ = 0;
  bool same_version_ = false;  // the download replaces the version the device runs (force)
  bool foreign_ = false;
  bool other_told_ = false;  // a HELLO of a second uid on this link was named
  FrameDecoderBuffer<64> decoder_;
  // Since the session began or reached the reboot phase: bytes outside any frame (text, 0x00s,
  // anything else), the last text line, and whether a frame of the device's came (a frame of the
  // server's direction is our own echo; one that does not decode is garble that passed the CRC).
  std::uint64_t text_bytes_ = 0, other_bytes_ = 0;
  std::uint32_t stretch_text_ = 0, stretch_other_ = 0;  // the bytes since the last 0x00
  static constexpr std::size_t kLineKept = 60;          // characters of a line quoted
  std::string line_, last_line_;
  bool line_cut_ = false;                               // line_ had more than kLineKept
  std::uint32_t boot_lines_ = 0;                        // the bootloader's kBootLine lines among them
  bool framed_ = false;
  std::vector<std::uint8_t> out_;
  std::vector<Event> events_;
};

}  // namespace ota::host

#include "ota/host/session.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <utility>

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/crc.hpp"

namespace ota::host {

namespace {
// The reply timeout follows the round trips measured, up to this.
constexpr std::uint64_t kMaxReplyTimeoutMs = 60'000;
constexpr std::uint64_t kNotTimed = ~std::uint64_t{0};  // sent more than once: no round trip
// RECOVER's period: several fit in the bootloader's listening window (kRecoverWindowMs).
constexpr std::uint64_t kRecoverIntervalMs = kRecoverWindowMs / 5;
// ABORTs sent for another image's download the device still holds, before giving up.
constexpr std::uint8_t kMaxAborts = 3;

}  // namespace

std::string hex8(std::uint32_t v) {
  char b[9];
  std::snprintf(b, sizeof b, "%08X", static_cast<unsigned>(v));
  return b;
}

std::string uid_hex(const Hello& h) {
  std::string s;
  char b[3];
  for (std::uint8_t x : h.uid) std::snprintf(b, sizeof b, "%02x", x), s += b;
  return s;
}

std::string describe(const Hello& h) {
  const Layout* l = layout_by_id(h.layout);
  std::string s = h.role == Role::recovery ? std::string("bootloader in recovery mode")
                                           : "application v" + std::to_string(h.app_version);
  const std::string held = h.app_version ? "application v" + std::to_string(h.app_version) : "an application";
  if (h.role == Role::recovery && h.product == kProductHeld) s += ", holding a valid application";
  else if (h.role == Role::recovery && h.product != 0) s += ", holding " + held + " of product " + hex8(h.product);
  else if (h.role == Role::recovery && h.app_version != 0) s += ", holding application v" + std::to_string(h.app_version);
  else if (h.product != 0) s += " of product " + hex8(h.product);
  s += std::string(", ") + (l ? l->name : "unknown") + " layout, images up to " +
       std::to_string(h.staging_capacity) + " bytes; ";
  s += h.report == Report::upgrade_ok      ? "reports an upgrade not yet acknowledged"
       : h.report == Report::download_ok    ? "a verified image waits to be installed"
       : h.report == Report::install_failed ? "reports that the staged image could not be installed"
                                            : "no report";
  if (h.session_next != kNoSession)
    s += "; a download of the image with CRC-32 " + hex8(h.session_crc) + " resumes at packet " +
         std::to_string(h.session_next);
  return s;
}

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::pending: return "pending";
    case Outcome::upgraded: return "upgraded";
    case Outcome::up_to_date: return "up-to-date";
    case Outcome::answered: return "answered";
    case Outcome::refused: return "refused";
    case Outcome::checksum_failed: return "checksum-failed";
    case Outcome::upgrade_failed: return "upgrade-failed";
    case Outcome::timeout: return "timeout";
    case Outcome::link_lost: return "link-lost";
    case Outcome::no_link: return "no-link";
    case Outcome::interrupted: return "interrupted";
    case Outcome::protocol_error: return "protocol-error";
  }
  return "?";
}

const char* to_string(Phase p) {
  switch (p) {
    case Phase::hello: return "hello";
    case Phase::start: return "start";
    case Phase::download: return "download";
    case Phase::reboot: return "reboot";
    case Phase::report_ack: return "report";
    case Phase::done: return "done";
  }
  return "?";
}

Session::Session(std::vector<std::uint8_t> image, std::uint32_t version, SessionOptions options)
    : image_(std::move(image)),
      version_(version),
      crc_(crc32(image_.data(), image_.size())),
      opt_(options) {}

void Session::begin(std::uint64_t now) {
  phase_ = Phase::hello;
  phase_start_ = last_hello_req_ = last_progress_ = now;
  if (!opt_.query && image_.size() < 8) {
    finish(Outcome::refused, "image smaller than a vector table");
    return;
  }
  ask_hello();
}

MsgType hello_ask(const SessionOptions& o) { return o.recover ? MsgType::recover : MsgType::hello_request; }

std::uint32_t hello_ask_interval_ms(const SessionOptions& o) {
  return o.recover ? static_cast<std::uint32_t>(kRecoverIntervalMs) : o.hello_interval_ms;
}

// In the hello phase: HELLO_REQ, or RECOVER when recovering a device that crashes at boot.
void Session::ask_hello() { send_frame(hello_ask(opt_), nullptr, 0, true); }

void Session::on_bytes(const std::uint8_t* data, std::size_t len, std::uint64_t now) {
  for (std::size_t i = 0; i < len && !done(); ++i) {
    const FrameDecoder::Event e = decoder_.feed(data[i]);
    tally(data[i], e);
    if (e == FrameDecoder::Event::frame) on_frame(decoder_.frame(), now);
  }
}

namespace {
// A frame the device sends, whole: garble that passes the CRC by chance (1 in 65536 per stretch)
// rarely makes one, and our own frames echoed back are of the other direction.
bool device_frame(const Frame& f) {
  Hello h;
  StartReply sr;
  Nak n;
  Result r;
  switch (static_cast<MsgType>(f.type)) {
    case MsgType::hello: return decode(f, h);
    case MsgType::start_reply: return decode(f, sr);
    case MsgType::data_ack: return f.len == 2;
    case MsgType::data_nak: return decode(f, n);
    case MsgType::result: return decode(f, r);
    default: return false;
  }
}
}  // namespace

// Each byte counted as text or not; a stretch up to a 0x00 that made a frame is not counted.
void Session::tally(std::uint8_t b, FrameDecoder::Event e) {
  if (b != kFrameDelimiter) {
    const bool text = (b >= 0x20 && b < 0x7F) || b == '\r' || b == '\n' || b == '\t';
    ++(text ? stretch_text_ : stretch_other_);
    if (b == '\r' || b == '\n') {
      if (!line_.empty()) {
        last_line_ = line_so_far();
        boot_lines_ += last_line_.rfind(kBootLine, 0) == 0;
        line_.clear();
        line_cut_ = false;
      }
    } else if (text && line_.size() < kLineKept) {
      line_ += static_cast<char>(b);
    } else if (text) {
      line_cut_ = true;
    }
    return;
  }
  if (e == FrameDecoder::Event::frame) {
    framed_ = framed_ || device_frame(decoder_.frame());
    line_.clear();
    line_cut_ = false;
  } else {
    text_bytes_ += stretch_text_;
    other_bytes_ += stretch_other_;
  }
  stretch_text_ = stretch_other_ = 0;
}

std::string Session::line_so_far() const { return line_ + (line_cut_ ? "..." : ""); }

void Session::forget_unframed() {
  text_bytes_ = other_bytes_ = 0;
  stretch_text_ = stretch_other_ = 0;
  line_.clear();
  line_cut_ = false;
  last_line_.clear();
  boot_lines_ = 0;
  framed_ = false;
}

// Bytes came and no frame of the device's: text at the right rate (what it printed says who it
// is), or bytes that are no text, as a link at another rate than the device's garbles them.
// 0x00s say neither (a line held low, a client's delimiters, our own echoed flush).
std::string Session::unframed_bytes() const {
  if (framed_) return "";
  const std::uint64_t text = text_bytes_ + stretch_text_, other = other_bytes_ + stretch_other_;
  if (text > 0 && other * 8 <= text) {
    // The bootloader's first line again and again: a device that resets over and over. (Not while
    // a --recover push waits for its bootloader: the user was asked to press reset, and each press
    // says it too.)
    if (boot_lines_ >= 3 && !(opt_.recover && phase_ == Phase::hello))
      return "; the device's bootloader started " + std::to_string(boot_lines_) +
             " times and no frame came: it resets over and over (an application that crashes or hangs at boot, "
             "and its watchdog); `--recover` reaches its bootloader";
    const std::string last = line_.empty() ? last_line_ : line_so_far();
    return "; the device printed text but sent no frame" +
           (last.empty() ? std::string() : " (its last line: \"" + last + "\")");
  }
  const std::uint64_t n = text + other;
  if (n == 0) return "";
  return "; the device sent " + std::to_string(n) + (n == 1 ? " byte" : " bytes") +
         " that made neither a frame nor text: a link at another baud rate than the device's (a serial "
         "push's `--baud`, or the modem's serial side)";
}

// What a device that holds the whole image, verified, does with it.
constexpr const char* kInstallsIt = "; the device holds the whole image and installs it now (`ota status` tells when it runs)";
// The same, once the link went with the reset that installs it.
constexpr const char* kInstalling =
    "; the device holds the whole image, verified, and was installing it (its reset may have taken the link with it: "
    "`ota status` tells when it runs)";

// In the report phase the device has already said it runs our image with "upgrade OK": whatever
// ends the session now (`why`) ends it upgraded. False in any other phase.
bool Session::end_reported(const char* why) {
  if (phase_ != Phase::report_ack) return false;
  finish(Outcome::upgraded, "running v" + std::to_string(version_) + " (" + why + ")");
  return true;
}

void Session::on_link_lost(std::uint64_t) {
  if (done() || end_reported("link lost before the device cleared its report")) return;
  if (stopping_) {
    finish(Outcome::interrupted, stopped_by_user() + "; then the link was lost before the device answered the ABORT");
    return;
  }
  finish(Outcome::link_lost, std::string("link lost during ") + to_string(phase_) +
                                 (phase_ == Phase::reboot && delivered_ ? kInstalling : "") +
                                 (phase_ == Phase::hello || phase_ == Phase::reboot ? unframed_bytes() : ""));
}

// During START or the download the ABORT goes out behind what was already sent: up to a window of
// DATA frames, which may complete the download before the ABORT arrives. So the session waits
// for the device's answer (HELLO to the ABORT, or RESULT) and says which it was.
void Session::interrupt(std::uint64_t now) {
  if (done() || end_reported("stopped before the device cleared its report")) return;
  if (stopping_) return;
  if (phase_ != Phase::start && phase_ != Phase::download) {
    // After RESULT ok (or a HELLO that reports this image downloaded) the device holds the whole
    // image, verified, and installs it at its reset. (Waiting for another image's install, it
    // holds none of this one.)
    const bool holds_it = (count_ > 0 && base_ == count_) ||
                          (device_ && device_->report == Report::download_ok && device_->session_crc == crc_);
    finish(Outcome::interrupted, stopped_by_user() + (phase_ == Phase::reboot && holds_it ? kInstallsIt : ""));
    return;
  }
  send_frame(MsgType::abort, nullptr, 0, true);
  event("abort", "stopped by the user: ABORT sent, waiting for the device to confirm it");
  stopping_ = true;
  stop_deadline_ = now + std::min(2 * reply_timeout(), kMaxStopWaitMs);
}

std::string Session::stopped_by_user() const { return std::string("stopped by the user during ") + to_string(phase_); }

// What the device answered after the user's ABORT (interrupt()). The DATA frames sent before the
// ABORT are still acknowledged meanwhile: they count, as in the download. A HELLO from another
// uid (a clone on the same link) is no answer.
void Session::on_stopping_frame(const Frame& f) {
  const std::string stopped = stopped_by_user();
  Hello h;
  Result r;
  if (f.type == static_cast<std::uint8_t>(MsgType::data_ack) && f.len == 2 && phase_ == Phase::download) {
    const std::uint32_t n = get_u16(f.payload);
    if (n > base_ && n <= count_) base_ = n;
  } else if (f.type == static_cast<std::uint8_t>(MsgType::hello) && decode(f, h)) {
    if (device_ && !std::equal(std::begin(h.uid), std::end(h.uid), std::begin(device_->uid))) return;
    device_ = h;
    const bool ours = h.session_crc == crc_ && h.session_next != kNoSession && h.session_next != 0;
    // The frames before the ABORT completed the download and its RESULT ok was lost: the HELLO
    // reports the verified image (OTA-START), which the device installs.
    if (ours && h.report == Report::download_ok) {
      base_ = next_ = count_;
      finish(Outcome::interrupted, stopped + ", too late: the whole image had reached the device before the ABORT" + kInstallsIt);
      return;
    }
    finish(Outcome::interrupted,
           stopped + (ours ? "; the device keeps " + std::to_string(h.session_next) + " of " +
                                 std::to_string(count_) + " packets, the next push resumes there"
                           : "; the device kept nothing to resume from"));
  } else if (f.type == static_cast<std::uint8_t>(MsgType::result) && decode(f, r)) {
    if (r.status == Status::ok) base_ = next_ = count_;
    finish(Outcome::interrupted,
           stopped + (r.status == Status::ok
                          ? std::string(", too late: the whole image had reached the device before the ABORT") + kInstallsIt
                          : std::string(", and the download ended before the ABORT: ") + to_string(r.status)));
  }
}

std::vector<std::uint8_t> Session::take_output() { return std::exchange(out_, {}); }
std::vector<Event> Session::take_events() { return std::exchange(events_, {}); }

void Session::event(std::string kind, std::string text) {
  events_.push_back(Event{std::move(kind), std::move(text), base_});
}

void Session::finish(Outcome o, std::string detail) {
  ended_in_ = phase_;
  phase_ = Phase::done;
  outcome_ = o;
  detail_ = std::move(detail);
  event("done", std::string(to_string(o)) + (detail_.empty() ? "" : ": " + detail_));
}

void Session::send_frame(MsgType t, const std::uint8_t* payload, std::size_t len, bool flush) {
  std::uint8_t buf[encoded_size_max(2 + kMaxChunk) + 1];
  std::size_t at = 0;
  if (flush) buf[at++] = kFrameDelimiter;  // ends any partial frame the device holds
  at += encode_frame(static_cast<std::uint8_t>(t), payload, len, buf + at, sizeof buf - at);
  out_.insert(out_.end(), buf, buf + at);
}

void Session::send_start(std::uint64_t now) {
  // START's reply times a round trip from the first START: on a link with seconds of latency
  // every START times out and goes again before the first reply, and the time since the first
  // is the only measure there is (an overestimate when a START was lost, which the packets'
  // round trips then bring down).
  if (phase_ != Phase::start) start_sent_at_ = now;
  phase_ = Phase::start;
  last_progress_ = now;
  Start s;
  s.image_size = static_cast<std::uint32_t>(image_.size());
  s.image_crc = crc_;
  s.image_version = version_;
  s.packet_size = packet_size_;
  s.packet_count = static_cast<std::uint16_t>(count_);
  s.initial_sp = get_u32(image_.data());
  s.reset_vector = get_u32(image_.data() + 4);
  std::uint8_t p[Start::kSize];
  encode(s, p);
  send_frame(MsgType::start, p, sizeof p, true);
}

void Session::on_frame(const Frame& f, std::uint64_t now) {
  if (stopping_) {
    on_stopping_frame(f);
    return;
  }
  switch (static_cast<MsgType>(f.type)) {
    case MsgType::hello: {
      Hello h;
      if (decode(f, h)) on_hello(h, now);
      return;
    }
    case MsgType::start_reply: {
      StartReply r;
      if (phase_ != Phase::start || !decode(f, r)) return;
      if (start_sent_at_ <= now) measured(now - start_sent_at_);
      const bool other_download = r.status == Status::busy && device_ && device_->report != Report::download_ok;
      if (other_download && aborts_ < kMaxAborts) {
        // Another image's download was left unfinished (its server went away): drop it. The
        // ABORT may be lost on the link like any frame: a few tries.
        if (aborts_ == 0) event("abort", "device is busy with another download; aborting it");
        ++aborts_;
        send_frame(MsgType::abort, nullptr, 0, true);
        send_start(now);
        start_sent_at_ = now;  // a new exchange: its reply is timed from this START
        return;
      }
      if (other_download) {
        finish(Outcome::refused, "busy with another download, which " + std::to_string(kMaxAborts) +
                                     " ABORTs did not end");
        return;
      }
      if (r.status == Status::flash_error && device_ && device_->layout == LayoutId::external) {
        finish(Outcome::refused, "flash error: the device cannot use its external flash (is the W25Q "
                                 "wired and powered? docs/flashing.md)");
        return;
      }
      if (r.status != Status::ok) {
        finish(Outcome::refused, to_string(r.status));
        return;
      }
      if (r.next > count_) {
        finish(Outcome::protocol_error, "device resumes beyond the last packet");
        return;
      }
      if (r.next > 0)  // before the progress it makes
        event("resume", "resuming at packet " + std::to_string(r.next) + " of " +
                            std::to_string(count_));
      base_ = next_ = r.next;
      sent_ = std::max<std::uint32_t>(sent_, r.next);
      in_flight_ = window_;

      phase_ = Phase::download;
      acknowledged(r.next, now);
      pump(now);
      return;
    }
    case MsgType::data_ack: {
      if (phase_ != Phase::download || f.len != 2) return;
      const std::uint32_t n = get_u16(f.payload);
      if (n > base_ && n <= count_) {
        if (n <= sent_at_.size() && sent_at_[n - 1] != kNotTimed && sent_at_[n - 1] <= now)
          measured(now - sent_at_[n - 1]);
        base_ = n;
        next_ = std::max(next_, base_);
        sent_ = std::max(sent_, base_);
        in_flight_ = std::min(window_, 2 * in_flight_);
        acknowledged(n, now);
      }
      pump(now);
      return;
    }
    case MsgType::data_nak: {
      Nak k;
      if (phase_ != Phase::download || !decode(f, k)) return;
      if (k.status == Status::no_session) {
        // The device restarted: ask who it is now (it may have installed the image already,
        // if only our view of RESULT was lost), then offer the image again if still needed.
        event("nak", "device lost the download (restarted?)");
        restarted_ = true;
        rehello(now);
        return;
      }
      if (k.status == Status::invalid_image || k.status == Status::bad_length) {
        finish(Outcome::refused, to_string(k.status));
        return;
      }
      event("nak", std::string(to_string(k.status)) + " at packet " + std::to_string(k.next));
      if (retry_spent()) {
        // (A device refuses every flash write while its supply watch says low: a supply that
        // stays low, or an application that took the watch apart, docs/client-library.md.)
        const bool flash = k.status == Status::flash_error;
        const bool w25q = flash && device_ && device_->layout == LayoutId::external;
        finish(Outcome::timeout, std::string("device keeps refusing: ") + to_string(k.status) +
                                     (w25q    ? " (it cannot write its external flash: is the W25Q write-protected, "
                                                "a wire loose, or the device's supply low? docs/flashing.md)"
                                      : flash ? " (is the device's supply low? its flash is not written below the "
                                                "voltage detector's threshold)"
                                              : ""));
        return;
      }
      go_back(k.next, now);
      return;
    }
    case MsgType::result: {
      Result r;
      if ((phase_ != Phase::download && phase_ != Phase::start) || !decode(f, r)) return;
      if (r.status == Status::ok) {
        base_ = next_ = count_;
        delivered_ = true;
        event("downloaded", "download OK, device installs and restarts");
        phase_ = Phase::reboot;
        phase_start_ = last_hello_req_ = now;
        forget_unframed();  // what the new image says after its reset
      } else if (r.status == Status::crc_mismatch) {
        finish(Outcome::checksum_failed, "device computed CRC-32 " + hex8(r.crc) + ", image has " + hex8(crc_));
      } else if (r.status == Status::invalid_image && opt_.image_link_baud && !opt_.link_baud) {
        // Over TCP the link's rate is the modem's, unknown here: the device may be refusing that.
        finish(Outcome::refused, std::string("download failed: ") + to_string(r.status) +
                                     " (built for another layout, or for another link rate than " +
                                     std::to_string(opt_.image_link_baud) + " baud, the image's?)");
      } else {
        finish(Outcome::refused, std::string("download failed: ") + to_string(r.status));
      }
      return;
    }
    default: return;
  }
}

void Session::on_hello(const Hello& h, std::uint64_t now) {
  if (opt_.device_uid && !std::equal(std::begin(h.uid), std::end(h.uid), opt_.device_uid->begin())) {
    // Another device dialled in where the one being updated was expected to reconnect.
    finish(Outcome::link_lost, "device " + uid_hex(h) + " connected, not the one being updated");
    foreign_ = true;
    return;
  }
  if (device_ && !std::equal(std::begin(h.uid), std::end(h.uid), std::begin(device_->uid))) {
    // Two boards on one link (an RS-485 line, a gateway): this session serves the first that
    // answered; the other is named, once, and not taken for it.
    if (!other_told_)
      event("other", "another device (uid " + uid_hex(h) + ") answers on this link too: ignored, one device per link");
    other_told_ = true;
    return;
  }
  // While we wait (a device that keeps answering RECOVER, an install pending), the same HELLO
  // comes again and again: tell it once. So for the answer to an earlier HELLO_REQ that arrives
  // after START, and for the one that confirms a report was cleared.
  const bool repeated = device_ && device_->role == h.role && device_->app_version == h.app_version &&
                        ((device_->report == h.report &&
                          (phase_ == Phase::hello || phase_ == Phase::reboot || phase_ == Phase::start)) ||
                         phase_ == Phase::report_ack);
  if (!device_) first_version_ = h.role == Role::application ? h.app_version : 0;
  device_ = h;
  if (!repeated)
    event("hello", (h.role == Role::recovery ? std::string("bootloader (recovery mode)") +
                                                   (h.app_version ? ", holding application v" + std::to_string(h.app_version)
                                                                  : "")
                                               : "application v" + std::to_string(h.app_version)) +
                     (h.report == Report::upgrade_ok && h.role == Role::recovery
                          ? ", reports an install that no server has acknowledged (its application has "
                            "not reached a server since, or does not run the update client)"
                      : h.report == Report::upgrade_ok  ? ", reports upgrade OK"
                      : h.report == Report::download_ok ? ", reports download OK"
                      : h.report == Report::install_failed
                          ? ", reports that it could not install the staged image (flash failure)"
                          : ""));
  if (h.protocol < kOldestProtocolVersion || h.protocol > kProtocolVersion) {
    // A query still says who it is: every version keeps HELLO's first 40 bytes.
    if (opt_.query && !(opt_.recover && h.role != Role::recovery))
      finish(Outcome::answered, describe(h) + "; it speaks protocol " + std::to_string(h.protocol) +
                                    ", which this server does not (a newer ota updates it)");
    else
      finish(Outcome::protocol_error, "device speaks protocol " + std::to_string(h.protocol));
    return;
  }
  if (opt_.layout && h.layout != *opt_.layout) {
    const Layout* want = layout_by_id(*opt_.layout);
    const Layout* has = layout_by_id(h.layout);
    finish(Outcome::refused, std::string("image is built for the ") + (want ? want->name : "?") +
                                 " layout, the device has the " + (has ? has->name : "unknown") + " layout");
    return;
  }
  if (opt_.image_link_baud && opt_.link_baud && opt_.image_link_baud != opt_.link_baud) {
    // The device answers at this link's rate, the image's application would talk at another: the
    // device would refuse it after the download (client.cpp), and installed it could not be
    // reached over this link again.
    finish(Outcome::refused, "the image's application talks at " + std::to_string(opt_.image_link_baud) +
                                 " baud (its app info says so), the device at " + std::to_string(opt_.link_baud) +
                                 ": build it with -DOTA_USART1_BAUD=" + std::to_string(opt_.link_baud));
    return;
  }
  const bool ours = h.app_version == version_ && h.role == Role::application;
  switch (phase_) {
    case Phase::hello:
      if (opt_.recover && !opt_.recover_fleet && h.role != Role::recovery) {
        if (!told_reset_) event("recover", "the application answers: reset the device so that its bootloader hears RECOVER");
        told_reset_ = true;
        return;
      }
      if (opt_.query) {
        finish(Outcome::answered, describe(h));
        return;
      }
      handshake(h, now);
      return;
    case Phase::start:
      // An answer to an earlier HELLO_REQ, sent before the device saw START (the stream keeps
      // order). If the device restarted instead, the START retry timer offers the image again.
      return;
    case Phase::download:
      // Only a restart makes the device say HELLO now (power, watchdog): start over from the
      // handshake; an unfinished download resumes where the device's journal says.
      restarted_ = true;
      phase_ = Phase::hello;
      phase_start_ = now;
      handshake(h, now);
      return;
    case Phase::reboot:
      if (h.report == Report::download_ok) {  // not restarted yet: what follows is the new image's
        forget_unframed();
        return;
      }
      if (ours && h.report == Report::upgrade_ok) {
        send_frame(MsgType::report_ack, nullptr, 0, true);
        phase_ = Phase::report_ack;
        progress(now);
        return;
      }
      if (ours && !same_version_) {  // the new version runs: its vector table was written last
        finish(Outcome::upgraded,
               "running v" + std::to_string(version_) +
                   (h.report == Report::install_failed
                        ? " (installed, but the install flag could not be cleared: a flash fault "
                          "in the flag or journal area)"
                        : " (no report)"));
        return;
      }
      if (h.report == Report::install_failed) {
        finish(Outcome::upgrade_failed,
               "the bootloader could not install the image (a flash operation failed, or the "
               "supply is low); the device " +
                   (h.role == Role::recovery ? std::string("waits in recovery mode")
                                             : "runs v" + std::to_string(h.app_version) + " as before") +
                   ", push again to retry");
        return;
      }
      if (ours) {  // forced over the same version: the version proves nothing, the report is missing
        finish(Outcome::upgrade_failed, "device came back running v" + std::to_string(version_) +
                                            " as before, without an upgrade report: the image "
                                            "was not installed (or its report was lost)");
        return;
      }
      finish(Outcome::upgrade_failed, "device came back running v" + std::to_string(h.app_version));
      return;
    case Phase::report_ack:
      if (h.report == Report::none) finish(Outcome::upgraded, "running v" + std::to_string(version_));
      return;
    case Phase::done: return;
  }
}

// The device announced itself and no download is under way: decide what to do.
void Session::handshake(const Hello& h, std::uint64_t now) {
  const bool ours = h.app_version == version_ && h.role == Role::application;
  const bool force = opt_.force_for ? opt_.force_for(h) : opt_.force;
  if (h.report == Report::download_ok) {  // an install is pending: wait for it
    phase_ = Phase::reboot;
    phase_start_ = now;
    forget_unframed();  // what the new image says after its reset
    return;
  }
  if (h.report == Report::upgrade_ok) {
    // Acknowledge; ours ends the session, an older one is cleared before we go on. A forced push
    // takes the report as its own only once it has offered the image to a device that ran another
    // version (a restart during the download, after a lost RESULT ok): otherwise the report may
    // be an earlier build's of the same version (its acknowledgement lost with a power cut), and
    // it is cleared and the image sent.
    send_frame(MsgType::report_ack, nullptr, 0, true);
    const bool offered_over_another_version = count_ > 0 && !same_version_;
    if (ours && (!force || offered_over_another_version)) {
      phase_ = Phase::report_ack;
      progress(now);
    }
    return;
  }
  // Another product's application would refuse the image once downloaded (client.cpp), forced
  // or not: say so now. A bootloader that holds a valid application (RECOVER kept it from
  // starting) names its product (kProductHeld: none it could find) and takes another product,
  // but only from a push that asked for it with --recover (not from a fleet's serve).
  if ((h.role == Role::application || !opt_.recover || opt_.recover_fleet) && !products_match(opt_.product, h.product)) {
    const std::string image = "the image is for product " + hex8(opt_.product);
    finish(Outcome::refused,
           h.role == Role::application
               ? image + ", the device runs product " + hex8(h.product) +
                     " (a device takes its own product's images only; `ota push --recover` reaches its "
                     "bootloader, which takes any)"
           : h.product == kProductHeld
               ? image + ", and the device's bootloader holds an application whose product it cannot "
                         "tell: push with --recover to replace it whatever it is"
               : image + ", and the device's bootloader holds an application of product " + hex8(h.product) +
                     ": push with --recover to replace it");
    return;
  }
  // A bootloader whose install failed with the application half copied names no product (it holds
  // no valid application), but its staged image, armed and retried at every reset, is of the
  // device's product: replacing it with an image of a named product (not the staged one: that
  // one resumes) would change the product unasked. Only a push that asked for it with --recover.
  if (h.role == Role::recovery && h.report == Report::install_failed && h.product == 0 && opt_.product != 0 &&
      h.session_crc != crc_ && (!opt_.recover || opt_.recover_fleet)) {
    finish(Outcome::refused, "the device's bootloader holds a failed install of another image (CRC-32 " +
                                 hex8(h.session_crc) + "), which it retries at every reset, and cannot say its product; "
                                 "the image is for product " + hex8(opt_.product) +
                                 ": `ota push --recover` replaces it whatever it is (or push that image again)");
    return;
  }
  if (h.role == Role::recovery && opt_.recover_fleet && opt_.recover_again && !opt_.recover_again(h)) {
    // Its bootloader answering proves the application it installed does not run.
    finish(Outcome::upgrade_failed, "its bootloader answers RECOVER after this serve gave the device the whole "
                                    "image: its application does not run (crashes or hangs?), and the image is not "
                                    "sent twice (`ota push --recover` sends it again)");
    return;
  }
  // A bootloader names the version of the valid application it holds (0: none, or a bootloader
  // before it did): the same rules, so that a healthy device caught in its bootloader's listening
  // window by a --recover serve is neither rolled back nor given its own version again.
  const bool versioned = h.role == Role::application || h.app_version != 0;
  const bool held_ours = h.role == Role::recovery && versioned && h.app_version == version_;
  const char* runs = h.role == Role::application ? "device runs v" : "device's bootloader holds v";
  // A failed install of another image stays armed: every reset tries it again. A push of the
  // version the device has means "keep this one", so the image is sent all the same: its packet 0
  // takes the flag down (client.cpp), and the device ends with this version installed and
  // nothing armed, instead of an "up to date" that the next power cut turns into the other image.
  // (session_crc 0: none staged, or the journal says installed, the flag alone stuck: nothing
  // else to install.)
  const bool armed_other = h.report == Report::install_failed && h.session_crc != 0 && h.session_crc != crc_;
  if (ours && !force && !armed_other) {
    finish(Outcome::up_to_date, "device already runs v" + std::to_string(version_) +
                                    " (versions are compared, not contents: --force sends this image anyway)");
    return;
  }
  // (`ota push --recover` does send it: the user asked to recover this device, whose application
  // may be damaged or crash later than its HELLO, with the version it had.)
  if (held_ours && !force && !armed_other && (!opt_.recover || opt_.recover_fleet)) {
    finish(Outcome::up_to_date, runs + std::to_string(version_) + " already, which it starts after " +
                                    std::to_string(kRecoveryIdleMs / 1000) +
                                    " s without a server (if that application is why it answered RECOVER, crashing at "
                                    "boot, this image does not mend it; versions are compared, not contents: --force "
                                    "sends this image anyway)");
    return;
  }
  // An older image is most likely the wrong file; on a fleet it would roll every device back.
  if (versioned && h.app_version > version_ && !force) {
    finish(Outcome::refused, runs + std::to_string(h.app_version) + ", newer than the image's v" +
                                 std::to_string(version_) + " (--force to downgrade)");
    return;
  }
  if (h.max_chunk < kMinChunk) {
    finish(Outcome::protocol_error, "device takes data chunks of " + std::to_string(h.max_chunk) +
                                        " bytes, fewer than the protocol's " + std::to_string(kMinChunk));
    return;
  }
  // A device that restarted during the download and is offered the image again uses a retry: one
  // that restarts again and again at the same place (a supply that sags on every erase) ends. Not
  // one whose restart was the install, after a lost RESULT ok: its HELLO reports the upgrade (and
  // ends above), or that the install failed with the whole image staged.
  const bool install_restart = h.report == Report::install_failed && h.session_crc == crc_;
  if (std::exchange(restarted_, false) && !install_restart && retry_spent()) {
    finish(Outcome::timeout, "device restarts during the download without getting further");
    return;
  }
  // (Also over the version the bootloader holds: coming back with it proves nothing either.)
  same_version_ = ours || held_ours;
  // A power of two, so that it divides every staging unit.
  packet_size_ = std::bit_floor(std::min<std::uint16_t>(opt_.packet_size, h.max_chunk));
  window_ = std::max<std::uint32_t>(1, opt_.window ? std::min(opt_.window, h.window) : h.window);
  count_ = packet_count_for(static_cast<std::uint32_t>(image_.size()), packet_size_);
  event("start", std::to_string(image_.size()) + " bytes in " + std::to_string(count_) +
                     " packets of " + std::to_string(packet_size_) + ", window " +
                     std::to_string(window_) +
                     (armed_other && !force && (ours || held_ours)
                          ? " (the device has this version, but a failed install of another image is "
                            "armed, which its next reset would try again: this image replaces it)"
                          : ""));
  send_start(now);
}

void Session::pump(std::uint64_t now) {
  std::uint8_t p[2 + kMaxChunk];
  while (next_ < count_ && next_ < base_ + std::min(window_, in_flight_)) {
    const std::uint32_t off = next_ * packet_size_;
    const std::uint32_t n =
        std::min<std::uint32_t>(packet_size_, static_cast<std::uint32_t>(image_.size()) - off);
    put_u16(p, static_cast<std::uint16_t>(next_));
    std::copy_n(image_.data() + off, n, p + 2);
    send_frame(MsgType::data, p, 2 + n, false);
    ++frames_sent_;
    if (sent_at_.size() < count_) sent_at_.assign(count_, kNotTimed);
    sent_at_[next_] = next_ < sent_ ? kNotTimed : now;  // Karn's rule, as for START
    if (next_ < sent_) ++resends_;
    ++next_;
    sent_ = std::max(sent_, next_);
  }
}

// The device holds the first `packets` packets. The reply timer starts again; the retries only
// when that is further than ever in this session: a device that fails at the same packet again
// and again (a worn page NAKed back to its unit's start, ACKs for the packets before it in
// between) gets the same answers each time, and must not hold the session for ever.
void Session::acknowledged(std::uint32_t packets, std::uint64_t now) {
  last_progress_ = now;
  if (packets > furthest_) {
    furthest_ = packets;
    retries_ = 0;
  }
}

// A round trip measured (START to its reply, a DATA packet sent once to the ACK that covers it):
// the reply timeout follows the smoothed round trip and its variation, as TCP's timer does
// (RFC 6298), so that a link with seconds of latency (a congested cellular link) does not time
// out on frames still on their way. It never drops below opt_.reply_timeout_ms. (The first window
// of a link that is slow in rate, not in latency, still times out before the first ACK: START's
// round trip is short there; --reply-timeout is the answer for now.)
void Session::measured(std::uint64_t rtt) {
  if (!rtt_measured_) {
    rtt_measured_ = true;
    srtt_ = rtt;
    rttvar_ = rtt / 2;
  } else {
    rttvar_ = (3 * rttvar_ + (srtt_ > rtt ? srtt_ - rtt : rtt - srtt_)) / 4;
    srtt_ = (7 * srtt_ + rtt) / 8;
  }
}

std::uint64_t Session::reply_timeout() const {
  // (The cap is on what was measured, not on what the user asked for.)
  return std::max<std::uint64_t>(opt_.reply_timeout_ms, std::min<std::uint64_t>(kMaxReplyTimeoutMs, srtt_ + 4 * rttvar_));
}

void Session::rehello(std::uint64_t now) {
  phase_ = Phase::hello;
  phase_start_ = last_hello_req_ = now;
  ask_hello();
}

void Session::go_back(std::uint32_t next, std::uint64_t now) {
  // `next` may lie below what was acknowledged: after a flash error the device wants its whole
  // erase unit again.
  base_ = std::min(next, count_);
  next_ = base_;
  last_progress_ = now;
  pump(now);
}

void Session::on_tick(std::uint64_t now) {
  if (done()) return;
  if (stopping_) {
    if (now >= stop_deadline_)
      finish(Outcome::interrupted, stopped_by_user() +
                                       "; the device did not answer the ABORT (it may have had the whole image "
                                       "by then: `ota status` tells)");
    return;
  }
  const bool quiet = now - last_progress_ >= reply_timeout();
  switch (phase_) {
    case Phase::hello:
    case Phase::reboot: {
      const std::uint64_t limit = phase_ == Phase::hello ? opt_.hello_timeout_ms : opt_.reboot_timeout_ms;
      const bool recovering = opt_.recover && phase_ == Phase::hello;
      if (now - phase_start_ >= limit) {
        finish(Outcome::timeout, phase_ == Phase::reboot ? "device did not come back after the download (a new "
                                                           "application that hangs or has no update client never "
                                                           "answers: `ota push --recover` reaches its bootloader)" +
                                                               unframed_bytes()
                                 : recovering && told_reset_
                                     ? "no bootloader answered RECOVER: only the application answered (reset the "
                                       "device while this waits: its bootloader listens " +
                                           std::to_string(kRecoverWindowMs) +
                                           " ms after a reset; an emulated board needs --realtime. Without --recover "
                                           "the application itself takes an update)"
                                 : recovering && opt_.recover_fleet ? "no HELLO: neither an application nor a bootloader answered RECOVER" + unframed_bytes()
                                 : recovering ? "no bootloader answered RECOVER" + unframed_bytes()
                                 : device_ ? "the device said HELLO, then nothing more (it may have reset or hung)" +
                                                 unframed_bytes()
                                           : "no HELLO from the device" + unframed_bytes());
      } else if (now - last_hello_req_ >= (recovering ? hello_ask_interval_ms(opt_) : opt_.hello_interval_ms)) {
        last_hello_req_ = now;
        if (recovering) ask_hello();
        else send_frame(MsgType::hello_request, nullptr, 0, true);
      }
      return;
    }
    case Phase::start:
    case Phase::download:
    case Phase::report_ack:
      if (!quiet) return;
      if (retry_spent()) {
        if (!end_reported("report not acknowledged"))
          finish(Outcome::timeout, std::string("no answer during ") + to_string(phase_));
        return;
      }
      event("retry", std::string("no answer, re-sending (") + to_string(phase_) + ")");
      if (phase_ == Phase::start) send_start(now);
      // With everything acknowledged (a START that resumed at the end) nothing is left to
      // re-send but the last packet: the device answers it with its RESULT again.
      else if (phase_ == Phase::download) {
        in_flight_ = 1;  // the oldest packet alone; its answer says what the device has
        // An ACK from now on may answer a copy sent after the timeout: no round trip is timed
        // from the packets sent before it (Karn's rule, as TCP after a timeout).
        for (std::uint32_t i = base_; i < sent_ && i < sent_at_.size(); ++i) sent_at_[i] = kNotTimed;
        go_back(std::min(base_, count_ - 1), now);
      }
      else {
        send_frame(MsgType::report_ack, nullptr, 0, true);
        last_progress_ = now;
      }
      return;
    case Phase::done: return;
  }
}

}  // namespace ota::host

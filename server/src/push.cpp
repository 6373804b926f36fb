#include "ota/host/push.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>

#include "channel.hpp"

namespace ota::host {

using namespace detail;

namespace {

// The termios constant of each of kSerialRates, in the same order.
constexpr speed_t kSpeeds[] = {B1200,   B2400,   B4800,   B9600,   B19200,  B38400,   B57600,   B115200,
                               B230400, B460800, B500000, B576000, B921600, B1000000, B1500000, B2000000};
static_assert(std::size(kSpeeds) == std::size(kSerialRates));

// The termios constant of a baud rate; 0 if it is not one of kSerialRates.
speed_t speed_of(std::uint32_t baud) {
  for (std::size_t i = 0; i < std::size(kSerialRates); ++i)
    if (kSerialRates[i] == baud) return kSpeeds[i];
  return 0;
}

// Opens a serial port for one push: locked against a second push and, while it is open, held in
// exclusive mode (TIOCEXCL: other opens fail with EBUSY, unless by root); raw 8N1 at `baud`, no
// flow control, the modem lines ignored. The lock comes before any setting: the settings belong to
// the tty, and a refused push must not change the line of the push that has it. The rate is read
// back: an adapter that cannot do it says so here, not as a device that never answers.
std::string open_serial(const std::string& port, std::uint32_t baud, int& fd) {
  fd = ::open(port.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && errno == EBUSY) return "in use by another push or program (it holds the port exclusively)";
  if (fd < 0) return std::strerror(errno);
  auto fail = [&](std::string why) {
    ::close(fd);
    fd = -1;
    return why;
  };
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return fail("in use by another push");
  const speed_t speed = speed_of(baud);
  termios t{};
  if (speed == 0) return fail(std::to_string(baud) + " baud is not a rate this system can set");
  if (::tcgetattr(fd, &t) != 0)
    return fail(errno == ENOTTY ? std::string("not a serial port (a tty)") : std::strerror(errno));
  ::cfmakeraw(&t);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS | CSTOPB | PARENB);
  t.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  ::cfsetispeed(&t, speed);
  ::cfsetospeed(&t, speed);
  if (::tcsetattr(fd, TCSANOW, &t) != 0) return fail(std::strerror(errno));
  termios got{};
  if (::tcgetattr(fd, &got) != 0) return fail(std::strerror(errno));
  if (::cfgetospeed(&got) != speed) return fail("the port does not take " + std::to_string(baud) + " baud");
  ::ioctl(fd, TIOCEXCL);
  // What the device said before the port was ours (its answer to an earlier push, console lines
  // nobody read) is no answer to this session: a HELLO left from before a reset would describe a
  // device that is gone.
  ::tcflush(fd, TCIFLUSH);
  return {};
}


// A second signal stops the push at once, before its session could end (it was waiting for the
// device to answer the ABORT): the report says so instead of an outcome still pending.
PushReport stopped_at_once(PushReport r) {
  if (r.outcome == Outcome::pending) {
    r.outcome = Outcome::interrupted;
    r.detail = "stopped at once by a second signal (the device had not answered the ABORT)";
  }
  return r;
}

}  // namespace

PushReport push_serial(const std::string& port, const Image& img, const PushOptions& opt,
                       const PushObserver& obs) {
  const auto t0 = Clock::now();
  asio::io_context io;
  asio::serial_port sp(io);
  int fd = -1;
  const std::string failed = open_serial(port, opt.baud, fd);
  std::error_code ec;
  if (failed.empty()) sp.assign(fd, ec);
  if (!failed.empty() || ec) {
    PushReport r;
    r.outcome = Outcome::no_link;
    r.detail = "cannot open " + port + ": " + (failed.empty() ? ec.message() : failed);
    if (fd >= 0 && ec) ::close(fd);
    return r;
  }
  // The reply timeout runs from when frames are queued, and at a low rate the line takes a while
  // to carry them: a data frame takes 2.3 s at 1200 baud, more than the whole timeout, so every
  // window would time out and be queued again behind itself. The timeout grows by two frame
  // times (the frame, then its ACK behind the next one); at 115200 that is 46 ms.
  SessionOptions session_options = opt.session;
  const std::uint64_t frame_bits = 10 * encoded_size_max(2 + std::size_t{session_options.packet_size});
  session_options.reply_timeout_ms += static_cast<std::uint32_t>(2 * frame_bits * 1000 / opt.baud);
  Session session(img.bytes, img.version, session_options);
  auto ch = std::make_shared<Channel<asio::serial_port>>(io, sp, session, obs, t0);
  Interrupts interrupts(io);
  interrupts.on = [&] { ch->interrupt(); };
  if (obs.event)
    obs.event(Event{"open", port + " at " + std::to_string(opt.baud) + " baud, waiting for the device"}, ms_since(t0));
  ch->start();
  io.run();
  // Stopped by force, or with bytes the device never took: drop what the tty still holds, or
  // closing it waits for a stuck adapter to take it (up to its closing_wait, 30 s).
  if (interrupts.forced() || ch->abandoned()) ::tcflush(sp.native_handle(), TCOFLUSH);
  ::ioctl(sp.native_handle(), TIOCNXCL);  // the flag belongs to the tty: others may open it again
  return stopped_at_once(report_of(session, t0, 0));
}

void stop_as_if_interrupted() { Interrupts::request_stop(); }

namespace {

// Asks a connection that just came in who it is, as the session's hello phase asks: HELLO_REQ,
// or RECOVER for a --recover push (a device reset as it dialled is in its bootloader's listening
// window, which hears nothing else), each after a 00 that ends anything partial, until a HELLO
// arrives, the connection fails or two reply timeouts pass (`reply_timeout_ms`: the session's,
// measured on its link: a device answers after a round trip of it); then done(socket, the HELLO
// or null). Only the answer is used: a session that then runs on the connection asks again.
class HelloProbe : public std::enable_shared_from_this<HelloProbe> {
 public:
  using Done = std::function<void(asio::ip::tcp::socket&, const Hello*)>;
  HelloProbe(asio::io_context& io, asio::ip::tcp::socket s, const SessionOptions& o, std::uint64_t reply_timeout_ms,
             Done done)
      : sock_(std::move(s)), ask_timer_(io), limit_(io), interval_(hello_ask_interval_ms(o)), done_(std::move(done)) {
    limit_.expires_after(std::chrono::milliseconds(2 * reply_timeout_ms));
    request_[0] = 0;
    request_len_ = 1 + encode_frame(static_cast<std::uint8_t>(hello_ask(o)), nullptr, 0,
                                    request_.data() + 1, request_.size() - 1);
  }
  void start() {
    auto self = shared_from_this();
    limit_.async_wait([this, self](std::error_code ec) {
      if (!ec) finish(nullptr);
    });
    ask();
    read();
  }
  // The push moves on (its session ended): nothing more is done or reported. Returns the
  // connection if no answer was decided on yet (closed, or handed on, otherwise).
  asio::ip::tcp::socket cancel() {
    const bool undecided = !finished_;
    finished_ = true;
    stop_io();
    asio::ip::tcp::socket s(sock_.get_executor());
    if (undecided) s = std::move(sock_);
    return s;
  }

 private:
  void ask() {
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(request_.data(), request_len_), [this, self](std::error_code ec, std::size_t) {
      if (finished_) return;
      if (ec) {
        finish(nullptr);
        return;
      }
      ask_timer_.expires_after(std::chrono::milliseconds(interval_));
      ask_timer_.async_wait([this, self](std::error_code e) {
        if (!e && !finished_) ask();
      });
    });
  }
  void read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(rx_), [this, self](std::error_code ec, std::size_t n) {
      if (finished_) return;
      if (ec) {
        finish(nullptr);
        return;
      }
      for (std::size_t i = 0; i < n; ++i) {
        Hello h;
        if (decoder_.feed(rx_[i]) == FrameDecoder::Event::frame && decoder_.frame().type == static_cast<std::uint8_t>(MsgType::hello) &&
            decode(decoder_.frame(), h)) {
          finish(&h);
          return;
        }
      }
      read();
    });
  }
  void stop_io() {
    ask_timer_.cancel();
    limit_.cancel();
    std::error_code ignored;
    sock_.cancel(ignored);
  }
  void finish(const Hello* h) {
    if (finished_) return;
    finished_ = true;
    stop_io();
    done_(sock_, h);
  }

  asio::ip::tcp::socket sock_;
  asio::steady_timer ask_timer_;
  asio::steady_timer limit_;
  std::uint32_t interval_;
  Done done_;
  std::array<std::uint8_t, 1 + encoded_size_max(0)> request_{};
  std::size_t request_len_ = 0;
  std::array<std::uint8_t, 256> rx_{};
  FrameDecoderBuffer<64> decoder_;
  bool finished_ = false;
};

}  // namespace

PushReport push_tcp(const std::string& listen, const Image& img, const PushOptions& opt,
                    const PushObserver& obs, std::function<void(std::uint16_t)> on_listening) {
  const auto t0 = Clock::now();
  PushReport r;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  if (Error e = listen_on(acceptor, listen)) {
    r.outcome = Outcome::no_link;
    r.detail = e.text;
    return r;
  }
  std::error_code ec;
  Interrupts interrupts(io);  // before anyone is told where to connect
  if (on_listening) on_listening(acceptor.local_endpoint().port());
  std::uint32_t resends = 0;
  // The push ends while no session runs (waiting for a connection): as a session would end.
  auto end = [&](Outcome o, std::string detail) {
    r.outcome = o;
    r.detail = std::move(detail);
    r.elapsed_ms = ms_since(t0);
    r.resends = resends;
    if (obs.event) obs.event(Event{"done", std::string(to_string(o)) + ": " + r.detail}, r.elapsed_ms);
    return r;
  };
  std::function<void()> stop_waiting;  // the accept, or the connection's session
  interrupts.on = [&] {
    if (stop_waiting) stop_waiting();
  };

  // Waits until `until` for a device to dial in (or for the user to give up).
  auto accept = [&](asio::ip::tcp::socket& sock, Clock::time_point until) {
    bool accepted = false;
    asio::steady_timer deadline(io, until);
    acceptor.async_accept(sock, [&](std::error_code e) {
      accepted = !e;
      deadline.cancel();
      io.stop();  // the signal wait keeps the context busy: run() would not return by itself
    });
    deadline.async_wait([&](std::error_code e) {
      if (!e && !accepted) acceptor.cancel();
    });
    stop_waiting = [&] {
      deadline.cancel();
      acceptor.cancel();
    };
    io.restart();
    io.run();
    stop_waiting = nullptr;
    // A deadline that expired in the same turn as the accept has its handler queued: run it now,
    // while what it uses lives, not later inside the session (where it would cancel the accept
    // that watches for a redial).
    deadline.cancel();
    io.restart();
    io.poll();
    return accepted;
  };

  const auto wait_ms = std::to_string(opt.connect_timeout_ms) + " ms";
  std::optional<Uid> device_uid;                   // the device the push began with
  std::optional<asio::ip::tcp::socket> redialled;  // it dialled again during a session
  bool redial_confirmed = false;  // redialled said HELLO as the device (else: not yet asked)
  std::uint32_t losses = 0;        // times in a row the device's connection was lost without progress
  std::uint32_t acked_at_loss = 0;  // packets the device held at the last loss
  // The device must dial (again) before this: connect_timeout_ms from the start, then from each
  // loss. Connections that never say HELLO (a port scanner, a device that hangs up at once) or
  // come from another device do not move it and are not losses.
  auto wait_until = t0 + std::chrono::milliseconds(opt.connect_timeout_ms);
  std::optional<PushReport> went_quiet;  // the device's last connection stopped answering
  bool delivered = false;  // a connection got the whole image to the device (RESULT ok)
  bool lost_installing = false;  // the last loss was of a connection that got it there, at the reset after
  // START was accepted by the device's application of another version (not its bootloader,
  // whose application's version is unknown)
  bool offered_over_another_version = false;
  std::optional<PushReport> no_hello;    // a connection came but never said who it is
  bool no_hello_sent_bytes = false;      // ... and what it sent is said (Session::unframed_bytes)
  for (;;) {
    // Wait for the device to dial in (unless it already has).
    asio::ip::tcp::socket sock(io);
    bool accepted = false;
    if (redialled && (redial_confirmed || Clock::now() < wait_until)) {
      sock = std::move(*redialled);
      accepted = true;
    } else if (!redialled && Clock::now() < wait_until) {
      accepted = accept(sock, wait_until);
    }
    redialled.reset();  // (one not asked yet, past the deadline: closed)
    redial_confirmed = false;
    if (interrupts.fired())
      return end(Outcome::interrupted, "stopped by the user while waiting for the device to connect");
    if (!accepted) {
      // (A dead link, as `ota serve` reports it: the device went silent mid-update on a connection
      // that may be half-open, and did not dial again.)
      if (went_quiet)
        return end(Outcome::link_lost, went_quiet->detail + "; the device went silent and did not dial again within " + wait_ms);
      if (lost_installing)
        return end(Outcome::link_lost, "link lost at the reset after the download, and the device did not reconnect "
                                       "within " + wait_ms + ": it holds the whole image, verified, and installs it "
                                       "(`ota status` tells when it runs)");
      if (losses > 0) return end(Outcome::link_lost, "link lost and the device did not reconnect within " + wait_ms);
      if (no_hello) return end(Outcome::timeout, "no device said HELLO within " + wait_ms + " (" + no_hello->detail + ")");
      return end(Outcome::timeout, "no device connected within " + wait_ms);
    }
    sock.set_option(asio::ip::tcp::no_delay(true), ec);
    if (obs.event)
      obs.event(Event{"connect", "device connected from " + peer_of(sock)},
                ms_since(t0));
    SessionOptions session_options = opt.session;
    session_options.device_uid = device_uid;  // a reconnect must be the same device
    // --force once: not again on the device that redials from the image it was given (its reset
    // dropped the modem, RESULT ok perhaps with it), unless its install failed. An upgrade report
    // of the image's version is the image's once this push has had START accepted by the
    // device's application of another version (whether or not RESULT ok got through).
    if ((delivered || offered_over_another_version) && !session_options.force_for)
      session_options.force_for = [force = opt.session.force, delivered, offered_over_another_version](const Hello& h) {
        if (!force || h.report == Report::install_failed) return force;
        return !delivered && !(offered_over_another_version && h.report == Report::upgrade_ok);
      };
    Session session(img.bytes, img.version, session_options);
    // The device said HELLO on this connection (and is the one the push began with).
    auto spoke = [&] { return session.device() && !session.foreign_device(); };
    std::shared_ptr<Channel<asio::ip::tcp::socket>> ch;
    // The session ended without the push: the connection never said who it is, came from
    // another device, dropped, or (over a link that may be dead without a FIN: a modem that lost
    // its carrier) stopped answering. Told as a "disconnect", not the push's "done".
    std::optional<bool> silent;  // went_silent(), decided once
    // Losses in a row before this connection's. (A loss after progress starts the count again: a
    // modem that loses its carrier every few KB still gets the whole image through.)
    auto losses_before = [&] { return session.packets_acked() > acked_at_loss ? 0 : losses; };
    auto push_goes_on = [&] {
      const Outcome o = session.outcome();
      if (!spoke()) return o == Outcome::link_lost || o == Outcome::timeout;
      if (!silent) silent = went_silent(session, *ch);
      return losses_before() < opt.max_reconnects && (o == Outcome::link_lost || *silent);
    };
    PushObserver per_connection = obs;
    per_connection.event = [&](const Event& e, std::uint64_t ms) {
      if (e.kind == "downloaded") delivered = true;
      if (!obs.event) return;
      if (e.kind == "done" && push_goes_on())
        obs.event(Event{"disconnect", session.detail() + (spoke() ? "; waiting for the device to dial again"
                                                                  : "; waiting for the device")},
                  ms);
      else
        obs.event(e, ms);
    };
    ch = std::make_shared<Channel<asio::ip::tcp::socket>>(io, sock, session, per_connection, t0);
    stop_waiting = [&] { ch->interrupt(); };
    // A connection that comes while a session runs: if the device has been silent for a reply
    // timeout, it may be that device dialling again over a connection left half-open (a modem
    // that lost its carrier sends no FIN or RST). The newcomer is asked who it is; if it is the
    // device (or the session has not heard from any device yet) it takes over, and a new session
    // resumes on it. Anything else is turned away and the session goes on undisturbed: another
    // device, a connection that says nothing, or any newcomer while the device talks.
    asio::ip::tcp::socket incoming(io);
    std::shared_ptr<HelloProbe> probe;
    bool over = false;  // the session has ended: a connection accepted now is the next one
    std::function<void()> watch_for_redial;
    auto turn_away = [&](asio::ip::tcp::socket& s, const std::string& why) {
      const std::string from = peer_of(s);
      std::error_code ignored;
      s.close(ignored);
      if (obs.event) obs.event(Event{"disconnect", "turned away a connection from " + from + ": " + why}, ms_since(t0));
    };
    watch_for_redial = [&] {
      acceptor.async_accept(incoming, [&](std::error_code e) {
        if (e) return;
        if (over) {  // its session checks who it is
          if (!redialled) redialled.emplace(std::move(incoming));
          return;
        }
        // (Bytes from a connection that never said HELLO, a console or a modem's chatter, are
        // no device talking.)
        const bool device_talks = still_talks(session, *ch);
        if (probe || device_talks) {
          turn_away(incoming, probe ? "another connection is being asked who it is"
                                    : "the device being updated still talks");
        } else {
          probe = std::make_shared<HelloProbe>(io, std::move(incoming), opt.session, session.reply_timeout(),
                                               [&](asio::ip::tcp::socket& s, const Hello* h) {
            const std::optional<Uid> expected = device_uid ? device_uid
                                                : session.device() ? std::optional<Uid>(uid_of(*session.device()))
                                                                   : std::nullopt;
            if (!h) turn_away(s, "it did not say HELLO");
            else if (expected && uid_of(*h) != *expected) turn_away(s, "another device (uid " + uid_hex(*h) + ")");
            else if (still_talks(session, *ch)) turn_away(s, "the device being updated talks again");
            else {
              redialled.emplace(std::move(s));
              redial_confirmed = true;
              ch->drop();
            }
            asio::post(io, [&] { probe.reset(); });
          });
          probe->start();
        }
        incoming = asio::ip::tcp::socket(io);
        watch_for_redial();
      });
    };
    watch_for_redial();
    io.restart();
    ch->start();
    if (interrupts.fired()) ch->interrupt();  // the signal came between the accept and now
    io.run();
    stop_waiting = nullptr;
    over = true;
    acceptor.cancel(ec);  // and let the cancelled accept's handler run while `incoming` lives
    if (probe) {  // a newcomer not yet answered for (a redial just before the session gave up)
      asio::ip::tcp::socket s = probe->cancel();
      if (s.is_open() && !redialled) redialled.emplace(std::move(s));  // its session checks who it is
    }
    io.restart();
    io.poll();
    probe.reset();
    PushReport session_report = report_of(session, t0, resends);
    // A connection that was not the device (another device, one that never said HELLO) leaves
    // the push's report about the device it began with.
    if (!spoke() && r.device) session_report.device = r.device;
    r = std::move(session_report);
    if (!device_uid && spoke()) device_uid = uid_of(*session.device());
    if (const Phase e = session.ended_in(); spoke() && session.first_version() != 0 &&
                                            session.first_version() != img.version &&
                                            (e == Phase::download || e == Phase::reboot || e == Phase::report_ack))
      offered_over_another_version = true;
    if (interrupts.fired()) return stopped_at_once(std::move(r));
    if (!push_goes_on()) {
      if (spoke() && (session.outcome() == Outcome::link_lost || (silent && *silent))) {  // the limit
        const std::uint32_t in_a_row = losses_before() + 1;
        r.detail += in_a_row == 1 ? std::string("; the link was lost (no reconnect allowed)")
                                  : "; the link was lost " + std::to_string(in_a_row) + " times in a row without progress";
      }
      return r;
    }
    if (!spoke()) {
      // The report of a connection that sent bytes outlives later ones that sent none (a stray
      // connection must not hide a modem at another baud rate).
      const bool sent_bytes = !session.unframed_bytes().empty();
      if (!session.foreign_device() && (sent_bytes || !no_hello_sent_bytes)) {
        no_hello = r;
        no_hello_sent_bytes = sent_bytes;
      }
      continue;  // not the device: the wait for it goes on as it was
    }
    lost_installing = session.delivered();
    losses = session.packets_acked() > acked_at_loss ? 1 : losses + 1;
    acked_at_loss = std::max(acked_at_loss, session.packets_acked());
    resends = r.resends;  // the device reconnects: a new session resumes the download
    went_quiet.reset();
    if (session.outcome() == Outcome::timeout) went_quiet = r;
    wait_until = Clock::now() + std::chrono::milliseconds(opt.connect_timeout_ms);
  }
}

}  // namespace ota::host

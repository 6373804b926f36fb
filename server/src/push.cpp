#include "ota/host/push.hpp"

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <chrono>
#include <csignal>
#include <deque>
#include <memory>
#include <optional>
#include <sys/file.h>
#include <termios.h>
#include <vector>

namespace ota::host {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t ms_since(Clock::time_point t0) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// One connection driving one session: reads feed it, a 5 ms tick gives it the time, whatever it
// wants sent is written in order. Stops the io_context when the session is done (and its last
// bytes are written, or kDrainLimit has passed without the link taking them: a device or adapter
// that stopped reading) or the link fails.
template <class Stream>
class Channel : public std::enable_shared_from_this<Channel<Stream>> {
 public:
  Channel(asio::io_context& io, Stream& s, Session& session, const PushObserver& obs, Clock::time_point t0)
      : io_(io), stream_(s), session_(session), obs_(obs), t0_(t0), timer_(io), drain_timer_(io) {}

  void start() {
    last_rx_ = now();
    session_.begin(now());
    after_step();
    read();
    tick();
  }
  bool link_lost() const { return link_lost_; }
  // Stopped with bytes the link never took: the caller drops them (tcflush) before closing.
  bool abandoned() const { return abandoned_; }
  // The connection is given up from outside (the device dialled again): as if it had dropped.
  void drop() { fail(); }
  // Milliseconds since the device last sent anything (since the start if it never did).
  std::uint64_t silent_ms() const { return now() - last_rx_; }
  void interrupt() {
    if (stopped_) return;
    if (session_.done()) {  // only the last bytes are left, and the link is not taking them
      abandon();
      return;
    }
    session_.interrupt(now());
    after_step();  // stops once the ABORT is written
  }

  // Once the session is over its last bytes (an ABORT, a REPORT_ACK) get this long to go out.
  static constexpr std::chrono::milliseconds kDrainLimit{2000};

 private:
  std::uint64_t now() const { return ms_since(t0_); }

  void read() {
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(rx_), [this, self](std::error_code ec, std::size_t n) {
      // A read that completed just before stop() may run later, even in the next connection's
      // run(), when this connection's Session and stream are gone: touch neither then.
      if (stopped_) return;
      if (ec) {
        if (ec != asio::error::operation_aborted) fail();
        return;
      }
      last_rx_ = now();
      session_.on_bytes(rx_.data(), n, now());
      after_step();
      if (!stopped_) read();
    });
  }

  void tick() {
    timer_.expires_after(std::chrono::milliseconds(5));
    auto self = this->shared_from_this();
    timer_.async_wait([this, self](std::error_code ec) {
      if (ec || stopped_) return;
      session_.on_tick(now());
      after_step();
      if (!stopped_) tick();
    });
  }

  void after_step() {
    for (const Event& e : session_.take_events())
      if (obs_.event) obs_.event(e, now());
    if (obs_.progress && session_.packets_acked() != last_acked_) {
      last_acked_ = session_.packets_acked();
      obs_.progress(last_acked_, session_.packet_count(), now());
    }
    auto out = session_.take_output();
    if (!out.empty()) {
      queue_.push_back(std::move(out));
      write();
    }
    finish_if_done();
  }

  void finish_if_done() {
    if (!session_.done() || stopped_) return;
    if (queue_.empty() && !writing_) {
      stop();
      return;
    }
    if (draining_) return;
    draining_ = true;
    drain_timer_.expires_after(kDrainLimit);
    auto self = this->shared_from_this();
    drain_timer_.async_wait([this, self](std::error_code ec) {
      if (!ec) abandon();
    });
  }

  void abandon() {
    if (stopped_) return;
    abandoned_ = true;
    stop();
  }

  void write() {
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    auto self = this->shared_from_this();
    asio::async_write(stream_, asio::buffer(queue_.front()), [this, self](std::error_code ec, std::size_t) {
      writing_ = false;
      queue_.pop_front();
      if (stopped_) return;  // as for a read
      if (ec) {
        fail();
        return;
      }
      write();
      finish_if_done();
    });
  }

  void fail() {
    if (stopped_) return;
    link_lost_ = true;
    session_.on_link_lost(now());
    if (obs_.event)
      for (const Event& e : session_.take_events()) obs_.event(e, now());
    stop();
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    timer_.cancel();
    drain_timer_.cancel();
    std::error_code ignored;
    stream_.cancel(ignored);
    io_.stop();
  }

  asio::io_context& io_;
  Stream& stream_;
  Session& session_;
  const PushObserver& obs_;
  Clock::time_point t0_;
  asio::steady_timer timer_;
  asio::steady_timer drain_timer_;
  std::array<std::uint8_t, 512> rx_{};
  std::deque<std::vector<std::uint8_t>> queue_;
  bool writing_ = false;
  bool stopped_ = false;
  bool link_lost_ = false;
  bool draining_ = false;
  bool abandoned_ = false;
  std::uint64_t last_rx_ = 0;
  std::uint32_t last_acked_ = 0xFFFFFFFF;
};

// SIGINT and SIGTERM while a push runs: `on` is called (the push ends `interrupted`).
// A second signal stops at once, even if the ABORT cannot be written (a stuck adapter).
class Interrupts {
 public:
  explicit Interrupts(asio::io_context& io) : io_(io), set_(io, SIGINT, SIGTERM) { arm(); }
  std::function<void()> on;
  bool fired() const { return fired_; }
  bool forced() const { return forced_; }  // a second signal came

 private:
  void arm() {
    set_.async_wait([this](std::error_code ec, int) {
      if (ec) return;
      if (fired_) {
        forced_ = true;
        io_.stop();
        return;
      }
      fired_ = true;
      if (on) on();
      arm();
    });
  }
  asio::io_context& io_;
  asio::signal_set set_;
  bool fired_ = false;
  bool forced_ = false;
};

PushReport report_of(const Session& s, Clock::time_point t0, std::uint32_t resends) {
  PushReport r;
  r.outcome = s.outcome();
  r.detail = s.detail();
  r.device = s.device();
  r.resends = resends + s.resends();
  r.elapsed_ms = ms_since(t0);
  return r;
}

// "PORT", ":PORT" (all interfaces) or "HOST:PORT" (an address or a name); PORT 0-65535, 0 = any.
Error parse_listen(const std::string& listen, std::string& host, std::uint16_t& port) {
  const auto colon = listen.rfind(':');
  host = colon == std::string::npos || colon == 0 ? "0.0.0.0" : listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string digits = colon == std::string::npos ? listen : listen.substr(colon + 1);
  const Error bad{"bad listen address '" + listen + "': want PORT, :PORT or HOST:PORT, PORT 0-65535"};
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
    return bad;
  const unsigned long n = std::stoul(digits);
  if (n > 65535) return bad;
  port = static_cast<std::uint16_t>(n);
  return {};
}

}  // namespace

PushReport push_serial(const std::string& port, const Image& img, const PushOptions& opt,
                       const PushObserver& obs) {
  const auto t0 = Clock::now();
  asio::io_context io;
  asio::serial_port sp(io);
  std::error_code ec;
  sp.open(port, ec);
  // Two pushes on one port would each take the other's bytes: the second is refused, before it
  // sets the line (the settings belong to the tty, not to one open file).
  if (!ec && ::flock(sp.native_handle(), LOCK_EX | LOCK_NB) != 0) {
    PushReport r;
    r.outcome = Outcome::no_link;
    r.detail = "cannot open " + port + ": in use by another push";
    return r;
  }
  if (!ec) sp.set_option(asio::serial_port_base::baud_rate(opt.baud), ec);
  if (!ec) sp.set_option(asio::serial_port_base::character_size(8), ec);
  if (!ec) sp.set_option(asio::serial_port_base::parity(asio::serial_port_base::parity::none), ec);
  if (!ec) sp.set_option(asio::serial_port_base::stop_bits(asio::serial_port_base::stop_bits::one), ec);
  if (!ec) sp.set_option(asio::serial_port_base::flow_control(asio::serial_port_base::flow_control::none), ec);
  if (ec) {
    PushReport r;
    r.outcome = Outcome::no_link;
    r.detail = "cannot open " + port + ": " + ec.message();
    return r;
  }
  Session session(img.bytes, img.version, opt.session);
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
  return report_of(session, t0, 0);
}

PushReport push_tcp(const std::string& listen, const Image& img, const PushOptions& opt,
                    const PushObserver& obs, std::function<void(std::uint16_t)> on_listening) {
  const auto t0 = Clock::now();
  PushReport r;
  std::string host;
  std::uint16_t port = 0;
  if (Error e = parse_listen(listen, host, port)) {
    r.outcome = Outcome::no_link;
    r.detail = e.text;
    return r;
  }
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  std::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  const auto found = resolver.resolve(host, std::to_string(port), asio::ip::tcp::resolver::passive, ec);
  if (!ec && found.empty()) ec = asio::error::host_not_found;
  // A name may give several addresses ("localhost": ::1 and 127.0.0.1): the first that can be
  // listened on, IPv4 first, since devices behind modems dial IPv4.
  std::vector<asio::ip::tcp::endpoint> eps;
  if (!ec)
    for (const auto& e : found) eps.push_back(e.endpoint());
  std::stable_partition(eps.begin(), eps.end(), [](const auto& e) { return e.address().is_v4(); });
  // Only an address this host cannot have sends us to the next one; anything else (the port in
  // use, no permission) is the answer, reported as it came.
  std::error_code first;
  for (const auto& ep : eps) {
    if (acceptor.is_open()) acceptor.close(ec);
    ec.clear();
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(4, ec);
    if (!ec) break;
    if (!first) first = ec;
    if (ec != std::errc::address_not_available && ec != asio::error::address_family_not_supported) break;
  }
  if (ec && first) ec = first;
  if (ec) {
    r.outcome = Outcome::no_link;
    r.detail = "cannot listen on " + listen + ": " + ec.message();
    return r;
  }
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
  Interrupts interrupts(io);
  std::function<void()> stop_waiting;  // the accept, or the connection's session
  interrupts.on = [&] {
    if (stop_waiting) stop_waiting();
  };

  // Waits up to connect_timeout_ms for a device to dial in (or for the user to give up).
  auto accept = [&](asio::ip::tcp::socket& sock) {
    bool accepted = false;
    asio::steady_timer deadline(io, std::chrono::milliseconds(opt.connect_timeout_ms));
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

  std::optional<std::array<std::uint8_t, 12>> device_uid;  // the device the push began with
  std::optional<asio::ip::tcp::socket> redialled;           // it dialled again during a session
  for (std::uint32_t attempt = 0; attempt <= opt.max_reconnects; ++attempt) {
    // Wait for the device to dial in (unless it already has).
    asio::ip::tcp::socket sock(io);
    bool accepted = false;
    if (redialled) {
      sock = std::move(*redialled);
      redialled.reset();
      accepted = true;
    } else {
      accepted = accept(sock);
    }
    if (interrupts.fired())
      return end(Outcome::interrupted, "stopped by the user while waiting for the device to connect");
    if (!accepted && attempt == 0)
      return end(Outcome::timeout, "no device connected within " + std::to_string(opt.connect_timeout_ms) + " ms");
    if (!accepted) return end(Outcome::link_lost, "link lost and the device did not reconnect");
    sock.set_option(asio::ip::tcp::no_delay(true), ec);
    if (obs.event)
      obs.event(Event{"connect", "device connected from " + sock.remote_endpoint(ec).address().to_string()},
                ms_since(t0));
    SessionOptions session_options = opt.session;
    session_options.device_uid = device_uid;  // a reconnect must be the same device
    Session session(img.bytes, img.version, session_options);
    // A lost connection ends this Session, not the push while the device may still dial in again:
    // its "done" is told as a "disconnect".
    PushObserver per_connection = obs;
    const bool last = attempt == opt.max_reconnects;
    per_connection.event = [&](const Event& e, std::uint64_t ms) {
      if (!obs.event) return;
      if (e.kind == "done" && !last && session.outcome() == Outcome::link_lost)
        obs.event(Event{"disconnect", session.detail() + "; waiting for the device to reconnect"}, ms);
      else
        obs.event(e, ms);
    };
    auto ch = std::make_shared<Channel<asio::ip::tcp::socket>>(io, sock, session, per_connection, t0);
    stop_waiting = [&] { ch->interrupt(); };
    // A connection that comes while a session runs: if the device has been silent for a reply
    // timeout, it is that device dialling again over a connection left half-open (a modem that
    // lost its carrier sends no FIN or RST), and the new connection takes over (a new session
    // then checks its uid). While the device talks, the newcomer is someone else: turned away.
    asio::ip::tcp::socket incoming(io);
    std::function<void()> watch_for_redial = [&] {
      acceptor.async_accept(incoming, [&](std::error_code e) {
        if (e) return;
        if (ch->silent_ms() >= opt.session.reply_timeout_ms) {
          redialled.emplace(std::move(incoming));
          ch->drop();
          return;
        }
        std::error_code ignored;
        const std::string from = incoming.remote_endpoint(ignored).address().to_string();
        incoming.close(ignored);
        if (obs.event)
          obs.event(Event{"disconnect", "turned away a connection from " + from + ": the device being updated still talks"},
                    ms_since(t0));
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
    acceptor.cancel(ec);  // and let the cancelled accept's handler run while `incoming` lives
    io.restart();
    io.poll();
    r = report_of(session, t0, resends);
    if (!device_uid && session.device() && !session.foreign_device()) {
      device_uid.emplace();
      std::copy(std::begin(session.device()->uid), std::end(session.device()->uid), device_uid->begin());
    }
    const bool dropped = ch->link_lost() || session.foreign_device();
    if (!dropped || r.outcome != Outcome::link_lost || interrupts.fired()) return r;
    resends = r.resends;  // the device reconnects: a new session resumes the download
  }
  return r;
}

}  // namespace ota::host

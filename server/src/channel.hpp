// The asio pieces that push.cpp and serve.cpp share: a Channel drives one Session over one
// stream, Interrupts turns SIGINT/SIGTERM/SIGHUP into a graceful stop, listen_on() opens the TCP
// acceptor that devices dial.
#pragma once

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <chrono>
#include <csignal>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ota/host/push.hpp"

namespace ota::host::detail {


using Clock = std::chrono::steady_clock;

inline std::uint64_t ms_since(Clock::time_point t0) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// One connection driving one session: reads feed it, a 5 ms tick gives it the time, whatever it
// wants sent is written in order. Stops (on_stop, or else the io_context) when the session is done (and its last
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
  // Called once when the channel stops; without it the channel stops the io_context.
  std::function<void()> on_stop;
  bool link_lost() const { return link_lost_; }
  bool stopped() const { return stopped_; }
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
    // In the order the session saw them: each event after the acks that came before it (the
    // last ACK before "downloaded"; "resume" before the packets it skips).
    for (const Event& e : session_.take_events()) {
      report_progress(e.acked);
      if (obs_.event) obs_.event(e, now());
    }
    report_progress(session_.packets_acked());
    auto out = session_.take_output();
    if (stopped_) return;  // dropped by an observer (serve turned a duplicate away): nothing more goes out
    if (!out.empty()) {
      queue_.push_back(std::move(out));
      write();
    }
    finish_if_done();
  }

  void report_progress(std::uint32_t acked) {
    if (!obs_.progress || acked == last_acked_) return;
    last_acked_ = acked;
    obs_.progress(acked, session_.packet_count(), now());
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
    if (on_stop) on_stop();
    else io_.stop();
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

// SIGINT, SIGTERM and SIGHUP (the terminal or ssh session of the user went away; not when
// started under nohup) while a push runs: `on` is called (the push ends `interrupted`).
// A second signal stops at once, even if the ABORT cannot be written (a stuck adapter).
class Interrupts {
 public:
  explicit Interrupts(asio::io_context& io) : io_(io), set_(io, SIGINT, SIGTERM), outer_(active_) {
    // SIGHUP only if it is not ignored: `nohup ota serve ...` must outlive its terminal.
    struct sigaction old {};
    if (::sigaction(SIGHUP, nullptr, &old) == 0 && old.sa_handler != SIG_IGN) set_.add(SIGHUP);
    active_ = this;
    arm();
  }
  ~Interrupts() { active_ = outer_; }
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;
  // stop_as_if_interrupted() (push.hpp): as a first signal, on this thread's run; never a second.
  static void request_stop() {
    if (!active_) return;
    Interrupts* self = active_;
    asio::post(self->io_, [self] {
      if (active_ == self && !self->fired_) self->fire();
    });
  }
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
      fire();
      arm();
    });
  }
  void fire() {
    fired_ = true;
    if (on) on();
  }
  // The run of this thread (push_serial, push_tcp, serve_tcp): one at a time per thread.
  inline static thread_local Interrupts* active_ = nullptr;
  asio::io_context& io_;
  asio::signal_set set_;
  Interrupts* outer_;
  bool fired_ = false;
  bool forced_ = false;
};

using Uid = std::array<std::uint8_t, 12>;  // a device's 96-bit unique id

inline Uid uid_of(const Hello& h) {
  Uid u;
  std::copy(std::begin(h.uid), std::end(h.uid), u.begin());
  return u;
}

// A session over TCP that timed out because its device went silent mid-update (no bytes for a
// reply timeout, in the hello, start or download phase): over a modem that lost its carrier the
// link is dead without a FIN, and the device may dial again and resume. A device that times out
// while it talks (it keeps refusing) has answered; one that did not come back after its reset
// (the reboot phase, where silence is expected) has failed. Silence is judged by the session's
// reply timeout, which grows with the round trips measured: on a link with seconds of latency a
// device that answers every few seconds talks. The silence keeps growing after the session ends:
// callers decide this once, when it ends.
template <class Stream>
bool went_silent(const Session& s, const Channel<Stream>& ch) {
  return s.outcome() == Outcome::timeout && s.device() && s.ended_in() != Phase::reboot &&
         ch.silent_ms() >= s.reply_timeout();
}

// The device of a session talks on its channel: it said HELLO, and its silence is shorter than a
// reply timeout (a newcomer with its uid is then another device, not it dialling again).
template <class Stream>
bool still_talks(const Session& s, const Channel<Stream>& ch) {
  return s.device() && !s.foreign_device() && ch.silent_ms() < s.reply_timeout();
}

// Where a connection comes from, as a person reads it: an IPv4 peer of a dual-stack socket
// (::ffff:192.0.2.7) as IPv4.
inline std::string peer_of(const asio::ip::tcp::socket& s) {
  std::error_code ec;
  asio::ip::address a = s.remote_endpoint(ec).address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

inline PushReport report_of(const Session& s, Clock::time_point t0, std::uint32_t resends) {
  PushReport r;
  r.outcome = s.outcome();
  r.detail = s.detail();
  r.device = s.device();
  r.resends = resends + s.resends();
  r.elapsed_ms = ms_since(t0);
  return r;
}

// "PORT", ":PORT" (all interfaces, IPv6 and IPv4) or "HOST:PORT" (an address or a name); PORT
// 0-65535, 0 = any. All interfaces is "::" (where the host has no IPv6, listen_on takes 0.0.0.0).
inline Error parse_listen(const std::string& listen, std::string& host, std::uint16_t& port) {
  const auto colon = listen.rfind(':');
  host = colon == std::string::npos || colon == 0 ? "::" : listen.substr(0, colon);
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

// Opens `acceptor` listening on `listen` ("PORT", ":PORT" or "HOST:PORT"; see parse_listen).
inline Error listen_on(asio::ip::tcp::acceptor& acceptor, const std::string& listen) {
  std::string host;
  std::uint16_t port = 0;
  if (Error e = parse_listen(listen, host, port)) return e;
  std::error_code ec;
  asio::ip::tcp::resolver resolver(acceptor.get_executor());
  const auto found = resolver.resolve(host, std::to_string(port), asio::ip::tcp::resolver::passive, ec);
  if (!ec && found.empty()) ec = asio::error::host_not_found;
  // A name may give several addresses ("localhost": ::1 and 127.0.0.1): the first that can be
  // listened on, IPv4 first, since devices behind modems dial IPv4.
  std::vector<asio::ip::tcp::endpoint> eps;
  if (!ec)
    for (const auto& e : found) eps.push_back(e.endpoint());
  std::stable_partition(eps.begin(), eps.end(), [](const auto& e) { return e.address().is_v4(); });
  // All interfaces: one dual-stack socket (IPv4 devices arrive as ::ffff:a.b.c.d), else IPv4 alone.
  const bool any = eps.size() == 1 && eps[0].address() == asio::ip::address_v6::any();
  if (any) eps.emplace_back(asio::ip::address_v4::any(), port);
  // Only an address this host cannot have sends us to the next one; anything else (the port in
  // use, no permission) is the answer, reported as it came.
  std::error_code first;
  for (const auto& ep : eps) {
    if (acceptor.is_open()) acceptor.close(ec);
    ec.clear();
    acceptor.open(ep.protocol(), ec);
    if (!ec && any && ep.address().is_v6()) acceptor.set_option(asio::ip::v6_only(false), ec);
    if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) break;
    // What is said is the first error that is not "this host has no such address" (on a host
    // without IPv6, ":PORT" in use is reported as in use, not as IPv6 missing).
    const bool not_here = ec == std::errc::address_not_available || ec == asio::error::address_family_not_supported;
    if (!first || !not_here) first = ec;
    if (!not_here) break;
  }
  if (ec && first) ec = first;
  if (ec) return Error{"cannot listen on " + listen + ": " + ec.message()};
  return {};
}

}  // namespace ota::host::detail

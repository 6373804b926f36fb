#include "ota/host/push.hpp"

#include <optional>
#include <sys/file.h>
#include <termios.h>

#include "channel.hpp"

namespace ota::host {

using namespace detail;

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

#include "ota/host/serve.hpp"

#include <array>
#include <map>
#include <optional>

#include "channel.hpp"

namespace ota::host {

using namespace detail;

namespace {

// One accepted connection: its socket, its session, and the channel between them. Kept at a
// stable address (the channel holds references to the socket, the session and the observer).
struct Connection {
  Connection(asio::io_context& io, std::uint32_t n, const Image& img, const SessionOptions& o)
      : id(n), sock(io), session(img.bytes, img.version, o) {}
  std::uint32_t id;
  asio::ip::tcp::socket sock;
  Session session;
  PushObserver obs;
  std::shared_ptr<Channel<asio::ip::tcp::socket>> ch;
  Clock::time_point t0;        // accepted at (a result's elapsed_ms counts from here)
  bool turned_away = false;    // its uid is being updated on another, talking connection
  std::optional<bool> silent;  // its session timed out because the device went silent (once ended)
  bool again = false;          // its device had ended before this connection
  bool dropped = false;        // given up (room for a newcomer, or the serve ends) and said so: its end is on its way
};

// What is known of one device across its connections.
struct Device {
  bool ended = false;          // it has a final outcome (the latest is in `last`)
  DeviceReport last;
  std::uint32_t resends = 0;   // over the connections that dropped
  std::uint32_t live = 0;      // connection now talking to it (0: none)
  bool downloaded = false;     // a session of this serve got the whole image to it (RESULT ok)
  std::uint64_t lost_ms = 0;   // when its last connection ended with the device still under way
};

class Server {
 public:
  Server(asio::io_context& io, asio::ip::tcp::acceptor& acceptor, const Image& img, const ServeOptions& opt,
         const ServeObserver& obs)
      : io_(io), acceptor_(acceptor), img_(img), opt_(opt), obs_(obs), t0_(Clock::now()), idle_(io), retry_(io),
        interrupts_(io) {
    interrupts_.on = [this] { interrupt(); };
    session_options_ = opt.push.session;
    if (session_options_.recover_fleet)
      session_options_.recover_again = [this](const Hello& h) {
        const auto it = devices_.find(uid_of(h));
        return it == devices_.end() || !it->second.downloaded;
      };
    // Each device once: not one that runs the image by this serve, nor one that this serve gave the
    // whole image (it may redial from the new image before its old connection's end is booked),
    // unless its install failed (its HELLO says so, or its session ended so).
    if (session_options_.force)
      session_options_.force_for = [this](const Hello& h) {
        const auto it = devices_.find(uid_of(h));
        if (it == devices_.end()) return true;
        const Device& d = it->second;
        const bool install_failed = h.report == Report::install_failed ||
                                    (d.ended && d.last.report.outcome == Outcome::upgrade_failed);
        return !runs_image(d) && (!d.downloaded || install_failed);
      };
  }

  ServeReport run() {
    accept();
    arm_idle();
    io_.run();
    // A second signal stops at once. A session that had ended, its end not yet booked (ended() is
    // posted), ends as it did; the others end here, as interrupted. The observer is told of each,
    // as of any end (`ota serve` prints a device's result from it).
    std::vector<std::uint32_t> open;
    for (const auto& [id, c] : conns_) open.push_back(id);
    for (const std::uint32_t id : open) {
      const auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      const std::shared_ptr<Connection> c = it->second;
      if (c->session.done()) {
        ended(id);
        continue;
      }
      const auto& dev = c->session.device();
      if (!dev || c->turned_away) continue;
      Device& d = devices_[uid_of(*dev)];
      if (d.ended) continue;
      DeviceReport r{id, report_of(c->session, c->t0, d.resends)};
      r.report.outcome = Outcome::interrupted;
      r.report.detail = "stopped at once by a second signal";
      record_end(d, r);
      if (obs_.ended) obs_.ended(r);
    }
    ServeReport r;
    r.interrupted = interrupts_.fired();
    r.idle = idle_fired_;
    for (auto* d : end_order_) r.ended.push_back(d->last);
    for (auto& [uid, d] : devices_)
      if (!d.ended) {
        DeviceReport lost = d.last;  // its last session, which ended with the link
        if (lost.report.outcome == Outcome::timeout) {
          lost.report.outcome = Outcome::link_lost;
          lost.report.detail += "; the device went silent and did not dial again";
        }
        r.lost.push_back(lost);
      }
    r.elapsed_ms = ms_since(t0_);
    return r;
  }

 private:
  std::uint64_t now() const { return ms_since(t0_); }

  // At max_connections a newcomer is still accepted while a slot is held by a connection that has
  // said nothing for mute_ms() (a port scanner, a modem whose board is off), or whose device went
  // silent mid-update for two of its reply timeouts (a link left half-open: its device may be the
  // very newcomer, dialling again): it takes that slot, so that such connections cannot keep
  // devices waiting for a whole hello timeout or a dead session's re-sends. (One that has not
  // been silent that long may be a device about to answer: the newcomer waits for it.)
  void accept() {
    if (closing_ || accepting_ || held_) return;
    if (conns_.size() >= opt_.max_connections && !replaceable()) {
      check_replaceable_later();
      return;
    }
    accepting_ = true;
    auto c = std::make_shared<Connection>(io_, next_id_, img_, session_options_);
    acceptor_.async_accept(c->sock, [this, c](std::error_code ec) {
      accepting_ = false;
      if (closing_ || ec == asio::error::operation_aborted) return;  // cancelled: we are closing
      if (ec) {
        // Out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS): the device waits in the backlog.
        // A connection that ends tries again at once (ended()); this timer covers a shortage that
        // is not ours. Said once: with a tight limit it recurs at every connection.
        if (!accept_failed_ && obs_.event)
          obs_.event(0, std::nullopt,
                     Event{"accept", "cannot accept a connection: " + ec.message() +
                                         "; devices wait until a connection ends (said once)"},
                     now(), false);
        accept_failed_ = true;
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](std::error_code e) {
          if (!e) accept();
        });
        return;
      }
      ++next_id_;
      if (conns_.size() >= opt_.max_connections) {
        const auto old = replaceable();
        if (!old) {
          // The connection this accept was to replace has spoken after all: the newcomer waits,
          // unserved, for the first slot that frees (ended()).
          held_ = c;
          return;
        }
        drop(*old, old->session.device()
                       ? "dropped: its device has been silent for " + std::to_string(old->ch->silent_ms()) +
                             " ms mid-update (a half-open link?), and every connection slot is taken"
                       : "dropped: it said no HELLO" + old->session.unframed_bytes() +
                             ", and every connection slot is taken");
      }
      start(c);
      accept();
    });
  }

  void start(const std::shared_ptr<Connection>& c) {
    std::error_code ignored;
    c->sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    c->t0 = Clock::now();
    conns_[c->id] = c;
    const std::uint32_t id = c->id;
    Connection* raw = c.get();
    c->obs.event = [this, raw](const Event& e, std::uint64_t ms) { on_event(*raw, e, ms); };
    c->obs.progress = [this, raw](std::uint32_t acked, std::uint32_t total, std::uint64_t ms) {
      if (obs_.progress) obs_.progress(raw->id, raw->session.device(), acked, total, ms, raw->again);
    };
    c->ch = std::make_shared<Channel<asio::ip::tcp::socket>>(io_, c->sock, c->session, c->obs, t0_);
    c->ch->on_stop = [this, id] { asio::post(io_, [this, id] { ended(id); }); };
    if (obs_.event)
      obs_.event(id, std::nullopt, Event{"connect", "device connected from " + peer_of(c->sock)}, now(), false);
    c->ch->start();
  }

  void on_event(Connection& c, const Event& e, std::uint64_t ms) {
    const auto& dev = c.session.device();
    if (e.kind == "downloaded" && dev && !c.turned_away) devices_[uid_of(*dev)].downloaded = true;
    if (e.kind == "hello" && dev && !c.turned_away) {
      Device& d = devices_[uid_of(*dev)];
      c.again = d.ended;
      if (const auto old = conns_.find(d.live); d.live != c.id && old != conns_.end()) {
        if (!still_talks(old->second->session, *old->second->ch)) {
          // The same device on an older connection that has gone quiet: it dialled again over a
          // link left half-open (a modem that lost its carrier sends no FIN or RST). The new
          // connection takes over.
          old->second->ch->drop();
        } else {
          // The older connection still talks: two devices claim one uid (a clone, a board
          // without its own id). The newcomer is turned away; the update under way goes on.
          c.turned_away = true;
          if (obs_.event)
            obs_.event(c.id, dev, Event{"duplicate", "connection #" + std::to_string(d.live) +
                                                         " is updating a device with this uid: turned away"},
                       ms, false);
          c.ch->drop();
          return;
        }
      }
      d.live = c.id;
    }
    if (!obs_.event || c.turned_away || c.dropped) return;  // (a dropped one's end was told as it was dropped)
    if (e.kind == "done" && may_dial_again(c))
      obs_.event(c.id, dev, Event{"disconnect", c.session.detail()}, ms, c.again);
    else
      obs_.event(c.id, dev, e, ms, c.again);
  }

  // Gives `c` up, its "disconnect" event saying why (the end its session then reports is not
  // told again: on_event).
  void drop(Connection& c, const std::string& why) {
    if (obs_.event) obs_.event(c.id, c.session.device(), Event{"disconnect", why}, now(), false);
    c.dropped = true;
    c.ch->drop();
  }

  // Two reply timeouts, as push_tcp gives a newcomer to say who it is.
  std::uint64_t mute_ms() const { return 2 * std::uint64_t{opt_.push.session.reply_timeout_ms}; }

  // How long until `c` may make room for a newcomer (0: now); none if waiting will not make it so.
  // Mute connections first (they hold no device), by age; then devices silent mid-update.
  std::optional<std::uint64_t> replaceable_in(const Connection& c) const {
    if (c.dropped || c.ch->stopped()) return std::nullopt;
    if (!c.session.device()) return mute_ms() - std::min(mute_ms(), ms_since(c.t0));
    // In the download only: its round trips are measured there (a START's reply on a laggy link
    // may take seconds), and silence is expected while a device installs.
    if (c.turned_away || c.session.phase() != Phase::download) return std::nullopt;
    const std::uint64_t quiet = 2 * c.session.reply_timeout(), silent = c.ch->silent_ms();
    return quiet - std::min(quiet, silent);
  }
  // The connection that may make room now, if any: the oldest mute one, else the oldest silent one.
  std::shared_ptr<Connection> replaceable() const {
    std::shared_ptr<Connection> silent;
    for (const auto& [id, c] : conns_)  // ids grow with time
      if (replaceable_in(*c) == std::uint64_t{0}) {
        if (!c->session.device()) return c;
        if (!silent) silent = c;
      }
    return silent;
  }

  // All slots taken and none may make room yet: accept once the first may (or look again after
  // mute_ms(): a device not in its download now may be later).
  void check_replaceable_later() {
    std::optional<std::uint64_t> soonest;
    for (const auto& [id, c] : conns_)
      if (const auto in = replaceable_in(*c)) soonest = std::min(soonest.value_or(*in), *in);
    if (!soonest) soonest = mute_ms();
    retry_.expires_after(std::chrono::milliseconds(*soonest + 1));
    retry_.async_wait([this](std::error_code e) {
      if (!e) accept();
    });
  }

  // A connection's channel stopped: its session has its outcome.
  void ended(std::uint32_t id) {
    const auto it = conns_.find(id);
    if (it == conns_.end()) return;
    const std::shared_ptr<Connection> c = it->second;
    conns_.erase(it);
    const Session& s = c->session;
    if (s.device() && !c->turned_away) {
      Device& d = devices_[uid_of(*s.device())];
      if (d.live == id) d.live = 0;
      if (!d.ended) last_work_ms_ = now();  // see arm_idle()
      DeviceReport r{id, report_of(s, c->t0, d.resends), d.ended};
      if (may_dial_again(*c)) {
        d.lost_ms = now();
        d.resends = r.report.resends;  // the next connection resumes; its re-sends add up
        if (!d.ended) d.last = r;
      } else {
        record_end(d, r);
        if (obs_.ended) obs_.ended(r);
        if (opt_.devices != 0 && end_order_.size() >= opt_.devices) close();
      }
    }
    if (held_ && !closing_ && conns_.size() < opt_.max_connections) start(std::exchange(held_, nullptr));
    accept();
    if (conns_.empty() && closing_) io_.stop();
  }

  // A device's session ended other than by a dropped link. Once a device runs the image
  // (upgraded, or up to date), that is its outcome: a later session (it dialled again, and went
  // silent) does not change what it runs. Devices are listed in the order they first ended.
  void record_end(Device& d, const DeviceReport& r) {
    d.resends = 0;
    if (!(d.ended && runs_image(d))) d.last = r;
    if (!d.ended) end_order_.push_back(&d);
    d.ended = true;
  }

  // The session ended with its connection, not with the device: the link dropped, or the device
  // went silent mid-update (went_silent(), channel.hpp). The device may dial again and resume;
  // until it does it has not ended.
  bool may_dial_again(Connection& c) const {
    if (!c.silent) c.silent = went_silent(c.session, *c.ch);
    return c.session.outcome() == Outcome::link_lost || *c.silent;
  }

  static bool runs_image(const Device& d) {
    return d.last.report.outcome == Outcome::upgraded || d.last.report.outcome == Outcome::up_to_date;
  }

  // --idle counts from the last moment a device had work under way: a connection whose device
  // has not ended, or a device whose connection dropped mid-update (one installing the image,
  // whose reset took its modem's connection with it) for -t after the drop, as `ota push`
  // waits for it to dial again. Devices that dial again after they ended (a modem redials whenever its
  // connection closes) are no work, and neither is a connection that has not said HELLO; but
  // the wait does not end while one of those is younger than mute_ms(), so a device about to say
  // HELLO is not dropped. (Not while any is open: a modem whose board is dead redials whenever
  // its connection is closed, and would keep the serve going for ever.)
  void arm_idle() {
    if (opt_.idle_ms == 0 || closing_) return;
    idle_.expires_after(std::chrono::milliseconds(std::min<std::uint32_t>(opt_.idle_ms, 250)));
    idle_.async_wait([this](std::error_code ec) {
      if (ec) return;
      bool working = false, unknown = false;
      for (auto& [id, c] : conns_) {
        const auto& dev = c->session.device();
        if (!dev) unknown = unknown || ms_since(c->t0) < mute_ms();
        else if (const auto it = devices_.find(uid_of(*dev)); it == devices_.end() || !it->second.ended) working = true;
      }
      for (const auto& [uid, d] : devices_)
        working = working || (!d.ended && d.live == 0 && now() - d.lost_ms < opt_.push.connect_timeout_ms);
      if (working) last_work_ms_ = now();
      if (!working && !unknown && now() - last_work_ms_ >= opt_.idle_ms) {
        idle_fired_ = true;
        close();
        return;
      }
      arm_idle();
    });
  }

  // No new connections; the devices under way finish. A connection whose device has not said
  // HELLO yet is no device under way: it is dropped.
  void close() {
    if (closing_) return;
    closing_ = true;
    idle_.cancel();
    retry_.cancel();
    std::error_code ignored;
    acceptor_.close(ignored);  // new dials are refused at once, not left in the backlog
    if (held_) held_->sock.close(ignored);  // never started: it has said nothing
    held_.reset();
    for (auto& [id, c] : conns_) {  // drop() leaves conns_ as it is: ended() is posted
      if (c->session.device() || c->dropped) continue;
      // Said as what it is: no link lost, and what the device had sent so far is no garble (a
      // HELLO cut short by this close, most likely).
      drop(*c, "closed by the serve, which is ending: it had said no HELLO yet");
    }
    if (conns_.empty()) io_.stop();
  }

  // Ctrl-C: stop accepting, and every session under way ABORTs its download (devices keep what
  // they stored; the next server resumes).
  void interrupt() {
    close();
    for (auto& [id, c] : conns_) c->ch->interrupt();
  }

  asio::io_context& io_;
  asio::ip::tcp::acceptor& acceptor_;
  const Image& img_;
  const ServeOptions& opt_;
  const ServeObserver& obs_;
  Clock::time_point t0_;
  asio::steady_timer idle_;
  asio::steady_timer retry_;  // the next accept after one failed
  Interrupts interrupts_;
  std::map<std::uint32_t, std::shared_ptr<Connection>> conns_;
  // Accepted at max_connections to replace a mute connection that then spoke: started when a
  // connection ends. No other accept meanwhile.
  std::shared_ptr<Connection> held_;
  std::map<Uid, Device> devices_;  // std::map: the addresses in end_order_ stay valid
  std::vector<Device*> end_order_;
  SessionOptions session_options_;
  std::uint32_t next_id_ = 1;
  std::uint64_t last_work_ms_ = 0;
  bool accepting_ = false;
  bool closing_ = false;
  bool idle_fired_ = false;
  bool accept_failed_ = false;
};

}  // namespace

ServeReport serve_tcp(const std::string& listen, const Image& img, const ServeOptions& opt,
                      const ServeObserver& obs, std::function<void(std::uint16_t)> on_listening) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  if (Error e = listen_on(acceptor, listen)) {
    ServeReport r;
    r.error = e.text;
    return r;
  }
  Server server(io, acceptor, img, opt, obs);  // with it the SIGINT/SIGTERM handling, before anyone is told
  if (on_listening) on_listening(acceptor.local_endpoint().port());
  return server.run();
}

}  // namespace ota::host

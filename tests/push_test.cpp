// push_serial and push_tcp over a real pty and real TCP connections whose far end is the
// simulated device (sim::Device), driven by a thread of the test so that it can misbehave the way
// hardware and modems do.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "ota/bytes.hpp"
#include "ota/frame.hpp"
#include "ota/protocol.hpp"
#include "ota/host/push.hpp"
#include "ota/host/serve.hpp"
#include "sim/device.hpp"

namespace {

using namespace std::chrono_literals;

// The image the pushes offer: v2, the largest the internal layout takes.
ota::host::Image v2_image() {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 26 * 1024);
  return img;
}

// A TCP connection to `port` on this machine; -1 when nobody listens there.
int try_dial(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return fd;
  ::close(fd);
  return -1;
}
// The same where the server must be listening (a test failure if not).
int dial(std::uint16_t port) {
  const int fd = try_dial(port);
  EXPECT_GE(fd, 0) << "nobody listens on port " << port;
  return fd;
}

// A modem whose board is dead: it dials `port`, says nothing until the server closes the
// connection, and dials again at once, until `quit` or until nobody listens.
void redial_mute(std::uint16_t port, const std::atomic<bool>& quit) {
  while (!quit) {
    const int fd = try_dial(port);
    if (fd < 0) return;
    std::array<char, 256> buf{};
    while (!quit) {  // until the server closes it
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5) > 0 && ::read(fd, buf.data(), buf.size()) <= 0) break;
    }
    ::close(fd);
  }
}

// A HELLO frame as a device sends it (behind a 0x00 that ends any partial frame).
std::vector<std::uint8_t> hello_frame(const ota::Hello& h) {
  std::uint8_t payload[ota::Hello::kSize];
  ota::encode(h, payload);
  std::vector<std::uint8_t> frame(ota::encoded_size_max(ota::Hello::kSize) + 1);
  frame[0] = 0;
  frame.resize(1 + ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::hello), payload, sizeof payload,
                                     frame.data() + 1, frame.size() - 1));
  return frame;
}

// What relay_device() does when the device says RESULT: goes on, or stops there (the device
// resets and its modem drops) after passing on what it said up to the RESULT, or losing it all
// with the link.
enum class AtResult { go_on, pass_on_and_stop, lose_and_stop };
struct Relayed {
  int starts = 0;       // STARTs that came from the server
  bool result = false;  // the device said RESULT
};
// Relays between a connection and a sim::Device until the server closes it or `limit` passes.
Relayed relay_device(int fd, sim::Device& dev, AtResult at, std::chrono::milliseconds limit) {
  Relayed r;
  ota::FrameDecoderBuffer<300> from_server;
  for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < limit;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5) <= 0) continue;
    std::uint8_t buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i)
      if (from_server.feed(buf[i]) == ota::FrameDecoder::Event::frame &&
          from_server.frame().type == static_cast<std::uint8_t>(ota::MsgType::start))
        ++r.starts;
    dev.receive(buf, static_cast<std::size_t>(n));
    const auto out = dev.take_output();
    if (at != AtResult::go_on) {
      ota::FrameDecoderBuffer<300> d;
      for (std::size_t i = 0; i < out.size(); ++i)
        if (d.feed(out[i]) == ota::FrameDecoder::Event::frame &&
            d.frame().type == static_cast<std::uint8_t>(ota::MsgType::result)) {
          if (at == AtResult::pass_on_and_stop) (void)::send(fd, out.data(), i + 1, MSG_NOSIGNAL);
          r.result = true;
          return r;
        }
    }
    if (!out.empty()) (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  }
  return r;
}

// A device faked frame by frame, for what a sim::Device does not do (report another build's
// install): answers HELLO_REQ with a HELLO of `role` and `version` reporting `report` (and
// another build's session CRC), and REPORT_ACK with one reporting nothing. Counts the STARTs
// from the server; with close_at_start the first one ends it (lost with the link).
int fake_device(int fd, ota::Role role, std::uint32_t version, ota::Report report, bool close_at_start,
                std::chrono::milliseconds limit) {
  auto hello = [&](ota::Report r) {
    ota::Hello h;
    for (int i = 0; i < 12; ++i) h.uid[i] = static_cast<std::uint8_t>(0x50 + i);
    h.role = role;
    h.app_version = version;
    h.window = 8;
    h.max_chunk = 256;
    h.staging_capacity = ota::kInternalLayout.image_limit;
    h.report = r;
    h.session_crc = 0x12345678;
    return hello_frame(h);
  };
  int starts = 0;
  bool acked = false;
  ota::FrameDecoderBuffer<300> from_server;
  for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < limit;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5) <= 0) continue;
    std::uint8_t buf[4096];
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; ++i)
      if (from_server.feed(buf[i]) == ota::FrameDecoder::Event::frame) {
        const auto type = static_cast<ota::MsgType>(from_server.frame().type);
        if (type == ota::MsgType::start) {
          ++starts;
          if (close_at_start) return starts;
        }
        if (type == ota::MsgType::report_ack) acked = true;
        if (type == ota::MsgType::hello_request || type == ota::MsgType::report_ack) {
          const auto f = hello(acked ? ota::Report::none : report);
          (void)::send(fd, f.data(), f.size(), MSG_NOSIGNAL);
        }
      }
  }
  return starts;
}

// The device's end of a pty: relays bytes between the master side and a sim::Device until
// `stall_after` bytes have come from the server, then stops reading (a frozen device, a USB
// adapter that no longer drains), until `drain` is set: from then on it reads and drops. With a
// `rate` it takes at most that many bytes per second from the server: the line's baud rate
// (what the push writes waits in the tty, as it waits in an adapter).
class StallingDevice {
 public:
  explicit StallingDevice(std::size_t stall_after, std::size_t rate = 0) : stall_after_(stall_after), rate_(rate) {
    char name[256];
    int slave = -1;
    EXPECT_EQ(::openpty(&master_, &slave, name, nullptr, nullptr), 0);
    termios t{};
    ::tcgetattr(slave, &t);
    ::cfmakeraw(&t);
    ::tcsetattr(slave, TCSANOW, &t);
    slave_ = slave;  // kept open: the master never sees a hang-up
    path_ = name;
    dev_.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
    dev_.boot();
    thread_ = std::thread([this] { run(); });
  }
  ~StallingDevice() {
    drain = true;
    done_ = true;
    thread_.join();
    ::close(master_);
    ::close(slave_);
  }
  const std::string& path() const { return path_; }
  bool stalled() const { return stalled_; }
  std::atomic<bool> drain{false};

 private:
  void run() {
    std::uint8_t buf[4096];
    while (!done_) {
      if (received_ >= stall_after_ && !drain) {
        stalled_ = true;
        std::this_thread::sleep_for(5ms);
        continue;
      }
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0) continue;
      const std::size_t take = rate_ == 0 ? sizeof buf : std::max<std::size_t>(1, rate_ / 100);
      if (rate_ != 0) std::this_thread::sleep_for(10ms);
      const ssize_t n = ::read(master_, buf, take);
      if (n <= 0) continue;
      if (drain) continue;
      received_ += static_cast<std::size_t>(n);
      dev_.receive(buf, static_cast<std::size_t>(n));
      const auto out = dev_.take_output();
      if (!out.empty() && ::write(master_, out.data(), out.size()) < 0) return;
    }
  }

  sim::Device dev_{ota::kInternalLayout};
  int master_ = -1, slave_ = -1;
  std::string path_;
  std::size_t stall_after_;
  std::size_t rate_;
  std::size_t received_ = 0;
  std::atomic<bool> stalled_{false};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The device stops reading mid-download. The session gives up after its retries; its last bytes
// can never be written, and the push must still end (timeout) instead of waiting for the tty
// for ever.
TEST(PushSerial, ADeviceThatStopsReadingEndsThePushWithATimeout) {
  StallingDevice dev(8 * 1024);
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 50;
  opt.session.max_retries = 40;  // enough re-sent windows to fill the pty's buffers
  auto result = std::async(std::launch::async, [&] { return ota::host::push_serial(dev.path(), img, opt, {}); });
  const bool ended = result.wait_for(20s) == std::future_status::ready;
  EXPECT_TRUE(ended) << "the push still waits for the tty";
  EXPECT_TRUE(dev.stalled());
  dev.drain = true;  // unsticks a push that did not end, so that the test can finish
  const ota::host::PushReport r = result.get();
  if (ended) {
    EXPECT_EQ(r.outcome, ota::host::Outcome::timeout) << r.detail;
    EXPECT_LT(r.elapsed_ms, 15'000u);
  }
}

// The same stuck device, and the user presses Ctrl-C once: the push ends "interrupted" within
// the drain limit, although the ABORT it queued can never be written.
TEST(PushSerial, OneCtrlCEndsAPushStuckOnADeviceThatStoppedReading) {
  StallingDevice dev(8 * 1024);
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 50;
  opt.session.max_retries = 100'000;  // the session itself never gives up here
  auto result = std::async(std::launch::async, [&] { return ota::host::push_serial(dev.path(), img, opt, {}); });
  for (int i = 0; i < 400 && !dev.stalled(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(dev.stalled());
  std::this_thread::sleep_for(2s);  // the re-sent windows fill the pty
  ::kill(::getpid(), SIGINT);       // caught by the push's signal set
  const bool ended = result.wait_for(6s) == std::future_status::ready;
  EXPECT_TRUE(ended) << "one Ctrl-C did not end the push";
  dev.drain = true;
  if (!ended) ::kill(::getpid(), SIGINT);  // the second one stops it by force
  const ota::host::PushReport r = result.get();
  if (ended) {
    EXPECT_EQ(r.outcome, ota::host::Outcome::interrupted) << r.detail;
  }
}

// A slow line (9600 baud, or less): the device takes what the push queued at the line's pace.
// The reply timeout allows for the frames' time on the line, so nothing is sent twice; without
// that, each window timed out while it was still on its way and was queued again behind itself.
TEST(PushSerial, ASlowLineGetsNoResendsFromFramesStillOnTheirWay) {
  StallingDevice dev(SIZE_MAX, 960);  // 9600 baud, 8N1
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::PushOptions opt;
  opt.baud = 9600;
  opt.session.reply_timeout_ms = 300;  // a tight timeout: the frames' line time must be added
  const auto r = ota::host::push_serial(dev.path(), img, opt, {});
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(r.resends, 0u);
}

// A second push on a serial port that a push already uses is refused (each would take the
// other's bytes), and the first goes on.
TEST(PushSerial, ASecondPushOnTheSamePortIsRefused) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_EQ(::openpty(&master, &slave, name, nullptr, nullptr), 0);  // nobody answers
  ota::host::PushOptions opt;
  opt.session.hello_timeout_ms = 1500;
  const auto image = v2_image();
  auto first = std::async(std::launch::async, [&] { return ota::host::push_serial(name, image, opt, {}); });
  std::this_thread::sleep_for(300ms);
  ota::host::PushOptions slow = opt;
  slow.baud = 9600;
  const auto second = ota::host::push_serial(name, image, slow, {});
  EXPECT_EQ(second.outcome, ota::host::Outcome::no_link);
  termios t{};
  ASSERT_EQ(::tcgetattr(slave, &t), 0);
  EXPECT_EQ(::cfgetospeed(&t), static_cast<speed_t>(B115200)) << "the refused push changed the line";
  EXPECT_NE(second.detail.find("in use by another push"), std::string::npos) << second.detail;
  EXPECT_EQ(first.get().outcome, ota::host::Outcome::timeout) << "the first push was not disturbed";
  ::close(master);
  ::close(slave);
}

// What another program gets when it opens the tty `name` now: 0 if it could, else errno. Root
// may open an exclusive tty: as root the open is tried by `nobody` in a child process (the tty
// made world-writable first, or that open would fail on permissions instead).
int other_open_errno(const char* name, int slave) {
  if (::geteuid() != 0) {
    const int fd = ::open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  }
  if (::fchmod(slave, 0666) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(255);
    const int fd = ::open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
    ::_exit(fd >= 0 ? 0 : errno);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// Every rate the CLI offers is set on the line (1500000 among them, which asio's own option
// lacks), and while a push has the port it is held exclusively (other opens fail, but for root);
// the flag goes when the push ends.
TEST(PushSerial, TheLineGetsTheRateAndIsExclusiveWhileThePushRuns) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_EQ(::openpty(&master, &slave, name, nullptr, nullptr), 0);  // nobody answers
  for (const auto& [baud, speed] : {std::pair{1200u, B1200}, {115200u, B115200}, {1500000u, B1500000}, {2000000u, B2000000}}) {
    ota::host::PushOptions opt;
    opt.baud = baud;
    opt.session.hello_timeout_ms = 400;
    const auto image = v2_image();
    auto push = std::async(std::launch::async, [&] { return ota::host::push_serial(name, image, opt, {}); });
    std::this_thread::sleep_for(150ms);
    termios t{};
    ASSERT_EQ(::tcgetattr(slave, &t), 0);
    EXPECT_EQ(::cfgetospeed(&t), static_cast<speed_t>(speed)) << baud;
    EXPECT_EQ(t.c_cflag & CRTSCTS, 0u);
    int exclusive = 0;
    ASSERT_EQ(::ioctl(slave, TIOCGEXCL, &exclusive), 0);
    EXPECT_EQ(exclusive, 1) << baud;
    EXPECT_EQ(other_open_errno(name, slave), EBUSY) << "another program could open the port";
    const auto r = push.get();
    EXPECT_EQ(r.outcome, ota::host::Outcome::timeout) << baud << ": " << r.detail;
    ASSERT_EQ(::ioctl(slave, TIOCGEXCL, &exclusive), 0);
    EXPECT_EQ(exclusive, 0) << "still exclusive after the push";
  }
  // The rest of the rates the CLI offers (ota_main.cpp takes them from kSerialRates): each is
  // set, and the push waits for the device instead of refusing the rate.
  for (const std::uint32_t baud : ota::host::kSerialRates) {
    ota::host::PushOptions opt;
    opt.baud = baud;
    opt.session.hello_timeout_ms = 100;
    const auto r = ota::host::push_serial(name, v2_image(), opt, {});
    EXPECT_EQ(r.outcome, ota::host::Outcome::timeout) << baud << ": " << r.detail;
  }
  ::close(master);
  ::close(slave);
}

// A simulated device behind a modem: dials the server over TCP and relays bytes to its
// sim::Device until `stall_after` bytes came from the server; then it either closes the connection
// (a clean drop) or leaves it open and silent (a modem that lost its carrier: no FIN, no RST, a
// half-open connection). It can dial again, resuming with the same flash contents.
class ModemDevice {
 public:
  enum class Then { close, go_silent };
  // Version 0: no application, the bootloader waits in recovery mode.
  ModemDevice(std::uint64_t seed, std::uint32_t version) : dev_(ota::kInternalLayout, seed) {
    if (version != 0) dev_.factory_install(sim::make_app_image(ota::kInternalLayout, version, 12 * 1024));
    dev_.boot();
  }
  ~ModemDevice() {
    hang_up();
    for (int fd : silent_) ::close(fd);
  }
  void dial(std::uint16_t port, std::size_t stall_after = SIZE_MAX, Then then = Then::close) {
    dial(port, stall_after, then, std::chrono::milliseconds(0));
  }
  // Stops reading for `pause` once stall_after bytes came, then goes on on the same connection
  // (a device busy for a while, a link that stalls and recovers).
  void dial_and_pause(std::uint16_t port, std::size_t stall_after, std::chrono::milliseconds pause) {
    dial(port, stall_after, Then::close, pause);
  }
  void dial(std::uint16_t port, std::size_t stall_after, Then then, std::chrono::milliseconds pause) {
    hang_up();
    quit_ = false;
    idle_ = false;
    thread_ = std::thread([=, this] { relay(port, stall_after, then, pause); });
  }
  // Until the connection stalled (closed or silent) or the server closed it.
  bool wait_idle(std::chrono::milliseconds limit) {
    for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < limit;) {
      if (idle_) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  void hang_up() {
    quit_ = true;
    if (thread_.joinable()) thread_.join();
  }
  sim::Device& device() { return dev_; }
  std::size_t bytes_received() const { return received_total_; }  // from the server, all connections
  std::chrono::milliseconds pace{0};  // a pause after each burst read: a slow link
  std::chrono::milliseconds first_answer_delay{0};  // before the first answer on a connection
  std::chrono::milliseconds answer_delay{0};  // before every answer: a link with that latency
  // Each connection hears nothing but RECOVER until one comes: a device that was reset as it
  // dialled, its bootloader in its listening window (bootloader/main.cpp), which takes RECOVER
  // and nothing else, then stays in recovery mode.
  bool deaf_until_recover = false;
  // How long since the device last answered (since it dialled, before its first answer).
  std::chrono::milliseconds silent_for() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 last_answer_.load());
  }

 private:
  void relay(std::uint16_t port, std::size_t stall_after, Then then, std::chrono::milliseconds pause) {
    const int fd = try_dial(port);
    bool open = fd >= 0;
    last_answer_ = std::chrono::steady_clock::now();
    std::size_t received = 0;
    std::uint8_t buf[4096];
    bool deaf = deaf_until_recover;
    ota::FrameDecoderBuffer<64> window;  // what the listening window makes of the bytes
    while (open && !quit_) {
      if (received >= stall_after) {
        if (pause.count() == 0) break;
        std::this_thread::sleep_for(pause);
        pause = std::chrono::milliseconds(0);
        stall_after = SIZE_MAX;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0) continue;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      if (received == 0) std::this_thread::sleep_for(first_answer_delay);
      std::this_thread::sleep_for(answer_delay);
      received += static_cast<std::size_t>(n);
      received_total_ += static_cast<std::size_t>(n);
      std::size_t from = 0;  // the bytes the device hears
      for (; deaf && from < static_cast<std::size_t>(n); ++from)
        deaf = !(window.feed(buf[from]) == ota::FrameDecoder::Event::frame &&
                 window.frame().type == static_cast<std::uint8_t>(ota::MsgType::recover));
      if (deaf) continue;
      if (from > 0) {  // the RECOVER the window heard: the device answers it
        std::uint8_t recover[ota::encoded_size_max(0)];
        dev_.receive(recover, ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::recover), nullptr, 0,
                                                recover, sizeof recover));
      }
      dev_.receive(buf + from, static_cast<std::size_t>(n) - from);
      const auto out = dev_.take_output();
      if (!out.empty() && ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) break;  // closed by the server: no SIGPIPE
      if (!out.empty()) last_answer_ = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(pace);
    }
    if (open && received >= stall_after && then == Then::go_silent) silent_.push_back(fd);  // held open
    else ::close(fd);
    idle_ = true;
  }

  sim::Device dev_;
  std::thread thread_;
  std::vector<int> silent_;  // connections left half-open, closed at the end of the test
  std::atomic<bool> quit_{false};
  std::atomic<bool> idle_{false};
  std::atomic<std::chrono::steady_clock::time_point> last_answer_{std::chrono::steady_clock::now()};
  std::atomic<std::size_t> received_total_{0};
};

// push_tcp on an ephemeral port, run by a thread; `port` once it listens. Its events are kept.
struct TcpPush {
  std::promise<std::uint16_t> listening;
  std::future<ota::host::PushReport> result;
  std::uint16_t port = 0;
  TcpPush(const ota::host::Image& img, const ota::host::PushOptions& opt) {
    obs.event = [this](const ota::host::Event& e, std::uint64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back(e.kind + ": " + e.text);
    };
    result = std::async(std::launch::async, [&img, opt, this] {
      return ota::host::push_tcp("127.0.0.1:0", img, opt, obs, [this](std::uint16_t p) { listening.set_value(p); });
    });
    port = listening.get_future().get();
  }
  // Waits up to `limit` until at least `count` events contain `text`; how many do then.
  int wait_told(const std::string& text, int count, std::chrono::milliseconds limit = 3s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (told(text) < count && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
    return told(text);
  }
  // How many events so far contain `text`.
  int told(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    return static_cast<int>(std::count_if(events.begin(), events.end(),
                                          [&](const std::string& e) { return e.find(text) != std::string::npos; }));
  }
  ota::host::PushObserver obs;
  std::mutex mutex;
  std::vector<std::string> events;
};

// serve_tcp on an ephemeral port, run by a thread; `port` once it listens.
struct TcpServe {
  std::promise<std::uint16_t> listening;
  std::future<ota::host::ServeReport> result;
  std::uint16_t port = 0;
  const ota::host::ServeOptions opt;
  const ota::host::ServeObserver obs;
  TcpServe(const ota::host::Image& img, ota::host::ServeOptions o, ota::host::ServeObserver observer = {})
      : opt(std::move(o)), obs(std::move(observer)) {
    result = std::async(std::launch::async, [&img, this] {
      return ota::host::serve_tcp("127.0.0.1:0", img, opt, obs, [this](std::uint16_t p) { listening.set_value(p); });
    });
    port = listening.get_future().get();
  }
  // Its report once it ended by itself within `limit`; one that did not is stopped with SIGINT
  // (a failing test must not hang) and reported `interrupted`.
  ota::host::ServeReport finish(std::chrono::milliseconds limit) {
    if (result.wait_for(limit) != std::future_status::ready) ::raise(SIGINT);
    return result.get();
  }
};

// A connection to `port` that says nothing until it is destroyed (a port scanner, a stray
// client), or closes at once.
struct Stranger {
  int fd = -1;
  explicit Stranger(std::uint16_t port, bool close_at_once = false) : fd(dial(port)) {
    if (close_at_once) ::close(std::exchange(fd, -1));
  }
  ~Stranger() {
    if (fd >= 0) ::close(fd);
  }
};

// The modem drops without closing the connection, and the device dials again: the new
// connection takes over at once (not after the dead session's retries run out), and the download
// resumes on it.
TEST(PushTcp, ADeviceThatRedialsWhileItsOldConnectionIsHalfOpenIsServed) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 1000;
  opt.session.max_retries = 30;  // the dead connection alone would hold the push for 30 s
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  dev.dial(push.port, 8 * 1024, ModemDevice::Then::go_silent);
  ASSERT_TRUE(dev.wait_idle(10s));
  std::this_thread::sleep_for(1200ms);  // a modem takes its time to redial: silent > a reply timeout
  dev.dial(push.port);
  const bool ended = push.result.wait_for(10s) == std::future_status::ready;
  EXPECT_TRUE(ended) << "the redialled connection was not served";
  dev.hang_up();  // ends a push still waiting on the new connection (link lost)
  const auto r = push.result.get();
  if (ended) {
    EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
    EXPECT_EQ(dev.device().running_version(), 2u);
  }
}

// Another device dials the port while the device being updated talks: it is turned away and the
// download goes on, undisturbed.
TEST(PushTcp, AnotherDeviceDiallingInDuringALiveDownloadIsTurnedAway) {
  const auto img = v2_image();
  TcpPush push(img, {});
  ModemDevice a(1, 1), b(2, 1);
  a.pace = 50ms;  // a download of about a second
  a.dial(push.port);
  std::this_thread::sleep_for(200ms);
  b.dial(push.port);
  EXPECT_TRUE(b.wait_idle(5s)) << "the other device was kept";
  ASSERT_EQ(push.result.wait_for(30s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(r.resends, 0u);
  EXPECT_EQ(a.device().running_version(), 2u);
  EXPECT_EQ(b.device().running_version(), 1u) << "untouched";
}

// `a` drops its connection 8 KB into the download; `b`, another device, dials while it is gone
// and is turned away.
void drop_then_stranger(TcpPush& push, ModemDevice& a, ModemDevice& b) {
  a.dial(push.port, 8 * 1024, ModemDevice::Then::close);
  ASSERT_TRUE(a.wait_idle(10s));
  b.dial(push.port);
  ASSERT_TRUE(b.wait_idle(10s)) << "the server kept the other device";
}

// A device drops mid-download and ANOTHER device (already on v2) dials the same port: it is not
// taken for the first one coming back (which would end "up to date" with the first device half
// downloaded); the push waits on for the first, which resumes and finishes.
TEST(PushTcp, AReconnectFromAnotherDeviceIsNotTakenForTheFirst) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 10'000;
  TcpPush push(img, opt);
  ModemDevice a(1, 1), b(2, 2);
  ASSERT_NO_FATAL_FAILURE(drop_then_stranger(push, a, b));
  a.dial(push.port);
  ASSERT_EQ(push.result.wait_for(20s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  ASSERT_TRUE(r.device);
  EXPECT_EQ(a.device().running_version(), 2u);
  EXPECT_EQ(b.device().running_version(), 2u) << "untouched";
}

// The modem loses its carrier without a FIN: the session's re-sends run out (the device "stopped
// answering") before the device dials again. Over TCP that is a dead link, not the end: the push
// waits for the redial and the download resumes on it. When no redial comes, the push ends with
// the timeout and says so.
TEST(PushTcp, ASessionThatTimesOutOnADeadLinkWaitsForTheRedial) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 200;
  opt.session.max_retries = 3;  // the session gives up ~0.8 s into the silence
  opt.connect_timeout_ms = 10'000;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  dev.dial(push.port, 8 * 1024, ModemDevice::Then::go_silent);
  ASSERT_TRUE(dev.wait_idle(10s));
  ASSERT_EQ(push.wait_told("waiting for the device to dial again", 1), 1) << "the session did not time out";
  ASSERT_EQ(push.result.wait_for(500ms), std::future_status::timeout) << "the push ended: " << push.result.get().detail;
  dev.dial(push.port);
  ASSERT_EQ(push.result.wait_for(20s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(dev.device().running_version(), 2u);
  EXPECT_EQ(push.told("resume"), 1) << "the download did not resume";

  opt.connect_timeout_ms = 500;
  TcpPush alone(img, opt);
  ModemDevice other(2, 1);
  other.dial(alone.port, 8 * 1024, ModemDevice::Then::go_silent);
  ASSERT_EQ(alone.result.wait_for(10s), std::future_status::ready);
  const auto lost = alone.result.get();
  EXPECT_EQ(lost.outcome, ota::host::Outcome::link_lost) << "as ota serve reports a dead link";
  EXPECT_NE(lost.detail.find("went silent and did not dial again within 500 ms"), std::string::npos) << lost.detail;
}

// The device drops mid-download and does not come back; another device dials meanwhile and is
// turned away. The push's result is still about the device it updated (uid, version).
TEST(PushTcp, AnotherDeviceTurnedAwayLeavesTheResultAboutTheDevice) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 1500;
  TcpPush push(img, opt);
  ModemDevice a(1, 1), b(2, 1);
  ASSERT_NO_FATAL_FAILURE(drop_then_stranger(push, a, b));
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::link_lost) << r.detail;
  ASSERT_TRUE(r.device) << "the result lost the device";
  EXPECT_TRUE(std::equal(std::begin(r.device->uid), std::end(r.device->uid), a.device().info().uid));
  EXPECT_EQ(r.device->app_version, 1u);
  EXPECT_EQ(b.device().running_version(), 1u) << "untouched";
}

// The device is busy for a while (silent for more than a reply timeout, on a connection that is
// fine) and a stranger connects meanwhile. The stranger is asked who it is, says nothing, and is
// turned away: the device's connection is kept and its download goes on.
TEST(PushTcp, AStrangerDuringASilentSpellDoesNotTakeTheDevicesConnection) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 500;
  opt.session.max_retries = 20;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  dev.dial_and_pause(push.port, 8 * 1024, 2500ms);
  ASSERT_GT(push.wait_told("retry", 1), 0) << "the device never went silent";
  std::this_thread::sleep_for(200ms);
  const Stranger stranger(push.port);
  ASSERT_EQ(push.result.wait_for(20s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(dev.device().running_version(), 2u);
  EXPECT_EQ(push.told("it did not say HELLO"), 1);
}

// Connections that close before saying HELLO (a scanner, a device that hangs up at once) are not
// the device's reconnects: they neither use up max_reconnects nor stop the wait for the device.
// When no device ever says HELLO, the push says that.
TEST(PushTcp, ConnectionsThatNeverSayHelloDoNotUseUpTheReconnects) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.max_reconnects = 1;
  opt.connect_timeout_ms = 10'000;
  TcpPush push(img, opt);
  for (int i = 0; i < 4; ++i) {
    const Stranger s(push.port, true);
    push.wait_told("waiting for the device", i + 1, 1s);
  }
  EXPECT_EQ(push.told("waiting for the device"), 4);
  ASSERT_EQ(push.result.wait_for(100ms), std::future_status::timeout) << push.result.get().detail;
  ModemDevice dev(1, 1);
  dev.dial(push.port);
  ASSERT_EQ(push.result.wait_for(20s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;

  opt.connect_timeout_ms = 300;
  TcpPush nobody(img, opt);
  { const Stranger s(nobody.port, true); }
  ASSERT_EQ(nobody.result.wait_for(5s), std::future_status::ready);
  const auto none = nobody.result.get();
  EXPECT_EQ(none.outcome, ota::host::Outcome::timeout);
  EXPECT_NE(none.detail.find("no device said HELLO within 300 ms"), std::string::npos) << none.detail;
}

// The device dials again over a slow link just before the dead connection's session gives up:
// it is still being asked who it is when that session ends. The connection is the next one (its
// session asks again), not closed unseen, which would leave the push waiting for yet another
// dial.
TEST(PushTcp, ARedialStillBeingAskedWhenTheSessionGivesUpIsTheNextConnection) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 500;
  opt.session.max_retries = 1;  // the dead connection's session gives up ~1 s into the silence
  opt.connect_timeout_ms = 10'000;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  dev.dial(push.port, 8 * 1024, ModemDevice::Then::go_silent);
  ASSERT_TRUE(dev.wait_idle(10s));
  std::this_thread::sleep_for(600ms);  // quiet for more than a reply timeout: the newcomer is asked
  dev.first_answer_delay = 2000ms;     // and answers after the session has given up
  dev.dial(push.port);
  ASSERT_EQ(push.result.wait_for(8s), std::future_status::ready) << "the redial was dropped";
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(push.told("turned away"), 0);
  EXPECT_EQ(push.told("device connected"), 2);
}

// A device behind a modem that talks but takes nothing (its staging flash has failed): it answers
// HELLO_REQ, accepts START, and NAKs every DATA with flash_error. It dials again whenever the
// server closes the connection, as a modem in transparent mode does, up to `max_dials` times.
class RefusingModem {
 public:
  // vanish: instead, it takes every DATA, says RESULT ok, and then never speaks again (its reset
  // went wrong) while its modem stays up and redials.
  RefusingModem(std::uint16_t port, int max_dials, bool vanish = false)
      : vanish_(vanish), thread_([=, this] { run(port, max_dials); }) {}
  ~RefusingModem() {
    quit_ = true;
    thread_.join();
  }
  int dials() const { return dials_; }

 private:
  void send(int fd, ota::MsgType t, const std::uint8_t* p, std::size_t n) {
    std::uint8_t out[64];
    const std::size_t len = ota::encode_frame(static_cast<std::uint8_t>(t), p, n, out, sizeof out);
    if (::send(fd, out, len, MSG_NOSIGNAL) < 0) return;
  }
  void run(std::uint16_t port, int max_dials) {
    while (!quit_ && dials_ < max_dials) {
      const int fd = try_dial(port);
      if (fd < 0) return;
      ++dials_;
      ota::FrameDecoderBuffer<300> dec;
      std::uint8_t buf[4096];
      std::uint16_t count = 0;
      bool mute = false;
      while (!quit_) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5) <= 0) continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
          if (dec.feed(buf[i]) != ota::FrameDecoder::Event::frame || mute) continue;
          const auto type = static_cast<ota::MsgType>(dec.frame().type);
          ota::Start st;
          if (vanish_ && type == ota::MsgType::start && ota::decode(dec.frame(), st)) count = st.packet_count;
          if (vanish_ && type == ota::MsgType::data) {
            const std::uint16_t next = static_cast<std::uint16_t>(ota::get_u16(dec.frame().payload) + 1);
            std::uint8_t p[ota::Result::kSize];
            ota::encode(ota::Result{ota::Status::ok, 0}, p);
            if (next == count) {
              send(fd, ota::MsgType::result, p, sizeof p);
              mute = true;
            } else {
              std::uint8_t a[2];
              ota::put_u16(a, next);
              send(fd, ota::MsgType::data_ack, a, sizeof a);
            }
            continue;
          }
          if (type == ota::MsgType::hello_request || type == ota::MsgType::abort) {
            ota::Hello h;
            h.window = 4;
            h.uid[0] = 0x42;
            h.app_version = 1;
            h.staging_capacity = 26 * 1024;
            std::uint8_t p[ota::Hello::kSize];
            ota::encode(h, p);
            send(fd, ota::MsgType::hello, p, sizeof p);
          } else if (type == ota::MsgType::start) {
            std::uint8_t p[ota::StartReply::kSize];
            ota::encode(ota::StartReply{ota::Status::ok, 0}, p);
            send(fd, ota::MsgType::start_reply, p, sizeof p);
          } else if (type == ota::MsgType::data) {
            std::uint8_t p[ota::Nak::kSize];
            ota::encode(ota::Nak{ota::Status::flash_error, 0}, p);
            send(fd, ota::MsgType::data_nak, p, sizeof p);
          }
        }
      }
      ::close(fd);
    }
  }
  bool vanish_;
  std::atomic<bool> quit_{false};
  std::atomic<int> dials_{0};
  std::thread thread_;
};

// A device that took the whole image and did not come back after its reset has failed: the
// silence of the reboot phase is expected, not a dead link. push --listen and serve end with it
// at once, however often the modem dials again meanwhile (before, serve --devices 1 never ended).
TEST(PushTcp, ADeviceThatDoesNotComeBackAfterItsResetEndsThePush) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 2048);
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 200;
  opt.session.reboot_timeout_ms = 1000;
  opt.connect_timeout_ms = 3000;
  TcpPush push(img, opt);
  const auto t0 = std::chrono::steady_clock::now();
  RefusingModem dev(push.port, 20, true);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms) << "waited for redials";
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::timeout);
  EXPECT_NE(r.detail.find("did not come back"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("`ota push --recover` reaches its bootloader"), std::string::npos) << r.detail;

  ota::host::ServeOptions sopt;
  sopt.push = opt;
  sopt.devices = 1;
  TcpServe serve(img, sopt);
  RefusingModem fleet(serve.port, 20, true);
  const auto sr = serve.finish(10s);
  ASSERT_FALSE(sr.interrupted) << "serve waited for a device that failed";
  ASSERT_EQ(sr.ended.size(), 1u);
  EXPECT_EQ(sr.ended[0].report.outcome, ota::host::Outcome::timeout);
}

// A device that never speaks but whose modem redials at once whenever it is closed, two of them:
// each session hands the next newcomer on, and yet the push ends at connect_timeout (plus at most
// one hello timeout of a session begun before it), saying no device said HELLO.
TEST(PushTcp, MuteDiallersDoNotHoldThePushPastItsDeadline) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 200;
  opt.session.hello_timeout_ms = 900;
  opt.connect_timeout_ms = 1500;
  TcpPush push(img, opt);
  std::atomic<bool> quit{false};
  std::thread a(redial_mute, push.port, std::cref(quit)), b(redial_mute, push.port, std::cref(quit));
  const bool ended = push.result.wait_for(5s) == std::future_status::ready;
  quit = true;
  a.join();
  b.join();
  ASSERT_TRUE(ended) << "the push outlived its deadline";
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::timeout);
  EXPECT_NE(r.detail.find("no device said HELLO"), std::string::npos) << r.detail;
}

// A session that times out while the device talks (it keeps refusing) is the device's answer,
// not a dead link: push --listen and serve end with it at once, instead of dropping the device
// and running the same failing session again on each redial (serve: for ever).
TEST(PushTcp, ADeviceThatKeepsRefusingEndsThePushOnItsFirstConnection) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 100;
  opt.session.max_retries = 3;
  opt.connect_timeout_ms = 5'000;
  TcpPush push(img, opt);
  RefusingModem dev(push.port, 20);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::timeout);
  EXPECT_NE(r.detail.find("keeps refusing"), std::string::npos) << r.detail;
  EXPECT_EQ(push.told("device connected"), 1) << "the failing session ran again on a redial";

  ota::host::ServeOptions sopt;
  sopt.push = opt;
  sopt.devices = 1;
  TcpServe serve(img, sopt);
  RefusingModem fleet(serve.port, 20);
  const auto sr = serve.finish(10s);
  ASSERT_FALSE(sr.interrupted) << "serve went on with a device that refuses";
  ASSERT_EQ(sr.ended.size(), 1u);
  EXPECT_EQ(sr.ended[0].report.outcome, ota::host::Outcome::timeout);
  EXPECT_TRUE(sr.lost.empty());
}

// ota serve, the same dead link: a device whose session ran out of re-sends has not ended (it
// may dial again), so --devices 1 is not reached; it redials, resumes and is counted once,
// upgraded, not lost.
TEST(ServeTcp, ADeviceThatStopsAnsweringHasNotEndedAndResumesWhenItDialsAgain) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 1;
  opt.push.session.reply_timeout_ms = 200;
  opt.push.session.max_retries = 3;
  std::atomic<int> disconnects{0};
  ota::host::ServeObserver obs;
  obs.event = [&](std::uint32_t, const std::optional<ota::Hello>&, const ota::host::Event& e, std::uint64_t, bool) {
    if (e.kind == "disconnect") ++disconnects;
  };
  TcpServe serve(img, opt, obs);
  ModemDevice dev(1, 1);
  dev.dial(serve.port, 8 * 1024, ModemDevice::Then::go_silent);
  ASSERT_TRUE(dev.wait_idle(10s));
  for (int i = 0; i < 300 && disconnects == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(disconnects, 1) << "the session did not time out";
  ASSERT_EQ(serve.result.wait_for(500ms), std::future_status::timeout) << "serve ended on the timeout";
  dev.dial(serve.port);
  const auto r = serve.finish(20s);
  ASSERT_FALSE(r.interrupted);
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded) << r.ended[0].report.detail;
  EXPECT_TRUE(r.lost.empty());
  EXPECT_EQ(dev.device().running_version(), 2u);

  // One that never dials again is lost (as a dropped link is: exit 6), and its report says so,
  // once --idle has passed after the -t it has to dial again.
  opt.devices = 0;
  opt.idle_ms = 1000;
  opt.push.connect_timeout_ms = 1000;
  TcpServe quiet(img, opt);
  ModemDevice gone(2, 1);
  gone.dial(quiet.port, 8 * 1024, ModemDevice::Then::go_silent);
  const auto q = quiet.finish(20s);
  ASSERT_FALSE(q.interrupted);
  EXPECT_TRUE(q.ended.empty());
  ASSERT_EQ(q.lost.size(), 1u);
  EXPECT_EQ(q.lost[0].report.outcome, ota::host::Outcome::link_lost);
  EXPECT_NE(q.lost[0].report.detail.find("went silent and did not dial again"), std::string::npos) << q.lost[0].report.detail;
}

// A field link that drops often (a cellular modem losing its carrier every few KB) but makes
// progress on every connection: max_reconnects counts losses in a row without progress, so the
// seventh connection still finishes the download.
TEST(PushTcp, ALinkThatDropsOftenButProgressesEveryTimeFinishes) {
  const auto img = v2_image();  // 26 KB: 104 packets
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 10'000;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  for (int i = 0; i < 7; ++i) {  // ~3.5 KB per connection, then the carrier is lost
    dev.dial(push.port, 3 * 1024 + 512, ModemDevice::Then::close);
    ASSERT_TRUE(dev.wait_idle(10s));
    if (push.result.wait_for(300ms) == std::future_status::ready) break;
  }
  dev.dial(push.port);
  ASSERT_EQ(push.result.wait_for(30s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(dev.device().running_version(), 2u);
}

// A link that drops before any packet gets through, again and again: after max_reconnects losses
// in a row without progress the push gives up, and says so.
TEST(PushTcp, ALinkThatDropsWithoutProgressGivesUpAfterMaxReconnects) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 10'000;
  opt.max_reconnects = 3;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  for (int i = 0; i < 6 && push.result.wait_for(300ms) != std::future_status::ready; ++i) {
    dev.dial(push.port, 10, ModemDevice::Then::close);  // HELLO_REQ, then START: no packet
    ASSERT_TRUE(dev.wait_idle(10s));
  }
  ASSERT_EQ(push.result.wait_for(30s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::link_lost) << r.detail;
  EXPECT_NE(r.detail.find("the link was lost 4 times in a row without progress"), std::string::npos)
      << r.detail << "\n" << ::testing::PrintToString(push.events);
  EXPECT_EQ(dev.device().running_version(), 1u);
}

// A device on a link with 2 s of latency (a congested cellular link) is silent for 2 s between
// its answers, longer than the 1.5 s reply timeout it starts with; the session learns the round
// trip and waits longer (srtt + 4 x rttvar). Whether the device "still talks" is judged by that
// measured timeout too: a clone with its uid that dials 1.7 s into one of those silences is
// turned away, not taken for the device redialling over a half-open link (which would drop the
// device's live connection and update the clone instead).
template <class Server>
void a_clone_dials_into_a_silence_of_a_laggy_link(Server& server) {
  ModemDevice dev(1, 1), clone(1, 1);  // one seed: one uid
  dev.answer_delay = 2000ms;
  dev.dial(server.port);
  // Into the download (the START's reply came: the round trip is measured), a silence of 1.7 s.
  bool dialled = false;
  for (auto t = std::chrono::steady_clock::now(); !dialled && std::chrono::steady_clock::now() - t < 30s;) {
    std::this_thread::sleep_for(10ms);
    if (dev.bytes_received() < 1024 || dev.silent_for() < 1700ms) continue;  // DATA came
    clone.dial(server.port);
    dialled = true;
  }
  ASSERT_TRUE(dialled) << "the download never began";
  EXPECT_TRUE(clone.wait_idle(5s)) << "the clone was kept";
  EXPECT_EQ(clone.device().running_version(), 1u) << "the clone was updated";
}

TEST(PushTcp, ACloneDiallingIntoASilenceOfALaggyLinkIsTurnedAway) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  TcpPush push(img, {});
  ASSERT_NO_FATAL_FAILURE(a_clone_dials_into_a_silence_of_a_laggy_link(push));
  ASSERT_EQ(push.result.wait_for(60s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail << "\n" << ::testing::PrintToString(push.events);
  EXPECT_EQ(push.told("still talks") + push.told("talks again"), 1) << ::testing::PrintToString(push.events);
}

// The same in `ota serve`: the clone's HELLO is a duplicate of a device that still talks.
TEST(ServeTcp, ACloneDiallingIntoASilenceOfALaggyLinkIsTurnedAway) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::ServeOptions opt;
  opt.devices = 1;
  std::atomic<int> duplicates{0};
  ota::host::ServeObserver obs;
  obs.event = [&](std::uint32_t, const std::optional<ota::Hello>&, const ota::host::Event& e, std::uint64_t, bool) {
    duplicates += e.kind == "duplicate";
  };
  TcpServe serve(img, opt, obs);
  ASSERT_NO_FATAL_FAILURE(a_clone_dials_into_a_silence_of_a_laggy_link(serve));
  const auto r = serve.finish(60s);
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded) << r.ended[0].report.detail;
  EXPECT_EQ(r.ended[0].conn, 1u) << "the clone's connection took over";
  EXPECT_EQ(duplicates, 1);
}

// A device that stops answering for a while mid-download (busy, a link that stalls) keeps its
// session: another device whose modem dials in during that silence says HELLO with another uid
// and is turned away, and the download resumes on the first device's connection when it answers
// again.
TEST(PushTcp, AnotherDeviceDiallingIntoASilenceIsTurnedAwayAndTheSilentDeviceIsUpdated) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 300;
  opt.session.max_retries = 20;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1), other(2, 1);  // two seeds: two uids
  dev.dial_and_pause(push.port, 1024, 2000ms);
  for (auto t = std::chrono::steady_clock::now();
       dev.bytes_received() < 1024 && std::chrono::steady_clock::now() - t < 30s;)
    std::this_thread::sleep_for(10ms);
  ASSERT_GE(dev.bytes_received(), 1024u) << "the download never began";
  std::this_thread::sleep_for(700ms);  // silent for longer than the reply timeout
  other.dial(push.port);
  ASSERT_EQ(push.result.wait_for(60s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail << "\n" << ::testing::PrintToString(push.events);
  EXPECT_EQ(push.told("another device"), 1) << ::testing::PrintToString(push.events);
  EXPECT_EQ(dev.device().running_version(), 2u) << "the silent device's session was dropped";
  EXPECT_EQ(other.device().running_version(), 1u) << "the other device was updated";
}

// A device on a link whose latency is past the configured reply timeout (here 700 ms against
// 300 ms: seconds against 1.5 s on a congested cellular link, "seconds of latency are waited
// out") goes silent mid-download on a half-open connection, and redials once the session has
// heard nothing for longer than its measured reply timeout. The newcomer is asked who it is; its
// HELLO takes a round trip of that link to come. It is the device: it must take over and the
// download resume on it, not be turned away as a connection that "did not say HELLO" because the
// question was given only two of the configured, not of the measured, reply timeouts.
TEST(PushTcp, ADeviceRedialingOverAHalfOpenLaggyLinkIsAskedLongEnoughToAnswer) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::PushOptions opt;
  opt.session.reply_timeout_ms = 300;
  opt.session.max_retries = 4;  // the dead connection alone would hold the push for long
  opt.session.hello_interval_ms = 2'000;  // one HELLO_REQ at a time on the laggy link
  opt.connect_timeout_ms = 5000;
  TcpPush push(img, opt);
  auto dev = std::make_unique<ModemDevice>(1, 1);
  dev->answer_delay = 700ms;
  dev->dial(push.port, 1024, ModemDevice::Then::go_silent);  // START and a window of DATA, then silence
  ASSERT_TRUE(dev->wait_idle(30s));
  // Silent for longer than the session's measured reply timeout (srtt + 4 x rttvar, 2-2.6 s here).
  std::this_thread::sleep_for(3500ms);
  dev->dial(push.port);  // the same device, over the same laggy link
  const bool ended = push.result.wait_for(60s) == std::future_status::ready;
  EXPECT_EQ(push.told("did not say HELLO"), 0) << ::testing::PrintToString(push.events);
  dev.reset();  // closes the half-open connection too: a push still waiting on it ends
  const auto r = push.result.get();
  EXPECT_TRUE(ended) << "the redialled device was not served";
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail << "\n" << ::testing::PrintToString(push.events);
}

// `push --recover`: the device's modem loses its carrier mid-download (the connection left
// half-open) and the device is reset as it dials again, its bootloader in its listening window,
// where only RECOVER is heard. The newcomer is asked with RECOVER, as the session would ask it,
// not HELLO_REQ, which the window does not answer: it is the device, and the download resumes on it.
TEST(PushTcp, ARecoverPushAsksARedialWithRecover) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.session.recover = true;
  opt.session.reply_timeout_ms = 1000;
  opt.session.max_retries = 30;  // the dead connection alone would hold the push for 30 s
  opt.connect_timeout_ms = 5000;
  TcpPush push(img, opt);
  ModemDevice dev(1, 0);
  dev.deaf_until_recover = true;
  dev.dial(push.port, 8 * 1024, ModemDevice::Then::go_silent);
  ASSERT_TRUE(dev.wait_idle(10s));
  std::this_thread::sleep_for(1200ms);  // silent for more than a reply timeout
  dev.dial(push.port);
  const bool ended = push.result.wait_for(15s) == std::future_status::ready;
  EXPECT_EQ(push.told("did not say HELLO"), 0) << ::testing::PrintToString(push.events);
  dev.hang_up();
  const auto r = push.result.get();
  EXPECT_TRUE(ended) << "the redialled device was not served";
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail << "\n" << ::testing::PrintToString(push.events);
  EXPECT_EQ(dev.device().running_version(), 2u);
}

// With no reconnect allowed (max_reconnects 0), the first loss ends the push, and says so (not
// "lost 1 times in a row").
TEST(PushTcp, NoReconnectAllowedEndsAtTheFirstLossAndSaysSo) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.max_reconnects = 0;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  dev.dial(push.port, 10, ModemDevice::Then::close);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::link_lost) << r.detail;
  EXPECT_NE(r.detail.find("; the link was lost (no reconnect allowed)"), std::string::npos) << r.detail;
  EXPECT_EQ(r.detail.find("times"), std::string::npos) << r.detail;
}

// A connection that says nothing (a port scanner, a modem whose MCU is off, a slowloris) would
// hold one of serve's max_connections slots for the whole hello timeout (-t, 30 s by default):
// with every slot taken by one, a device dialling in is served at once all the same.
TEST(ServeTcp, MuteConnectionsInEverySlotDoNotHoldOffADevice) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 1;
  opt.max_connections = 2;
  opt.push.session.hello_timeout_ms = 20'000;
  TcpServe serve(img, opt);
  Stranger a(serve.port), b(serve.port);
  std::this_thread::sleep_for(200ms);
  ModemDevice dev(1, 1);
  dev.dial(serve.port);
  const auto r = serve.finish(8s);
  EXPECT_FALSE(r.interrupted) << "the device was not served within 8 s: it waited behind two mute connections";
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded) << r.ended[0].report.detail;
}

// Two devices with one uid: the newcomer is "turned away" (duplicate) while the first one talks,
// and is sent nothing more: its session queued START in the same step as its HELLO, which a
// dropped channel must not write.
TEST(ServeTcp, ATurnedAwayCloneIsSentNoStart) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.idle_ms = 2000;
  TcpServe serve(img, opt);
  auto hello_of = [] {
    sim::Device d(ota::kInternalLayout, 7);
    d.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
    d.boot();
    return d.take_output();
  };
  auto connect = [&] { return dial(serve.port); };
  const auto hello = hello_of();
  const int first = connect();
  ASSERT_EQ(::send(first, hello.data(), hello.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hello.size()));
  std::this_thread::sleep_for(200ms);
  const int clone = connect();
  ASSERT_EQ(::send(clone, hello.data(), hello.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hello.size()));
  std::vector<std::uint8_t> got;
  for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < 3s;) {
    const std::uint8_t zero = 0;
    (void)::send(first, &zero, 1, MSG_NOSIGNAL);  // the first device keeps talking
    pollfd p{clone, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    std::uint8_t buf[1024];
    const ssize_t n = ::read(clone, buf, sizeof buf);
    if (n <= 0) break;  // closed: turned away
    got.insert(got.end(), buf, buf + n);
  }
  ::close(clone);
  ::close(first);
  ota::FrameDecoderBuffer<300> dec;
  int starts = 0;
  for (std::uint8_t b : got)
    if (dec.feed(b) == ota::FrameDecoder::Event::frame && dec.frame().type == static_cast<std::uint8_t>(ota::MsgType::start))
      ++starts;
  EXPECT_EQ(starts, 0) << "the turned-away clone was sent START";
  serve.finish(10s);
}

// A connection that talks but never says HELLO (a board whose firmware prints a console but has
// no update client, a modem's own chatter, a bot) dialled first: its bytes are no device
// talking, so the real device that dials next is asked who it is and takes over.
TEST(PushTcp, AChattyStrangerThatDialledFirstDoesNotKeepTheDeviceOut) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 5000;
  opt.session.hello_timeout_ms = 5000;
  TcpPush push(img, opt);
  std::atomic<bool> quit{false};
  std::thread chatty([&] {
    Stranger s(push.port);
    const char line[] = "temp=21.5C\r\n";
    while (!quit && ::send(s.fd, line, sizeof line - 1, MSG_NOSIGNAL) > 0) std::this_thread::sleep_for(200ms);
  });
  ModemDevice dev(1, 1);
  std::this_thread::sleep_for(1s);
  for (int i = 0; i < 8 && push.result.wait_for(1s) != std::future_status::ready; ++i) dev.dial(push.port);  // a modem redials
  ASSERT_EQ(push.result.wait_for(20s), std::future_status::ready);
  quit = true;
  chatty.join();
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(dev.device().running_version(), 2u);
}


// A connection is replaced as mute only after two reply timeouts without a word: a device whose
// first answer takes a few hundred ms (a cellular modem's latency) is not dropped to make room
// for a port scanner that dialled just after it.
TEST(ServeTcp, ADeviceAboutToSayHelloIsNotDroppedForALaterStranger) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 1;
  opt.max_connections = 1;
  opt.push.session.hello_timeout_ms = 20'000;
  TcpServe serve(img, opt);
  ModemDevice dev(1, 1);
  dev.first_answer_delay = 400ms;  // its link's latency: it answers HELLO_REQ 400 ms later
  dev.dial(serve.port);
  std::this_thread::sleep_for(100ms);
  Stranger scanner(serve.port);  // says nothing
  const auto r = serve.finish(6s);
  EXPECT_FALSE(r.interrupted) << "the device was dropped for the mute newcomer and not served within 6 s";
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded) << r.ended[0].report.detail;
}

// serve --recover refuses a bootloader only when this serve gave its device the whole image: a
// device that ended up to date (nothing was sent to it) and whose bootloader then hears RECOVER
// (it was reset while its modem was connected) is no failed upgrade.
TEST(ServeTcp, ABootloaderOfADeviceThatWasUpToDateIsNoFailedUpgrade) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.idle_ms = 1500;
  opt.push.session.recover = true;
  opt.push.session.recover_fleet = true;
  std::mutex m;
  std::vector<ota::host::DeviceReport> ended;
  ota::host::ServeObserver obs;
  obs.ended = [&](const ota::host::DeviceReport& d) {
    std::lock_guard<std::mutex> lock(m);
    ended.push_back(d);
  };
  TcpServe serve(img, opt, obs);
  auto say_hello = [&](ota::Role role, std::uint32_t version) {
    ota::Hello h;
    h.role = role;
    h.app_version = version;
    h.window = 8;
    h.staging_capacity = ota::kInternalLayout.image_limit;
    for (std::size_t i = 0; i < sizeof h.uid; ++i) h.uid[i] = static_cast<std::uint8_t>(i + 1);
    const auto frame = hello_frame(h);
    Stranger s(serve.port);
    EXPECT_EQ(::send(s.fd, frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
    std::this_thread::sleep_for(300ms);
  };
  say_hello(ota::Role::application, 2);  // runs the image: up to date
  say_hello(ota::Role::recovery, 0);     // later reset, its bootloader hears RECOVER
  serve.finish(10s);
  std::lock_guard<std::mutex> lock(m);
  ASSERT_GE(ended.size(), 1u);
  EXPECT_EQ(ended[0].report.outcome, ota::host::Outcome::up_to_date) << ended[0].report.detail;
  for (const auto& d : ended)
    EXPECT_NE(d.report.outcome, ota::host::Outcome::upgrade_failed)
        << "a device that was never sent the image is said to have failed its upgrade: " << d.report.detail;
}


// Every slot is held by a device whose link went half-open mid-download (carrier lost in one
// cell: no FIN, no RST), and each of those devices dials again at once: at max_connections too,
// the redials resume on new connections and the old ones are dropped (they waited in the backlog
// until their dead sessions had used up their re-sends: ~8 s here, minutes on a laggy link).
TEST(ServeTcp, DevicesRedialingOverHalfOpenLinksAreServedWhenEverySlotIsTaken) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 3;
  opt.max_connections = 3;
  opt.push.session.reply_timeout_ms = 200;
  opt.push.session.max_retries = 40;  // a dead session gives up ~8 s into the silence
  TcpServe serve(img, opt);
  ModemDevice a(1, 1), b(2, 1), c(3, 1);
  for (ModemDevice* d : {&a, &b, &c}) d->dial(serve.port, 8 * 1024, ModemDevice::Then::go_silent);
  for (ModemDevice* d : {&a, &b, &c}) ASSERT_TRUE(d->wait_idle(10s));
  std::this_thread::sleep_for(500ms);  // quiet for more than two reply timeouts: dead links
  const auto redial = std::chrono::steady_clock::now();
  for (ModemDevice* d : {&a, &b, &c}) d->dial(serve.port);
  const auto r = serve.finish(4s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - redial);
  EXPECT_FALSE(r.interrupted) << "the redials were not served within 4 s (they waited in the backlog for the dead "
                                 "sessions to give up); " << took.count() << " ms";
  int running = 0;
  for (ModemDevice* d : {&a, &b, &c}) running += d->device().running_version() == 2u;
  EXPECT_EQ(running, 3);
}

// A modem whose board is dead (or off) redials at once whenever the server closes its
// connection and never says HELLO: one of its connections is always open. `ota serve --idle S`
// (run from cron, say) still ends (it waited for every connection without HELLO, for ever).
TEST(ServeTcp, AModemWithADeadBoardThatRedialsDoesNotKeepIdleFromEndingServe) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.idle_ms = 1000;
  opt.push.session.reply_timeout_ms = 200;
  opt.push.session.hello_timeout_ms = 900;
  TcpServe serve(img, opt);
  ModemDevice dev(1, 1);
  dev.dial(serve.port);  // one real device, updated at once
  std::atomic<bool> quit{false};
  std::thread dead_board(redial_mute, serve.port, std::cref(quit));
  const bool ended = serve.result.wait_for(8s) == std::future_status::ready;
  const auto r = serve.finish(0ms);
  quit = true;
  dead_board.join();
  EXPECT_TRUE(ended) << "serve --idle 1 still ran 8 s later, the device long done";
  EXPECT_TRUE(r.idle);
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded);
}

// Two boards answer on one connection (two devices on one RS-485 line behind one modem, a gateway
// that relays several boards), and the line drops before the download begins. A connection
// serves one device, the first that answered: it is in the report (lost: it may dial again), and
// the other is named in an "other" event, not taken for it. (Session::on_hello took every HELLO
// for its device whatever its uid: the first device's HELLO was booked under the second uid, and
// the first uid was missing from the report.)
TEST(ServeTcp, AConnectionServesTheFirstDeviceThatAnswersOnIt) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.idle_ms = 1000;
  opt.push.connect_timeout_ms = 1000;  // the time the lost device has to dial again
  std::mutex m;
  std::vector<std::string> others;
  ota::host::ServeObserver obs;
  obs.event = [&](std::uint32_t, const std::optional<ota::Hello>&, const ota::host::Event& e, std::uint64_t, bool) {
    std::lock_guard<std::mutex> lock(m);
    if (e.kind == "other") others.push_back(e.text);
  };
  TcpServe serve(img, opt, obs);
  auto hello = [](std::uint8_t first_uid_byte) {
    ota::Hello h;
    h.role = ota::Role::application;
    h.app_version = 1;  // to be updated: the server sends START
    h.window = 8;
    h.staging_capacity = ota::kInternalLayout.image_limit;
    for (std::size_t i = 0; i < sizeof h.uid; ++i) h.uid[i] = static_cast<std::uint8_t>(first_uid_byte + i);
    return hello_frame(h);
  };
  {
    Stranger line(serve.port);
    const auto ha = hello(0x10), hb = hello(0x40);
    std::vector<std::uint8_t> both = ha;  // both boards answer the first HELLO_REQ
    both.insert(both.end(), hb.begin(), hb.end());
    ASSERT_EQ(::send(line.fd, both.data(), both.size(), MSG_NOSIGNAL), static_cast<ssize_t>(both.size()));
    std::this_thread::sleep_for(300ms);
  }  // the line drops before the download began
  const auto r = serve.finish(10s);
  ASSERT_FALSE(r.interrupted);
  std::vector<std::string> uids;
  for (const auto* list : {&r.ended, &r.lost})
    for (const auto& d : *list) {
      uids.push_back(d.report.device ? ota::host::uid_hex(*d.report.device) : "(no uid)");
      std::printf("#%u %s %s: %s\n", d.conn, uids.back().c_str(), ota::host::to_string(d.report.outcome),
                  d.report.detail.c_str());
    }
  EXPECT_EQ(std::count(uids.begin(), uids.end(), "101112131415161718191a1b"), 1) << "the first device is not reported";
  EXPECT_EQ(std::count(uids.begin(), uids.end(), "404142434445464748494a4b"), 0) << "the second took the connection";
  std::lock_guard<std::mutex> lock(m);
  ASSERT_EQ(others.size(), 1u);
  EXPECT_NE(others[0].find("404142434445464748494a4b"), std::string::npos) << others[0];
}

// `ota serve --force` forces each device once. A device takes the whole image on its first
// connection, says RESULT ok and resets to install it; the reset drops its modem's carrier (the
// connection is left half-open, the server waits in the reboot phase). It boots the new image and
// dials again: HELLO, running the image, upgrade OK, before serve has booked the first
// connection's end. It is not forced again (it was: the whole image a second time).
TEST(ServeTcp, ForceDoesNotSendTheImageAgainToADeviceThatRedialsAfterItsInstall) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::ServeOptions opt;
  opt.idle_ms = 1500;
  opt.push.session.force = true;
  opt.push.session.reply_timeout_ms = 300;
  TcpServe serve(img, opt);
  sim::Device dev(ota::kInternalLayout, 5);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  (void)dev.take_output();  // its boot HELLO, before any modem connected
  auto connect = [&] { return dial(serve.port); };
  const int first = connect();
  EXPECT_EQ(relay_device(first, dev, AtResult::pass_on_and_stop, 10s).starts, 1);
  ASSERT_EQ(dev.running_version(), 2u) << "the device did not install the image";
  std::this_thread::sleep_for(700ms);  // its modem redials; the old connection is quiet by then
  const int second = connect();
  const int starts_again = relay_device(second, dev, AtResult::go_on, 5s).starts;
  ::close(second);
  ::close(first);
  const auto r = serve.finish(10s);
  EXPECT_EQ(starts_again, 0) << "the device running the forced image was sent START (and the image) again";
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded) << r.ended[0].report.detail;
}

// With every slot taken and the oldest connection mute for two reply timeouts, serve accepts the
// next connection so as to replace it. If the mute one says HELLO meanwhile (a device on a laggy
// link, just slow to answer), the newcomer waits unserved until a slot frees: max_connections is
// not exceeded (it was, one more each such time).
TEST(ServeTcp, MaxConnectionsIsNotExceededWhenTheMuteConnectionAnswersAfterAll) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 2;
  opt.max_connections = 1;
  opt.push.session.reply_timeout_ms = 200;  // mute for 400 ms: replaceable
  std::mutex m;
  std::vector<std::string> order;
  ota::host::ServeObserver obs;
  obs.event = [&](std::uint32_t conn, const std::optional<ota::Hello>&, const ota::host::Event& e, std::uint64_t, bool) {
    std::lock_guard<std::mutex> lock(m);
    if (e.kind == "hello") order.push_back("hello #" + std::to_string(conn));
  };
  obs.ended = [&](const ota::host::DeviceReport& d) {
    std::lock_guard<std::mutex> lock(m);
    order.push_back("ended #" + std::to_string(d.conn));
  };
  TcpServe serve(img, opt, obs);
  ModemDevice slow(1, 1), next(2, 1);
  slow.first_answer_delay = 700ms;  // answers HELLO_REQ late, then downloads at a modem's pace
  slow.pace = 40ms;
  slow.dial(serve.port);
  std::this_thread::sleep_for(900ms);  // it has said HELLO by now, and its download is under way
  next.dial(serve.port);
  const auto r = serve.finish(25s);
  ASSERT_FALSE(r.interrupted);
  std::lock_guard<std::mutex> lock(m);
  const auto first_hello_2 = std::find(order.begin(), order.end(), "hello #2");
  const auto ended_1 = std::find(order.begin(), order.end(), "ended #1");
  ASSERT_NE(ended_1, order.end()) << ::testing::PrintToString(order);
  ASSERT_NE(first_hello_2, order.end()) << ::testing::PrintToString(order);
  EXPECT_LT(ended_1, first_hello_2) << "connection #2 was served while #1 still was, with max_connections 1: "
                                    << ::testing::PrintToString(order);
}

// A second Ctrl-C (the operator does not wait for the ABORTs) stops serve at once: the devices
// still under way end `interrupted`, and ServeObserver::ended, which `ota serve` prints each
// device's result line from, is told of each (it was not: no line named them).
TEST(ServeTcp, ASecondCtrlCStillTellsTheObserverOfEveryDeviceThatEnded) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.push.session.reply_timeout_ms = 1000;  // an unanswered ABORT is waited for 2 s
  std::mutex m;
  std::vector<std::uint32_t> told;
  ota::host::ServeObserver obs;
  obs.ended = [&](const ota::host::DeviceReport& d) {
    std::lock_guard<std::mutex> lock(m);
    told.push_back(d.conn);
  };
  TcpServe serve(img, opt, obs);
  ModemDevice a(1, 1), b(2, 1), c(3, 1);
  for (ModemDevice* d : {&a, &b, &c}) d->dial(serve.port, 8 * 1024, ModemDevice::Then::go_silent);  // links gone half-open
  for (ModemDevice* d : {&a, &b, &c}) ASSERT_TRUE(d->wait_idle(10s));
  ::raise(SIGINT);  // ABORTs go out; nobody answers them
  std::this_thread::sleep_for(300ms);
  ::raise(SIGINT);  // the operator presses Ctrl-C again
  ASSERT_EQ(serve.result.wait_for(5s), std::future_status::ready);
  const auto r = serve.result.get();
  ASSERT_EQ(r.ended.size(), 3u);
  std::lock_guard<std::mutex> lock(m);
  for (const auto& d : r.ended)
    EXPECT_NE(std::find(told.begin(), told.end(), d.conn), told.end())
        << "#" << d.conn << " ended " << ota::host::to_string(d.report.outcome) << " (" << d.report.detail
        << ") without the observer being told: no result line names it";
}

// `ota serve --force` over the same version: a device given the whole image, whose reset after
// RESULT ok dropped its connection (link lost: not ended) and whose bootloader could not install
// the image, dials again reporting install_failed, the old build of v2 still running. The image is
// offered again, and the device is not booked `up_to_date`.
TEST(ServeTcp, ForcedDeviceThatRedialsReportingItsInstallFailedIsNotUpToDate) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::ServeOptions opt;
  opt.idle_ms = 1500;
  opt.push.session.force = true;
  opt.push.session.reply_timeout_ms = 300;
  TcpServe serve(img, opt);
  sim::Device dev(ota::kInternalLayout, 5);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 2, 12 * 1024));  // another build of v2
  dev.boot();
  (void)dev.take_output();
  auto connect = [&] { return dial(serve.port); };
  // The first connection: the whole image, up to the device's RESULT ok; then the reset drops it.
  const int first = connect();
  ASSERT_TRUE(relay_device(first, dev, AtResult::pass_on_and_stop, 10s).result) << "the device never got the whole image";
  std::this_thread::sleep_for(200ms);
  ::close(first);  // the reset drops the modem: link lost, the device may dial again
  std::this_thread::sleep_for(300ms);
  // It dials again: its bootloader could not install the image, the old build of v2 runs.
  const int second = connect();
  ota::Hello h;
  std::copy(std::begin(dev.info().uid), std::end(dev.info().uid), std::begin(h.uid));
  h.app_version = 2;
  h.window = 8;
  h.staging_capacity = ota::kInternalLayout.image_limit;
  h.report = ota::Report::install_failed;
  h.session_crc = img.crc();
  const std::vector<std::uint8_t> frame = hello_frame(h);
  int starts = 0;
  ota::FrameDecoderBuffer<300> from_server;
  bool said = false;
  for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < 2s;) {
    pollfd p{second, POLLIN, 0};
    if (::poll(&p, 1, 5) <= 0) continue;
    std::uint8_t buf[4096];
    const ssize_t got = ::read(second, buf, sizeof buf);
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; ++i)
      if (from_server.feed(buf[i]) == ota::FrameDecoder::Event::frame) {
        if (from_server.frame().type == static_cast<std::uint8_t>(ota::MsgType::start)) ++starts;
        if (from_server.frame().type == static_cast<std::uint8_t>(ota::MsgType::hello_request) && !said) {
          said = true;
          (void)::send(second, frame.data(), frame.size(), MSG_NOSIGNAL);
        }
      }
  }
  ::close(second);
  const auto r = serve.finish(10s);
  EXPECT_TRUE(said) << "the server never asked the redial who it is";
  EXPECT_GE(starts, 1) << "the forced image was not offered again after the device reported its install failed";
  for (const auto& d : r.ended)  // (this fake device does not answer START: it may end up lost instead)
    EXPECT_NE(d.report.outcome, ota::host::Outcome::up_to_date)
        << "a device that reported install_failed was booked as up to date: " << d.report.detail;
}

// `ota push --force` of v2 over TCP to a device running v1: it takes the whole image and resets
// to install it, and the reset drops its modem (with `result`, what the device said up to its
// RESULT ok gets through first, or is lost with the link). It boots the image and dials again:
// HELLO, v2, upgrade OK. Returns the STARTs the redial drew and the push's report.
std::pair<int, ota::host::PushReport> forced_push_redialled_from_its_image(AtResult result) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::PushOptions opt;
  opt.session.force = true;
  opt.session.reply_timeout_ms = 300;
  opt.connect_timeout_ms = 3000;
  TcpPush push(img, opt);
  sim::Device dev(ota::kInternalLayout, 5);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  (void)dev.take_output();
  const int first = dial(push.port);
  EXPECT_EQ(relay_device(first, dev, result, 10s).starts, 1);
  EXPECT_EQ(dev.running_version(), 2u) << "the device did not install the image";
  std::this_thread::sleep_for(100ms);
  ::close(first);  // the reset dropped the modem
  std::this_thread::sleep_for(300ms);
  const int second = dial(push.port);  // it dials again, from the image
  const int starts_again = relay_device(second, dev, AtResult::go_on, 3s).starts;
  ::close(second);
  EXPECT_EQ(push.result.wait_for(10s), std::future_status::ready);
  return {starts_again, push.result.get()};
}

// The push gave the device the whole image (RESULT ok came): the redial is not forced again (a
// new session per connection would clear the report and send the whole image a second time, and
// again on each redial).
TEST(PushTcp, AForcedPushDoesNotSendTheImageAgainToTheDeviceRedialingFromIt) {
  const auto [starts_again, r] = forced_push_redialled_from_its_image(AtResult::pass_on_and_stop);
  EXPECT_EQ(starts_again, 0) << "the device running the image it was just given was sent START (the image) again";
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
}

// The RESULT ok was lost with the link, as it is when the device's reset drops its modem: the
// device's application of v1 had accepted this push's START, so its upgrade report of v2 on the
// redial is this image's, and the image is not sent again.
TEST(PushTcp, AForcedV1ToV2PushWhoseResultOkWasLostWithTheLinkDoesNotSendTheImageAgain) {
  const auto [starts_again, r] = forced_push_redialled_from_its_image(AtResult::lose_and_stop);
  EXPECT_EQ(starts_again, 0) << "the device that ran v1 on the first connection and now reports upgrade OK with v2 "
                                "was sent START (the whole image) again";
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
}

// A device on a laggy link waits seconds for its START reply (every START times out and goes
// again before the first reply; no round trip is measured yet, so its reply timeout is still the
// floor). At max_connections a newcomer does not take its slot: only a device silent in its
// download for two of its reply timeouts may make room; its own session would serve it.
TEST(ServeTcp, ADeviceWhoseStartReplyIsDelayedByALaggyLinkIsNotDroppedForANewcomer) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 2;
  opt.max_connections = 1;
  opt.push.session.reply_timeout_ms = 200;  // START's reply takes 700 ms: 3.5 of them, < max_retries
  std::mutex m;
  std::vector<std::string> dropped;
  ota::host::ServeObserver obs;
  obs.event = [&](std::uint32_t conn, const std::optional<ota::Hello>&, const ota::host::Event& e, std::uint64_t, bool) {
    std::lock_guard<std::mutex> lock(m);
    if (e.kind == "disconnect" && e.text.find("dropped") != std::string::npos)
      dropped.push_back("#" + std::to_string(conn) + ": " + e.text);
  };
  TcpServe serve(img, opt, obs);
  ModemDevice laggy(1, 1), next(2, 1);
  laggy.dial_and_pause(serve.port, 1, 700ms);  // says HELLO, then START's answer comes 700 ms later
  std::this_thread::sleep_for(500ms);           // in Phase::start, silent for 2.5 reply timeouts
  next.dial(serve.port);
  const auto r = serve.finish(10s);
  std::lock_guard<std::mutex> lock(m);
  EXPECT_TRUE(dropped.empty()) << "a live device was dropped to make room: " << ::testing::PrintToString(dropped);
  EXPECT_EQ(laggy.device().running_version(), std::optional<std::uint32_t>{2});
  EXPECT_FALSE(r.interrupted) << "--devices 2 not reached: the dropped device was never served";
  ASSERT_FALSE(r.ended.empty());
  EXPECT_EQ(r.ended[0].conn, 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded)
      << "connection #1 ended " << ota::host::to_string(r.ended[0].report.outcome) << ": " << r.ended[0].report.detail;
}
// `ota push --force` of build B of v2. The device's first HELLO reports an install pending
// (download OK) of another build of v2, staged by an earlier push; its reset drops the modem, it
// installs build A and dials again reporting upgrade OK with v2. The push waited in its reboot
// phase without having sent anything: the report is not its own. It is cleared and build B sent,
// not claimed as `upgraded` (push_tcp once took the reboot phase for "this push delivered").
TEST(PushTcp, AForcedPushIsNotUpgradedByAnotherBuildsPendingInstall) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);  // build B of v2
  ota::host::PushOptions opt;
  opt.session.force = true;
  opt.session.reply_timeout_ms = 300;
  opt.connect_timeout_ms = 3000;
  TcpPush push(img, opt);
  auto connect = [&] { return dial(push.port); };
  const int first = connect();
  // Another build of v2 (build A) is staged, its install pending: the push waits.
  EXPECT_EQ(fake_device(first, ota::Role::application, 2, ota::Report::download_ok, false, 400ms), 0);
  ::close(first);  // the device resets to install build A: its modem drops
  std::this_thread::sleep_for(300ms);
  const int second = connect();  // build A runs, and reports its upgrade
  const int starts = fake_device(second, ota::Role::application, 2, ota::Report::upgrade_ok, false, 2s);
  ::close(second);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_GE(starts, 1) << "the forced image was never offered: push ended " << ota::host::to_string(r.outcome)
                       << " (" << r.detail << ")";
  EXPECT_NE(r.outcome, ota::host::Outcome::upgraded)
      << "`upgraded` claimed from another build's upgrade report, this image never sent: " << r.detail;
}
// At max_connections, with the only slot's device out of its download for a while (a restart
// mid-download: NAK no_session, HELLO_REQ, its answer slow), serve still looks again later: when
// that device is back in the download and its link goes half-open, a newcomer takes the slot
// (serve once armed no timer then, and the newcomer waited for the dead session to give up).
TEST(ServeTcp, ANewcomerIsServedWhenTheHalfOpenDeviceHadRestartedMidDownload) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 2;
  opt.max_connections = 1;
  opt.push.session.reply_timeout_ms = 200;
  opt.push.session.max_retries = 40;  // the dead session gives up ~8 s into the silence
  TcpServe serve(img, opt);
  sim::Device dev(ota::kInternalLayout, 7);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  (void)dev.take_output();
  const int fd = dial(serve.port);
  ASSERT_GE(fd, 0);
  std::size_t received = 0;
  bool restarted = false, nak_sent = false, delayed = false;
  for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < 10s;) {
    if (restarted && delayed && received >= 9000) break;  // its link goes half-open mid-download
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5) <= 0) continue;
    std::uint8_t buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ASSERT_GT(n, 0);
    received += static_cast<std::size_t>(n);
    dev.receive(buf, static_cast<std::size_t>(n));
    auto out = dev.take_output();
    if (!restarted && received >= 3000) {  // a watchdog reset mid-download; its boot HELLO is lost
      dev.power_cycle();
      (void)dev.take_output();
      restarted = true;
      continue;
    }
    if (out.empty()) continue;
    if (restarted && nak_sent && !delayed) {  // the answer to HELLO_REQ is slow (a busy modem)
      std::this_thread::sleep_for(1200ms);
      delayed = true;
    }
    if (restarted) nak_sent = true;
    (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  }
  ASSERT_TRUE(delayed) << "the scenario did not run";
  std::this_thread::sleep_for(500ms);  // silent for more than two reply timeouts
  ModemDevice next(2, 1);
  next.dial(serve.port);
  for (auto t = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - t < 4s && next.device().running_version() != 2u;)
    std::this_thread::sleep_for(10ms);
  const bool served = next.device().running_version() == 2u;
  ::raise(SIGINT);
  (void)serve.result.get();
  ::close(fd);
  EXPECT_TRUE(served) << "the newcomer was not served within 4 s: it waited in the backlog behind a half-open "
                         "connection silent for seconds (no retry timer was armed)";
}

// `ota push --force` of build B of v2 to a device running v1, whose first connection drops with
// the START (not a byte of build B reached it); meanwhile another server installs build A of v2.
// The device dials again reporting upgrade OK with v2: the report is not this push's, which has
// had no START accepted. It is cleared and build B sent, not claimed as `upgraded`.
TEST(PushTcp, AForcedPushWhoseFirstConnectionDroppedAtStartIsNotUpgradedByAnotherBuild) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);  // build B of v2
  ota::host::PushOptions opt;
  opt.session.force = true;
  opt.session.reply_timeout_ms = 300;
  opt.connect_timeout_ms = 3000;
  TcpPush push(img, opt);
  const int first = dial(push.port);
  // The device runs v1; the START is lost with the link: not a byte of the image reached it.
  EXPECT_EQ(fake_device(first, ota::Role::application, 1, ota::Report::none, true, 2s), 1);
  ::close(first);
  std::this_thread::sleep_for(300ms);  // meanwhile another server installs build A of v2
  const int second = dial(push.port);
  const int starts = fake_device(second, ota::Role::application, 2, ota::Report::upgrade_ok, false, 2s);
  ::close(second);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_GE(starts, 1) << "the forced image was never sent to the device: push ended "
                       << ota::host::to_string(r.outcome) << " (" << r.detail << ")";
  EXPECT_NE(r.outcome, ota::host::Outcome::upgraded)
      << "`upgraded` claimed from another build's upgrade report, this image never delivered: " << r.detail;
}

// The same without another server: the device's bootloader answered the first connection (its
// application version unknown; the link dropped with the START), then it started the application
// it holds, an earlier build of v2 whose upgrade report was never acknowledged (a power cut), and
// dialled again. The forced push does not take that report as its own.
TEST(PushTcp, AForcedPushThatFirstMetTheBootloaderIsNotUpgradedByAnEarlierBuildsReport) {
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 4 * 1024);
  ota::host::PushOptions opt;
  opt.session.force = true;
  opt.session.reply_timeout_ms = 300;
  opt.connect_timeout_ms = 3000;
  TcpPush push(img, opt);
  const int first = dial(push.port);
  EXPECT_EQ(fake_device(first, ota::Role::recovery, 0, ota::Report::none, true, 2s), 1);
  ::close(first);
  std::this_thread::sleep_for(300ms);
  const int second = dial(push.port);
  const int starts = fake_device(second, ota::Role::application, 2, ota::Report::upgrade_ok, false, 2s);
  ::close(second);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_GE(starts, 1) << "the forced image was never sent to the device: push ended "
                       << ota::host::to_string(r.outcome) << " (" << r.detail << ")";
  EXPECT_NE(r.outcome, ota::host::Outcome::upgraded)
      << "`upgraded` claimed from an earlier build's upgrade report, this image never delivered: " << r.detail;
}

}  // namespace

// What a device at another baud rate than the server's sends: bytes that are mostly no text.
constexpr std::uint8_t kGarbled[] = {0xF8, 0x80, 0x78, 0x00, 0xE0, 0x1C, 0x00, 0x86, 0xFE};

// `ota serve`: a board behind a modem whose serial side runs at another rate talks garble all the
// time. With every slot taken it is dropped for a newcomer after two reply timeouts without a
// HELLO, and the words on it say what it sent (another baud rate), not that it said nothing.
TEST(ServeTcp, AConnectionDroppedForANewcomerAfterGarbleIsNotSaidToHaveSaidNothing) {
  const auto img = v2_image();
  ota::host::ServeOptions opt;
  opt.devices = 1;
  opt.max_connections = 1;
  opt.push.session.hello_timeout_ms = 20'000;
  std::mutex m;
  std::vector<std::string> dropped;
  ota::host::ServeObserver obs;
  obs.event = [&](std::uint32_t, const std::optional<ota::Hello>& dev, const ota::host::Event& e, std::uint64_t, bool) {
    if (e.kind == "disconnect" && !dev) {
      std::lock_guard<std::mutex> l(m);
      dropped.push_back(e.text);
    }
  };
  TcpServe serve(img, opt, obs);
  std::atomic<bool> quit{false};
  std::thread garble([&] {
    Stranger s(serve.port);
    while (!quit && ::send(s.fd, kGarbled, sizeof kGarbled, MSG_NOSIGNAL) > 0) std::this_thread::sleep_for(100ms);
  });
  std::this_thread::sleep_for(300ms);
  ModemDevice dev(1, 1);
  dev.dial(serve.port);
  const auto r = serve.finish(15s);
  quit = true;
  garble.join();
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].report.outcome, ota::host::Outcome::upgraded) << r.ended[0].report.detail;
  std::lock_guard<std::mutex> l(m);
  ASSERT_FALSE(dropped.empty()) << "the garbling connection was not dropped for the device";
  for (const std::string& d : dropped) {
    EXPECT_EQ(d.find("it said nothing"), std::string::npos) << d;
    EXPECT_NE(d.find("another baud rate"), std::string::npos) << d;
  }
}

// `ota push --listen`: when no device said HELLO, the push's final words are those of a
// connection that did not. A modem whose serial side runs at another rate connects and sends
// garble until its hello timeout (the session names the baud rate); a stray connection that
// closes at once afterwards does not replace that report.
TEST(PushTcp, TheBaudRateHintOfAGarblingConnectionSurvivesALaterStrayConnection) {
  const auto img = v2_image();
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 4000;
  opt.session.hello_timeout_ms = 1000;
  TcpPush push(img, opt);
  {
    Stranger s(push.port);
    for (int i = 0; i < 15 && ::send(s.fd, kGarbled, sizeof kGarbled, MSG_NOSIGNAL) > 0; ++i) std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(push.wait_told("another baud rate", 1), 1) << "the garbling connection's hello timeout names the rate";
  Stranger stray(push.port, true);
  ASSERT_EQ(push.result.wait_for(10s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::timeout) << r.detail;
  EXPECT_NE(r.detail.find("another baud rate"), std::string::npos) << r.detail;
}

// Losses after progress do not add up: a loss without progress that follows them is the first in
// a row, and the push goes on (max_reconnects counts losses in a row without progress only).
TEST(PushTcp, ALossWithoutProgressAfterLossesWithProgressIsTheFirstInARow) {
  const auto img = v2_image();  // 26 KB: 104 packets
  ota::host::PushOptions opt;
  opt.connect_timeout_ms = 10'000;
  opt.max_reconnects = 2;
  TcpPush push(img, opt);
  ModemDevice dev(1, 1);
  for (int i = 0; i < 3; ++i) {  // ~3.5 KB per connection, then the carrier is lost
    dev.dial(push.port, 3 * 1024 + 512, ModemDevice::Then::close);
    ASSERT_TRUE(dev.wait_idle(10s));
    ASSERT_NE(push.result.wait_for(300ms), std::future_status::ready) << "gave up after a loss with progress";
  }
  dev.dial(push.port, 10, ModemDevice::Then::close);  // HELLO_REQ, then START: no packet
  ASSERT_TRUE(dev.wait_idle(10s));
  ASSERT_NE(push.result.wait_for(300ms), std::future_status::ready) << "gave up at the first loss without progress";
  dev.dial(push.port);
  ASSERT_EQ(push.result.wait_for(30s), std::future_status::ready);
  const auto r = push.result.get();
  EXPECT_EQ(r.outcome, ota::host::Outcome::upgraded) << r.detail;
  EXPECT_EQ(dev.device().running_version(), 2u);
}

// push_serial over a real pty whose far end is the simulated device (sim::Device), driven by a
// thread of the test so that it can misbehave the way hardware does.
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <future>
#include <thread>

#include "ota/host/push.hpp"
#include "sim/device.hpp"

namespace {

using namespace std::chrono_literals;

// The device's end of a pty: relays bytes between the master side and a sim::Device until
// `stall_after` bytes have come from the server, then stops reading (a frozen device, a USB
// adapter that no longer drains), until `drain` is set: from then on it reads and drops.
class StallingDevice {
 public:
  explicit StallingDevice(std::size_t stall_after) : stall_after_(stall_after) {
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
      const ssize_t n = ::read(master_, buf, sizeof buf);
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
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 26 * 1024);
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
  ota::host::Image img;
  img.version = 2;
  img.bytes = sim::make_app_image(ota::kInternalLayout, 2, 26 * 1024);
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

}  // namespace

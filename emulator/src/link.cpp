#include "bluepill/link.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace bluepill {

namespace {

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Writes all of data, waiting briefly when the peer's buffer is full; drops what does not fit
// within a second (a serial port nobody reads loses bytes too).
void write_all(int fd, const std::uint8_t* data, std::size_t len) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (len > 0) {
    const ssize_t n = ::write(fd, data, len);
    if (n > 0) {
      data += n;
      len -= static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR) && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      return;
    }
  }
}

class PtyLink final : public Link {
 public:
  PtyLink() {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) throw std::runtime_error("cannot open a pty");
    path_ = ptsname(master_);
    // Keep the slave open so that the pty survives clients coming and going, in raw mode so
    // that the line discipline neither echoes nor translates.
    slave_ = ::open(path_.c_str(), O_RDWR | O_NOCTTY);
    if (slave_ < 0) throw std::runtime_error("cannot open " + path_);
    termios t{};
    tcgetattr(slave_, &t);
    cfmakeraw(&t);
    tcsetattr(slave_, TCSANOW, &t);
    set_nonblocking(master_);
  }
  ~PtyLink() override {
    ::close(slave_);
    ::close(master_);
  }
  void send(const std::uint8_t* data, std::size_t len) override { write_all(master_, data, len); }
  std::size_t receive(std::uint8_t* buf, std::size_t cap) override {
    const ssize_t n = ::read(master_, buf, cap);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::string describe() const override { return path_; }

 private:
  int master_ = -1, slave_ = -1;
  std::string path_;
};

class TcpLink final : public Link {
 public:
  TcpLink(std::string host, std::uint16_t port, double retry_s) : host_(std::move(host)), port_(port) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(retry_s);
    while (!dial()) {
      if (std::chrono::steady_clock::now() >= until)
        throw std::runtime_error("cannot connect to " + describe() + ": " + why_);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ~TcpLink() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void send(const std::uint8_t* data, std::size_t len) override {
    if (fd_ < 0 && !redial()) return;  // no connection: the modem drops the bytes
    write_all(fd_, data, len);
  }
  std::size_t receive(std::uint8_t* buf, std::size_t cap) override {
    if (fd_ < 0 && !redial()) return 0;
    const ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      ::close(fd_);
      fd_ = -1;  // the peer closed: dial again later, as a modem would
    }
    return 0;
  }
  std::string describe() const override { return host_ + ":" + std::to_string(port_); }

 private:
  bool redial() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_dial_) return false;
    next_dial_ = now + std::chrono::seconds(1);
    return dial();
  }
  bool dial() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res); rc != 0) {
      why_ = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);  // a name that does not resolve
      return false;
    }
    why_ = "no address of the name";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) continue;
      const bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
      if (!connected) why_ = std::strerror(errno);
      if (connected) {
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        set_nonblocking(fd);
        fd_ = fd;
        break;
      }
      ::close(fd);
    }
    freeaddrinfo(res);
    return fd_ >= 0;
  }
  std::string host_;
  std::uint16_t port_;
  std::string why_;  // why the last dial failed
  int fd_ = -1;
  std::chrono::steady_clock::time_point next_dial_{};
};

class StdioLink final : public Link {
 public:
  StdioLink() { set_nonblocking(0); }
  void send(const std::uint8_t* data, std::size_t len) override { write_all(1, data, len); }
  std::size_t receive(std::uint8_t* buf, std::size_t cap) override {
    const ssize_t n = ::read(0, buf, cap);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::string describe() const override { return "stdio"; }
};

}  // namespace

std::unique_ptr<Link> open_pty() { return std::make_unique<PtyLink>(); }
std::unique_ptr<Link> connect_tcp(const std::string& host, std::uint16_t port, double retry_s) {
  return std::make_unique<TcpLink>(host, port, retry_s);
}
std::unique_ptr<Link> open_stdio() { return std::make_unique<StdioLink>(); }

}  // namespace bluepill

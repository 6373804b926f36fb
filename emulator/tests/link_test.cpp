// USART1 bridged to a pty and to a TCP connection that the board dials.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "helpers.hpp"

using namespace bptest;

namespace {

std::string drain(int fd) {
  std::string s;
  char buf[256];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return s;
    s.append(buf, static_cast<std::size_t>(n));
  }
}

// The echo exchange of the usart_rx program, with the far end on fd.
void exchange(bluepill::Board& b, int fd) {
  ASSERT_EQ(b.run_until_output("R", 1e6).stop, bluepill::Stop::condition);
  std::string got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    b.run_for_us(100);
    got += drain(fd);
  }
  EXPECT_EQ(got, "R");
  ASSERT_EQ(::write(fd, "abcde", 5), 5);
  ASSERT_EQ(b.run_until_output("bcdef", 1e6).stop, bluepill::Stop::condition);
  b.run_for_us(100);
  for (int i = 0; i < 100 && got.size() < 6; ++i) {
    b.run_for_us(100);
    got += drain(fd);
  }
  EXPECT_EQ(got.substr(0, 6), "Rbcdef");
}

}  // namespace

TEST(Link, Pty) {
  auto b = board_with("usart_rx");
  b->attach(bluepill::open_pty());
  const std::string path = b->link()->describe();
  ASSERT_EQ(path.rfind("/dev/pts/", 0), 0u) << path;
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK);
  ASSERT_GE(fd, 0);
  termios t{};
  tcgetattr(fd, &t);
  cfmakeraw(&t);
  tcsetattr(fd, TCSANOW, &t);
  exchange(*b, fd);
  ::close(fd);
}

TEST(Link, TcpTheBoardDials) {
  const int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(srv, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len);
  auto b = board_with("usart_rx");
  b->attach(bluepill::connect_tcp("127.0.0.1", ntohs(addr.sin_port), 2));
  const int fd = ::accept(srv, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  exchange(*b, fd);
  ::close(fd);
  ::close(srv);
}

// A board that cannot dial says why: the refusal, or a name that does not resolve (getaddrinfo's
// own error, not the stale errno it leaves: "Success").
TEST(Link, TcpThatCannotConnectSaysWhy) {
  const int srv = ::socket(AF_INET, SOCK_STREAM, 0);  // bound, not listening: connects are refused
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len);
  const auto why = [](const std::string& host, std::uint16_t port) -> std::string {
    try {
      bluepill::connect_tcp(host, port, 0.1);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "connected";
  };
  const std::string refused = why("127.0.0.1", ntohs(addr.sin_port));
  EXPECT_NE(refused.find("cannot connect to 127.0.0.1:"), std::string::npos) << refused;
  EXPECT_NE(refused.find("refused"), std::string::npos) << refused;
  errno = 0;
  const std::string unknown = why("nohost.invalid", 7000);
  EXPECT_NE(unknown.find("cannot connect to nohost.invalid:7000: "), std::string::npos) << unknown;
  EXPECT_EQ(unknown.find("Success"), std::string::npos) << unknown;
  EXPECT_GT(unknown.size(), std::string("cannot connect to nohost.invalid:7000: ").size()) << unknown;
  ::close(srv);
}

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

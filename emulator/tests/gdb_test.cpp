// The GDB remote stub, driven over TCP as gdb would drive it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "bluepill/gdb.hpp"
#include "helpers.hpp"

using namespace bptest;

namespace {

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { ::close(fd_); }
  bool ok() const { return ok_; }
  // Sends a packet, returns the reply's payload.
  std::string ask(const std::string& data) {
    unsigned sum = 0;
    for (char c : data) sum += static_cast<unsigned char>(c);
    char tail[4];
    std::snprintf(tail, sizeof tail, "#%02x", sum & 0xFF);
    std::string pkt(1, '$');
    pkt += data;
    pkt += tail;
    ::send(fd_, pkt.data(), pkt.size(), 0);
    return reply();
  }
  std::string reply() {
    std::string got;
    for (;;) {
      char c;
      if (::recv(fd_, &c, 1, 0) != 1) return "<closed>";
      got += c;
      const auto dollar = got.find('$');
      const auto hash = got.find('#', dollar == std::string::npos ? 0 : dollar);
      if (dollar != std::string::npos && hash != std::string::npos && got.size() >= hash + 3) {
        ::send(fd_, "+", 1, 0);
        return got.substr(dollar + 1, hash - dollar - 1);
      }
    }
  }

 private:
  int fd_;
  bool ok_;
};

std::uint32_t le32(const std::string& hex) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16)) << (8 * i);
  return v;
}

}  // namespace

TEST(Gdb, BreakpointStepRegistersMemoryDetach) {
  auto b = board_with("exceptions");
  bluepill::GdbStub stub(*b, 0);
  bool detached = false;
  std::thread server([&] { detached = stub.serve(); });
  {
    Client gdb(stub.port());
    ASSERT_TRUE(gdb.ok());
    EXPECT_EQ(gdb.ask("qSupported:multiprocess+"), "PacketSize=4000;qXfer:features:read+");
    EXPECT_EQ(gdb.ask("?"), "S05");
    EXPECT_NE(gdb.ask("qXfer:features:read:target.xml:0,fff").find("org.gnu.gdb.arm.m-profile"), std::string::npos);
    const std::uint32_t reset = le32(gdb.ask("m08000004,4"));
    EXPECT_EQ(le32(gdb.ask("p0f")), reset & ~1u) << "halted at the reset vector";
    EXPECT_EQ(gdb.ask("s"), "S05");
    EXPECT_NE(le32(gdb.ask("p0f")), reset & ~1u) << "one instruction later";
    const std::uint32_t systick = le32(gdb.ask("m0800003c,4")) & ~1u;
    EXPECT_EQ(gdb.ask("Z0," + [&] { char h[16]; std::snprintf(h, sizeof h, "%x", systick); return std::string(h); }() + ",2"), "OK");
    EXPECT_EQ(gdb.ask("c"), "S05");
    const std::string regs = gdb.ask("g");
    ASSERT_EQ(regs.size(), 17u * 8);
    EXPECT_EQ(le32(regs.substr(15 * 8, 8)), systick) << "stopped at the SysTick handler";
    EXPECT_EQ(le32(regs.substr(16 * 8, 8)) & 0x1FF, 15u) << "IPSR = SysTick";
    EXPECT_EQ(gdb.ask("c"), "S05") << "and again a millisecond later";
    EXPECT_EQ(gdb.ask("M20004100,4:78563412"), "OK");
    EXPECT_EQ(gdb.ask("m20004100,4"), "78563412");
    EXPECT_EQ(gdb.ask("D"), "OK");
  }
  server.join();
  EXPECT_TRUE(detached);
  run_to_end(*b);  // without the breakpoint the program runs to its end
  EXPECT_EQ(result(*b, 0), 10u);
}

// The command line: `bluepill --gdb 0` prints the port it picked and holds the board at the reset
// vector until gdb detaches; then the program runs as without --gdb.
TEST(Gdb, TheCommandLineWaitsForGdbThenRuns) {
  // `timeout`: a board left waiting by a failed assertion does not outlive the test.
  const std::string cmd = std::string("exec timeout 60 ") + BLUEPILL + " --gdb 0 --image " + fw("hello") + " --exit-on pill </dev/null 2>&1";
  FILE* out = ::popen(cmd.c_str(), "r");
  ASSERT_NE(out, nullptr);
  char line[256] = {};
  ASSERT_NE(std::fgets(line, sizeof line, out), nullptr);
  const std::string first = line;
  const auto colon = first.rfind(':');
  ASSERT_NE(first.find("waiting for gdb on 127.0.0.1:"), std::string::npos) << first;
  {
    Client gdb(static_cast<std::uint16_t>(std::stoi(first.substr(colon + 1))));
    ASSERT_TRUE(gdb.ok());
    const std::uint32_t reset = le32(gdb.ask("m08000004,4"));
    EXPECT_EQ(le32(gdb.ask("p0f")), reset & ~1u) << "held at the reset vector";
    EXPECT_EQ(gdb.ask("D"), "OK");
  }
  std::string rest;
  while (std::fgets(line, sizeof line, out)) rest += line;
  EXPECT_EQ(::pclose(out), 0) << rest;
  EXPECT_EQ(rest, "hello from the blue pill");
}

#include "bluepill/gdb.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace bluepill {

namespace {

const char kTargetXml[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target><architecture>arm</architecture>"
    "<feature name=\"org.gnu.gdb.arm.m-profile\">"
    "<reg name=\"r0\" bitsize=\"32\"/><reg name=\"r1\" bitsize=\"32\"/><reg name=\"r2\" bitsize=\"32\"/>"
    "<reg name=\"r3\" bitsize=\"32\"/><reg name=\"r4\" bitsize=\"32\"/><reg name=\"r5\" bitsize=\"32\"/>"
    "<reg name=\"r6\" bitsize=\"32\"/><reg name=\"r7\" bitsize=\"32\"/><reg name=\"r8\" bitsize=\"32\"/>"
    "<reg name=\"r9\" bitsize=\"32\"/><reg name=\"r10\" bitsize=\"32\"/><reg name=\"r11\" bitsize=\"32\"/>"
    "<reg name=\"r12\" bitsize=\"32\"/><reg name=\"sp\" bitsize=\"32\" type=\"data_ptr\"/>"
    "<reg name=\"lr\" bitsize=\"32\"/><reg name=\"pc\" bitsize=\"32\" type=\"code_ptr\"/>"
    "<reg name=\"xpsr\" bitsize=\"32\" regnum=\"16\"/></feature></target>";

std::string hex_le32(std::uint32_t v) {
  char b[9];
  std::snprintf(b, sizeof b, "%02x%02x%02x%02x", v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24);
  return b;
}

std::uint32_t parse_le32(const std::string& h) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i + 1 < h.size() && i < 8; i += 2)
    v |= static_cast<std::uint32_t>(std::stoul(h.substr(i, 2), nullptr, 16)) << (4 * i);
  return v;
}

std::string to_hex(const std::uint8_t* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

}  // namespace

GdbStub::GdbStub(Board& board, std::uint16_t port) : board_(board) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 1) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("gdb stub: cannot listen on port " + std::to_string(port));
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
}

GdbStub::~GdbStub() {
  if (fd_ >= 0) ::close(fd_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool GdbStub::wait_readable(int fd) {
  // In slices, so that a signal between the check and the poll costs at most one slice.
  for (;;) {
    if (stop_requested_()) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) return true;
  }
}

bool GdbStub::read_packet(std::string& out) {
  // Skips acks and noise up to '$', then reads up to '#' and two checksum digits.
  std::string buf;
  bool in = false;
  for (;;) {
    if (pending_.empty()) {
      if (!wait_readable(fd_)) return false;
      char tmp[4096];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      pending_.assign(tmp, static_cast<std::size_t>(n));
    }
    const char c = pending_.front();
    pending_.erase(0, 1);
    if (!in) {
      if (c == '$') in = true;
      else if (c == 0x03) {
        out.assign(1, static_cast<char>(0x03));
        return true;
      }
      continue;
    }
    if (c != '#') {
      buf += c;
      continue;
    }
    while (pending_.size() < 2) {
      if (!wait_readable(fd_)) return false;
      char tmp[64];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      pending_.append(tmp, static_cast<std::size_t>(n));
    }
    pending_.erase(0, 2);  // checksum: TCP already protects the bytes
    ::send(fd_, "+", 1, MSG_NOSIGNAL);
    out = buf;
    return true;
  }
}

void GdbStub::send_packet(const std::string& data) {
  unsigned sum = 0;
  for (char c : data) sum += static_cast<unsigned char>(c);
  char tail[4];
  std::snprintf(tail, sizeof tail, "#%02x", sum & 0xFF);
  std::string pkt(1, '$');
  pkt += data;
  pkt += tail;
  ::send(fd_, pkt.data(), pkt.size(), MSG_NOSIGNAL);
}

bool GdbStub::interrupted() {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char tmp[256];
  const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) return true;  // connection lost: stop too
  const std::string got(tmp, static_cast<std::size_t>(n));
  const auto at = got.find('\x03');
  if (at == std::string::npos) {
    pending_ += got;
    return false;
  }
  pending_ += got.substr(at + 1);
  return true;
}

std::string GdbStub::resume(bool step) {
  if (!board_.powered()) return "X09";
  RunResult r{};
  if (step) {
    r = board_.run_instructions(1);
    if (r.stop == Stop::limit) return "S05";
  } else {
    bool stop = false;
    const auto halt = [&] { return stop = interrupted() || stop_requested_(); };  // Ctrl-C, SIGTERM
    while (!stop) {
      r = board_.run_until(halt, 1e5);
      if (r.stop == Stop::idle) {
        // Nothing runs: wait for the client to interrupt.
        while (!halt()) ::usleep(10'000);
      }
      if (r.stop != Stop::limit && r.stop != Stop::condition && r.stop != Stop::idle) break;
    }
    if (stop) return "S02";
  }
  switch (r.stop) {
    case Stop::error: {
      std::string msg(1, 'O');
      msg += to_hex(reinterpret_cast<const std::uint8_t*>(r.message.data()), r.message.size());
      send_packet(msg);
      return "S0b";
    }
    case Stop::off: return "X09";
    default: return "S05";
  }
}

std::string GdbStub::handle(const std::string& pkt, bool& done, bool& detached) {
  if (pkt == "\x03") return "S02";
  if (pkt.empty()) return "";
  switch (pkt[0]) {
    case '?': return "S05";
    case 'g': {
      std::string s;
      for (int i = 0; i <= 16; ++i) s += hex_le32(board_.reg(i));
      return s;
    }
    case 'G':
      for (int i = 0; i <= 16 && 1 + 8 * static_cast<std::size_t>(i) + 8 <= pkt.size(); ++i)
        board_.set_reg(i, parse_le32(pkt.substr(1 + 8 * static_cast<std::size_t>(i), 8)));
      return "OK";
    case 'p': {
      const int n = static_cast<int>(std::stoul(pkt.substr(1), nullptr, 16));
      return n <= 16 ? hex_le32(board_.reg(n)) : "E01";
    }
    case 'P': {
      const auto eq = pkt.find('=');
      const int n = static_cast<int>(std::stoul(pkt.substr(1, eq - 1), nullptr, 16));
      if (n > 16) return "E01";
      board_.set_reg(n, parse_le32(pkt.substr(eq + 1)));
      return "OK";
    }
    case 'm': {
      const auto comma = pkt.find(',');
      const auto addr = static_cast<std::uint32_t>(std::stoul(pkt.substr(1, comma - 1), nullptr, 16));
      const std::size_t len = std::min<std::size_t>(std::stoul(pkt.substr(comma + 1), nullptr, 16), 2048);
      std::vector<std::uint8_t> buf(len);
      if (!board_.debug_read(addr, buf.data(), len)) return "E01";
      return to_hex(buf.data(), len);
    }
    case 'M': {
      const auto comma = pkt.find(','), colon = pkt.find(':');
      const auto addr = static_cast<std::uint32_t>(std::stoul(pkt.substr(1, comma - 1), nullptr, 16));
      const std::size_t len = std::stoul(pkt.substr(comma + 1, colon - comma - 1), nullptr, 16);
      std::vector<std::uint8_t> buf(len);
      for (std::size_t i = 0; i < len; ++i)
        buf[i] = static_cast<std::uint8_t>(std::stoul(pkt.substr(colon + 1 + 2 * i, 2), nullptr, 16));
      return board_.debug_write(addr, buf.data(), len) ? "OK" : "E01";
    }
    case 'c': return resume(false);
    case 's': return resume(true);
    case 'Z':
    case 'z': {
      if (pkt.size() < 2 || (pkt[1] != '0' && pkt[1] != '1')) return "";
      const auto addr = static_cast<std::uint32_t>(std::stoul(pkt.substr(3), nullptr, 16)) & ~1u;
      std::vector<std::uint32_t>& bps = bps_;
      if (pkt[0] == 'Z') {
        if (std::find(bps.begin(), bps.end(), addr) == bps.end()) bps.push_back(addr);
      } else {
        bps.erase(std::remove(bps.begin(), bps.end(), addr), bps.end());
      }
      board_.set_breakpoints(bps);
      return "OK";
    }
    case 'H': return "OK";
    case 'k': done = true; return "";
    case 'D':
      done = detached = true;
      board_.set_breakpoints({});
      return "OK";
    case 'q':
      if (pkt.rfind("qSupported", 0) == 0) return "PacketSize=4000;qXfer:features:read+";
      if (pkt == "qAttached") return "1";
      if (pkt == "qC") return "QC1";
      if (pkt == "qfThreadInfo") return "m1";
      if (pkt == "qsThreadInfo") return "l";
      if (pkt.rfind("qXfer:features:read:target.xml:", 0) == 0) {
        const std::string args = pkt.substr(std::strlen("qXfer:features:read:target.xml:"));
        const auto comma = args.find(',');
        const std::size_t off = std::stoul(args.substr(0, comma), nullptr, 16);
        const std::size_t len = std::stoul(args.substr(comma + 1), nullptr, 16);
        const std::string xml(kTargetXml);
        if (off >= xml.size()) return "l";
        const std::string part = xml.substr(off, len);
        std::string reply(1, off + part.size() >= xml.size() ? 'l' : 'm');
        reply += part;
        return reply;
      }
      if (pkt.rfind("qRcmd,", 0) == 0) {
        std::string cmd;
        for (std::size_t i = 6; i + 1 < pkt.size(); i += 2)
          cmd += static_cast<char>(std::stoul(pkt.substr(i, 2), nullptr, 16));
        if (cmd == "reset") {
          board_.reset_pin();
          return "OK";
        }
        const std::string msg = "monitor commands: reset\n";
        return to_hex(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size());
      }
      return "";
    default: return "";
  }
}

bool GdbStub::serve() {
  if (!wait_readable(listen_fd_)) return false;
  fd_ = ::accept(listen_fd_, nullptr, nullptr);
  if (fd_ < 0) return false;
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bool done = false, detached = false;
  std::string pkt;
  while (!done && read_packet(pkt)) {
    const std::string reply = handle(pkt, done, detached);
    if (!(done && !detached)) send_packet(reply);
  }
  ::close(fd_);
  fd_ = -1;
  return detached;
}

}  // namespace bluepill

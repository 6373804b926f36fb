#include "relay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ota/bytes.hpp"
#include "ota/frame.hpp"
#include "ota/protocol.hpp"

namespace e2e {

namespace {
bool write_all(int fd, const std::vector<std::uint8_t>& b) {
  std::size_t off = 0;
  while (off < b.size()) {
    const ssize_t n = ::send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}
}  // namespace

Relay::Relay(std::uint16_t server_port, Damage damage) : server_port_(server_port), damage_(std::move(damage)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listen_fd_, 4);
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { loop(); });
}

Relay::~Relay() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

void Relay::loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int device = ::accept(listen_fd_, nullptr, nullptr);
    if (device < 0) continue;
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(server_port_);
    int one = 1;
    setsockopt(device, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      ++connections_;
      while (!stop_ && pump(device, server)) {
      }
    }
    ::close(device);
    ::close(server);
  }
}

bool Relay::pump(int device, int server) {
  pollfd p[2] = {{device, POLLIN, 0}, {server, POLLIN, 0}};
  if (poll(p, 2, 50) < 0) return false;
  for (int i = 0; i < 2; ++i) {
    if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    std::vector<std::uint8_t> buf(4096);
    const ssize_t n = ::recv(p[i].fd, buf.data(), buf.size(), 0);
    if (n <= 0) return false;
    buf.resize(static_cast<std::size_t>(n));
    const bool to_device = i == 1;
    if (damage_) damage_(buf, to_device);
    // The cut falls exactly after cut_at_ bytes, not after whatever the read that crosses it
    // returned: otherwise a server that sent everything in one burst would get it all through.
    if (to_device && to_device_ + buf.size() > cut_at_) buf.resize(cut_at_ - to_device_);
    if (!write_all(to_device ? device : server, buf)) return false;
    if (to_device && (to_device_ += buf.size()) >= cut_at_) {
      cut_at_ = SIZE_MAX;
      ++cuts_;
      return false;
    }
  }
  return true;
}

void DataRewriter::operator()(std::vector<std::uint8_t>& bytes, bool to_device) {
  if (!to_device || done_) return;
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  bytes.clear();
  // Pass on whole frames; rewrite the chosen DATA frame once.
  std::size_t start = 0;
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i] != ota::kFrameDelimiter) continue;
    std::vector<std::uint8_t> frame(pending_.begin() + static_cast<std::ptrdiff_t>(start),
                                    pending_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    start = i + 1;
    ota::FrameDecoderBuffer<2 + ota::kMaxChunk> dec;
    for (std::uint8_t b : frame) {
      if (dec.feed(b) != ota::FrameDecoder::Event::frame) continue;
      const ota::Frame f = dec.frame();
      if (done_ || f.type != static_cast<std::uint8_t>(ota::MsgType::data) || f.len < 3 ||
          ota::get_u16(f.payload) != index_)
        break;
      std::vector<std::uint8_t> payload(f.payload, f.payload + f.len);
      payload[2 + payload.size() / 2 % (payload.size() - 2)] ^= 0x5A;
      std::vector<std::uint8_t> out(ota::encoded_size_max(payload.size()));
      out.resize(ota::encode_frame(f.type, payload.data(), payload.size(), out.data(), out.size()));
      frame = out;
      done_ = true;
    }
    bytes.insert(bytes.end(), frame.begin(), frame.end());
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(start));
  if (done_) {  // pass the rest unchanged from now on
    bytes.insert(bytes.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }
}

}  // namespace e2e

// A TCP relay for end-to-end tests, between a device that dials in (the emulated board with
// --connect) and the server listening for it (`ota push --listen`). It can damage the bytes it
// passes (drop, flip, duplicate, rewrite whole frames) and cut both connections once after a
// number of bytes; the device then dials again and the relay connects to the server again, as a
// modem that lost its cellular link would.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace e2e {

class Relay {
 public:
  // Changes a burst of bytes in place; `to_device` tells the direction.
  using Damage = std::function<void(std::vector<std::uint8_t>& bytes, bool to_device)>;

  Relay(std::uint16_t server_port, Damage damage = {});
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  std::uint16_t port() const { return port_; }  // where the device dials
  // Later connections go to another server (a new `ota push` on another port).
  void set_server_port(std::uint16_t p) { server_port_ = p; }
  // Once `bytes` more bytes went to the device, close both connections.
  void cut_after(std::size_t bytes) { cut_at_ = to_device_ + bytes; }
  std::size_t connections() const { return connections_; }
  std::size_t cuts() const { return cuts_; }

 private:
  void loop();
  bool pump(int device, int server);

  std::atomic<std::uint16_t> server_port_;
  Damage damage_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> to_device_{0};
  std::atomic<std::size_t> cut_at_{SIZE_MAX};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> cuts_{0};
  std::thread thread_;
};

// Rewrites one DATA frame (a byte of its chunk changed, the frame CRC made valid again): damage
// that no frame check can see, only the image's total CRC-32.
class DataRewriter {
 public:
  explicit DataRewriter(std::uint16_t packet_index) : index_(packet_index) {}
  void operator()(std::vector<std::uint8_t>& bytes, bool to_device);
  bool done() const { return done_; }

 private:
  std::uint16_t index_;
  std::vector<std::uint8_t> pending_;
  bool done_ = false;
};

}  // namespace e2e

// A GDB remote serial protocol stub for the emulated board (gdb-multiarch, `target remote :PORT`).
//
// Registers r0-r15 and xPSR (an org.gnu.gdb.arm.m-profile target description), memory reads and
// writes (flash writes overwrite the flash as a flash loader would, so `load` works), breakpoints
// (Z0/Z1), continue, step, Ctrl-C, `monitor reset`, detach and kill. One client at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bluepill/board.hpp"

namespace bluepill {

class GdbStub {
 public:
  GdbStub(Board& board, std::uint16_t port);  // listens on 127.0.0.1:port; throws on failure
  ~GdbStub();
  GdbStub(const GdbStub&) = delete;
  GdbStub& operator=(const GdbStub&) = delete;

  std::uint16_t port() const { return port_; }
  // Asked while waiting for a client, for its packets, or while the board runs: true ends the
  // session (serve returns false), e.g. when SIGTERM came.
  void stop_when(std::function<bool()> requested) { stop_requested_ = std::move(requested); }
  // Waits for a client and serves it. Returns true if it detached (the board should go on
  // running freely), false if it killed the session or the connection was lost.
  bool serve();

 private:
  bool read_packet(std::string& out);  // false: connection closed
  void send_packet(const std::string& data);
  std::string handle(const std::string& pkt, bool& done, bool& detached);
  std::string resume(bool step);
  bool interrupted();  // a Ctrl-C arrived
  bool wait_readable(int fd);  // false: a stop was requested first

  Board& board_;
  int listen_fd_ = -1;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::string pending_;  // bytes read but not yet consumed
  std::vector<std::uint32_t> bps_;
  std::function<bool()> stop_requested_ = [] { return false; };
};

}  // namespace bluepill

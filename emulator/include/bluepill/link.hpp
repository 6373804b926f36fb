// The far end of USART1's wire: a pseudo-terminal (for picocom or `ota push --port`), a TCP
// connection the board dials (a device behind a modem in transparent mode), or stdin/stdout.
// The board polls receive() and calls send(); both are non-blocking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace bluepill {

class Link {
 public:
  virtual ~Link() = default;
  virtual void send(const std::uint8_t* data, std::size_t len) = 0;       // from the board
  virtual std::size_t receive(std::uint8_t* buf, std::size_t cap) = 0;    // to the board, 0 if none
  virtual std::string describe() const = 0;
};

// A new pty; describe() returns the path of its slave side (/dev/pts/N). Throws on failure.
std::unique_ptr<Link> open_pty();
// Dials host:port (retrying for up to retry_s seconds); redials when the peer closes. Throws.
std::unique_ptr<Link> connect_tcp(const std::string& host, std::uint16_t port, double retry_s = 10);
std::unique_ptr<Link> open_stdio();

}  // namespace bluepill

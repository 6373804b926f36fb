// The link port contract: where the device's frames go. Reception is pushed by the port into
// UpdateClient::receive(); only transmission needs an interface.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ota {

class Link {
 public:
  Link() = default;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Queue bytes for transmission. May block until they fit; must not drop them.
  virtual void send(const std::uint8_t* bytes, std::size_t len) = 0;

 protected:
  ~Link() = default;
};

}  // namespace ota

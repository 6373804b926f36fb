// Many devices at once: a TCP listener that updates every device that dials in, each connection
// driving its own Session (the same code as push_tcp, which serves one device). Devices are told
// apart by their 96-bit uid: one that dials again (its modem lost the carrier, it restarted)
// resumes on the new connection, and the old one, gone quiet, is dropped; while the old one still
// talks, the newcomer is another device with the same uid and is turned away.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ota/host/push.hpp"

namespace ota::host {

struct ServeOptions {
  PushOptions push;          // the per-device session options (timeouts, window, force, ...)
  std::uint32_t devices = 0;  // stop once this many devices have ended (0: no count)
  std::uint32_t idle_ms = 0;  // stop once no device has had an update under way for this long (0: never)
  std::uint32_t max_connections = 64;  // connections served at once; more wait in the backlog
};

// One device's end: its final session (or, for `lost`, the session its link dropped in).
struct DeviceReport {
  std::uint32_t conn = 0;  // the connection it ended on (1, 2, ... in the order they came)
  PushReport report;
  bool again = false;      // the device had ended before: it dialled again (a modem redials)
};

struct ServeReport {
  std::string error;                // the address could not be listened on (nothing else ran)
  std::vector<DeviceReport> ended;  // each device once, with its last final outcome, in end order
  std::vector<DeviceReport> lost;   // devices whose link dropped, or that stopped answering, and
                                    // that did not come back
  bool interrupted = false;         // stopped by SIGINT/SIGTERM
  bool idle = false;                // stopped by idle_ms
  std::uint64_t elapsed_ms = 0;
};

struct ServeObserver {
  // Every session event, with the connection it happened on and the device's uid once known;
  // `again` once the device is known to have ended before (it dialled again). The server adds
  // "connect", "disconnect", "duplicate" (a uid already being updated on a connection that still
  // talks: the newcomer is turned away) and "accept" (conn 0: accepting failed, said once).
  std::function<void(std::uint32_t conn, const std::optional<Hello>& device, const Event&, std::uint64_t ms, bool again)>
      event;
  std::function<void(std::uint32_t conn, const std::optional<Hello>& device, std::uint32_t acked, std::uint32_t total,
                     std::uint64_t ms, bool again)>
      progress;
  // A device's session ended (other than by a dropped link or a device that stopped answering:
  // it may dial again); `again` for one that had ended before.
  std::function<void(const DeviceReport&)> ended;
};

ServeReport serve_tcp(const std::string& listen, const Image& img, const ServeOptions& opt,
                      const ServeObserver& obs, std::function<void(std::uint16_t)> on_listening = {});

}  // namespace ota::host

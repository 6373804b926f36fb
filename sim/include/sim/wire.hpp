// Runs a host update session against a simulated device in one process, on a virtual clock:
// the server's bytes go straight to the device and back, one millisecond per step.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ota/host/session.hpp"
#include "sim/device.hpp"

namespace sim {

struct WireOptions {
  std::uint64_t max_ms = 10 * 60 * 1000;  // virtual time limit
  bool stop_when_dead = true;             // return as soon as the device's power is gone
  // Optional link faults: each may change, drop or add bytes of a burst before it is delivered.
  std::function<void(std::vector<std::uint8_t>&)> to_device;
  std::function<void(std::vector<std::uint8_t>&)> to_server;
};

// Returns the virtual milliseconds spent. The session's outcome tells the rest.
std::uint64_t run_session(Device& dev, ota::host::Session& session, WireOptions opt = {});

}  // namespace sim

#include "sim/wire.hpp"

namespace sim {

std::uint64_t run_session(Device& dev, ota::host::Session& session, WireOptions opt) {
  std::uint64_t now = 0;
  session.begin(now);
  while (!session.done() && now < opt.max_ms) {
    if (opt.stop_when_dead && dev.dead()) break;
    auto down = session.take_output();
    const bool sent = !down.empty();
    if (sent && opt.to_device) opt.to_device(down);
    if (!down.empty()) dev.receive(down.data(), down.size());
    auto up = dev.take_output();
    const bool answered = !up.empty();
    if (answered && opt.to_server) opt.to_server(up);
    if (!up.empty()) session.on_bytes(up.data(), up.size(), now);
    if (!sent && !answered) {
      ++now;
      session.on_tick(now);
    }
  }
  return now;
}

}  // namespace sim

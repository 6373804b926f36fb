// `make demo` until the emulated board and the `ota` tool run the real firmware: a host-level
// simulation of one full update of each layout, through the very core the firmware runs (update
// client, flag store, journal, install logic) on simulated flash parts that enforce the chips'
// rules, driven by the host's update session. No CPU is emulated here.
#include <cstdio>

#include "ota/crc.hpp"
#include "sim/wire.hpp"

namespace {

int demo(const ota::Layout& layout) {
  std::printf("\n=== %s layout: staging in %s flash, image limit %u bytes ===\n", layout.name,
              layout.staging.medium == ota::Medium::internal ? "internal" : "external W25Q",
              layout.image_limit);
  sim::Device dev(layout);
  const auto v1 = sim::make_app_image(layout, 1, 20 * 1024);
  const auto v2 = sim::make_app_image(layout, 2, layout.image_limit - 1000);
  dev.factory_install(v1);
  dev.boot();
  std::printf("factory-fresh device runs v%u\n", dev.running_version().value_or(0));

  ota::host::Session session(v2, 2);
  std::printf("pushing v2: %zu bytes, CRC-32 %08X\n", v2.size(), ota::crc32(v2.data(), v2.size()));
  const std::uint64_t ms = sim::run_session(dev, session);
  for (const auto& e : session.take_events()) std::printf("  [%s] %s\n", e.kind.c_str(), e.text.c_str());
  const bool ok = session.outcome() == ota::host::Outcome::upgraded && dev.running_version() == 2u &&
                  std::equal(v2.begin(), v2.end(), dev.app_region().begin());
  std::printf("outcome: %s after %llu ms of virtual time (%u frames, %u re-sent), installer: %s\n",
              ota::host::to_string(session.outcome()), static_cast<unsigned long long>(ms),
              session.frames_sent(), session.resends(), ota::to_string(dev.last_install()));
  std::printf("device now runs v%u, application area %s the v2 image, flash rule violations: %llu\n",
              dev.running_version().value_or(0), ok ? "matches" : "DOES NOT match",
              static_cast<unsigned long long>(dev.violations()));
  return ok && dev.violations() == 0 ? 0 : 1;
}

}  // namespace

int main() {
  std::printf("Host-level simulation of an update (portable core on simulated flash parts; the\n"
              "emulated board with the real firmware binaries is not wired into the demo yet).\n");
  int rc = demo(ota::kInternalLayout);
  rc |= demo(ota::kExternalLayout);
  std::printf("\n%s\n", rc == 0 ? "demo: both layouts upgraded from v1 to v2" : "demo: FAILED");
  return rc;
}

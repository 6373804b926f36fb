// ota-sim-device: a CPU-less simulated device (the portable core on simulated flash parts) on a
// real link: a pty whose path it prints, or a TCP connection it dials, as a device behind a modem
// does. Tests use it to check the `ota` tool over real serial ports and sockets quickly; the
// emulated board (bluepill) does the same with the real firmware binaries.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <cstdio>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "sim/device.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ota-sim-device: a simulated OTA device (no CPU) on a pty or a TCP connection"};
  std::string layout_name = "internal", connect;
  std::uint32_t version = 1, size = 12 * 1024;
  std::uint64_t seed = 1;
  bool pty = false;
  app.add_option("-l,--layout", layout_name)->check(CLI::IsMember({"internal", "external"}));
  app.add_option("-v,--version", version,
                 "version of the factory application (a synthetic image; after an update the device reports the "
                 "version of the image it installed: its OTA_APP_INFO record, or \"APPV\" + u32 at offset 0x20)");
  app.add_option("--size", size, "size of the factory application");
  app.add_option("--seed", seed, "the device's identity (its uid) and the randomness of its flash parts");
  auto* p = app.add_flag("--pty", pty, "open a pty and print its path");
  app.add_option("--connect", connect, "dial HOST:PORT")->excludes(p);
  CLI11_PARSE(app, argc, argv);
  const ota::Layout& layout = layout_name == "external" ? ota::kExternalLayout : ota::kInternalLayout;

  int fd = -1;
  if (pty) {
    int slave = -1;
    char name[256];
    if (openpty(&fd, &slave, name, nullptr, nullptr) != 0) {
      std::perror("openpty");
      return 1;
    }
    termios t{};
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    std::printf("pty %s\n", name);  // the slave stays open so the master never sees a hang-up
  } else if (!connect.empty()) {
    const auto colon = connect.rfind(':');
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (colon == std::string::npos ||
        getaddrinfo(connect.substr(0, colon).c_str(), connect.substr(colon + 1).c_str(), &hints, &res) != 0) {
      std::fprintf(stderr, "bad --connect %s\n", connect.c_str());
      return 2;
    }
    fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      std::perror("connect");
      return 1;
    }
    freeaddrinfo(res);
    std::printf("connected %s\n", connect.c_str());
  } else {
    std::fprintf(stderr, "give --pty or --connect\n");
    return 2;
  }
  std::fflush(stdout);

  sim::Device dev(layout, seed);
  dev.factory_install(sim::make_app_image(layout, version, size));
  dev.boot();
  std::uint32_t reported_boots = 0;
  for (;;) {
    if (dev.boots() != reported_boots) {
      reported_boots = dev.boots();
      std::printf("boot %u: %s v%u (%s)\n", reported_boots, dev.in_recovery() ? "recovery" : "application",
                  dev.running_version().value_or(0), ota::to_string(dev.last_install()));
      std::fflush(stdout);
    }
    const auto out = dev.take_output();
    for (std::size_t off = 0; off < out.size();) {
      const ssize_t n = write(fd, out.data() + off, out.size() - off);
      if (n <= 0) return 0;
      off += static_cast<std::size_t>(n);
    }
    std::uint8_t buf[512];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return 0;  // the link is gone
    dev.receive(buf, static_cast<std::size_t>(n));
  }
}

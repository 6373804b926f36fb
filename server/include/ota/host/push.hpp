// Runs update sessions over real transports with asio: a serial port (or pty), or TCP connections
// that devices open towards us (a device behind a modem dials in). Small pieces: a Channel moves
// bytes for one connection and drives one Session with the wall clock; push_serial / push_tcp
// open the transport and run a Session over it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ota/host/image.hpp"
#include "ota/host/session.hpp"

namespace ota::host {

// The serial rates push_serial can set (the standard termios rates, 0 excepted: it hangs up
// the line); the CLI offers exactly these. The firmware runs 115200 unless built with another of
// these (OTA_USART1_BAUD).
inline constexpr std::uint32_t kSerialRates[] = {1200,   2400,   4800,   9600,   19200,   38400,
                                                 57600,  115200, 230400, 460800, 500000,  576000,
                                                 921600, 1000000, 1500000, 2000000};

struct PushOptions {
  SessionOptions session;
  std::uint32_t baud = 115200;
  // TCP only: how long to wait for the device to connect, and to reconnect after the link dropped
  // (a modem redialling, a device that restarted); the download resumes where it stopped.
  std::uint32_t connect_timeout_ms = 60000;
  std::uint32_t max_reconnects = 5;  // losses in a row without a packet stored in between
};

struct PushReport {
  Outcome outcome = Outcome::pending;
  std::string detail;
  std::optional<Hello> device;
  std::uint32_t resends = 0;
  std::uint64_t elapsed_ms = 0;
};

// Called for every session event, and with progress (packets acked of total) as it moves.
struct PushObserver {
  std::function<void(const Event&, std::uint64_t ms)> event;
  std::function<void(std::uint32_t acked, std::uint32_t total, std::uint64_t ms)> progress;
};

PushReport push_serial(const std::string& port, const Image& img, const PushOptions& opt,
                       const PushObserver& obs);
// `listen`: "PORT", ":PORT" (all interfaces) or "HOST:PORT" (an address or a name); PORT 0-65535,
// 0 = any. on_listening gets the bound port.
PushReport push_tcp(const std::string& listen, const Image& img, const PushOptions& opt,
                    const PushObserver& obs, std::function<void(std::uint16_t)> on_listening = {});

// Stops the push or serve that runs on this thread as a first SIGINT would (a download under way
// is ABORTed, the device's answer waited for), for a cause that is no signal: the tool's output
// closed, say. Nothing if a signal already stopped it, or if none runs. Safe to call from an
// observer: the stop happens after it returns.
void stop_as_if_interrupted();

}  // namespace ota::host

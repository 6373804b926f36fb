// End-to-end in one process: the host's update session talking to an emulated Blue Pill that runs
// the real firmware binaries, on the board's virtual clock. Used by the end-to-end tests and by
// the benchmarks; the tools (`ota push`, `bluepill --pty/--connect`) are tested on real links
// separately.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bluepill/board.hpp"
#include "ota/host/session.hpp"
#include "ota/layout.hpp"

namespace e2e {

// The firmware images of one layout, from the firmware build.
struct Firmware {
  explicit Firmware(const std::string& layout_name);
  const ota::Layout* layout;
  std::string dir;  // build/firmware/<layout>
  std::string bootloader_elf() const { return dir + "/bootloader.elf"; }
  std::string app_elf(std::uint32_t version) const;
  std::vector<std::uint8_t> app_bin(std::uint32_t version) const;  // as `ota image` would send it
  // The application padded to the layout's image limit with filler from `seed`: the largest
  // image, the longest download and install.
  std::vector<std::uint8_t> largest_app(std::uint32_t version, std::uint32_t seed) const;
  // The application with its reset handler replaced by a hang (interrupts off, WFI for ever, as
  // an application stuck waiting for an interrupt it never enabled), appended to the image: it
  // passes every check of START, of the install and of the bootloader's jump.
  std::vector<std::uint8_t> hanging_app(std::uint32_t version) const;
  // The same with a reset handler that faults at once (UDF): on a board run --lenient, a device
  // that resets over and over.
  std::vector<std::uint8_t> crashing_app(std::uint32_t version) const;
  // The application with its app info rewritten to name another product.
  std::vector<std::uint8_t> relabelled_app(std::uint32_t version, const char* product) const;

 private:
  // The application with `code` appended as its reset handler.
  std::vector<std::uint8_t> with_reset_handler(std::uint32_t version, std::span<const std::uint8_t> code) const;
};

// A factory-fresh board: bootloader + application v1 programmed, powered on, banner printed.
void factory_fresh(bluepill::Board& b, const Firmware& fw);

// Runs the board until its application banner ("app v<N>") is complete; returns N, or -1 (the
// output says why: recovery, an error, nothing within max_us of virtual time).
int boot_to_banner(bluepill::Board& b, double max_us = 5e6);

struct WireResult {
  bluepill::Stop stop = bluepill::Stop::limit;  // error: the board broke a rule (message)
  std::string message;
  double virtual_ms = 0;  // spent in this run
};

struct WireOptions {
  double max_ms = 120000;  // virtual time limit
  double step_us = 500;    // board time per step between session ticks
  // Called after every step with the board's virtual time; return true to stop the run (a test
  // cuts the power there, or samples the flash).
  std::function<bool(double now_ms)> stop_at;
};

// Runs `session` against the board's USART1 until the session is done, the board stops (error,
// power off) or stop_at says so. The session's clock is the board's virtual milliseconds.
WireResult run(bluepill::Board& b, ota::host::Session& s, const WireOptions& opt = {});

// `opt` with the board's reset button pressed once, at the run's first step: how a user lets a
// --recover push's RECOVER reach the bootloader.
WireOptions reset_pressed_once(bluepill::Board& b, WireOptions opt = {});

// The session heard its device's bootloader (a HELLO "bootloader (recovery mode)", with `also` in
// it); takes the session's events.
bool heard_bootloader(ota::host::Session& s, std::string_view also = {});

// The application area of the board's internal flash equals `image` (byte for byte, over its size).
bool app_area_is(bluepill::Board& b, const ota::Layout& l, const std::vector<std::uint8_t>& image);

}  // namespace e2e

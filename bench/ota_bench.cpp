// ota-bench: the figures of `make bench` that need the emulated board (download speed, install
// time, emulator speed, the end-to-end power-cut rate). Prints Markdown table rows; scripts/bench
// assembles docs/benchmarks.md around them. Everything is measured on the board's virtual clock
// with the real firmware, except the rates, which are wall-clock.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "e2e/board_wire.hpp"
#include "ota/host/image.hpp"
#include "sim/internal_flash.hpp"
#include "sim/w25q_chip.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A board whose application area holds `app` (factory programmed), booted to its banner.
void board_with(bluepill::Board& b, const e2e::Firmware& fw, const std::vector<std::uint8_t>& app) {
  const auto file = std::filesystem::temp_directory_path() / ("ota-bench-" + std::to_string(::getpid()) + ".bin");
  if (auto e = ota::host::save_file(file, app)) throw std::runtime_error(e.text);
  b.load_image(fw.bootloader_elf());
  b.load_image(file.string(), fw.layout->app.base);
  std::filesystem::remove(file);
  b.power_on();
  if (e2e::boot_to_banner(b) < 0) throw std::runtime_error("board did not boot: " + b.uart_output());
}

struct Measure {
  double download_ms = 0;  // START sent .. RESULT ok received
  double install_ms = 0;   // reset after RESULT .. the new application's banner complete
  double total_ms = 0;
  std::uint32_t resends = 0;
  unsigned window = 0;  // what the session used
  bool ok = false;
};

Measure update(const e2e::Firmware& fw, const std::vector<std::uint8_t>& running,
               const std::vector<std::uint8_t>& image, std::uint8_t window, double latency_ms) {
  bluepill::Config cfg;
  cfg.latency_ms = latency_ms;
  bluepill::Board b(cfg);
  board_with(b, fw, running);
  ota::host::SessionOptions o;
  o.window = window;
  o.force = true;  // the version may equal the running one (the one-page-difference case)
  ota::host::Session s(image, 2, o);
  Measure m;
  double t_start = -1, t_result = -1, t_reset = -1, t_banner = -1;
  const std::uint32_t resets = b.resets();
  std::size_t out_from = 0;
  e2e::WireOptions w;
  w.step_us = 200;
  w.stop_at = [&](double now) {
    if (t_start < 0 && s.phase() == ota::host::Phase::download) t_start = now;
    if (t_result < 0 && s.phase() == ota::host::Phase::reboot) t_result = now;
    if (t_reset < 0 && b.resets() != resets) t_reset = now, out_from = b.uart_output().size();
    if (t_reset >= 0 && t_banner < 0) {
      const auto at = b.uart_output().find("app v", out_from);
      if (at != std::string::npos && b.uart_output().find('\n', at) != std::string::npos) t_banner = now;
    }
    return false;
  };
  const auto r = e2e::run(b, s, w);
  m.ok = r.stop != bluepill::Stop::error && t_start >= 0 && t_result >= 0 && t_banner >= 0;
  m.download_ms = t_result - t_start;
  m.install_ms = t_banner - t_reset;
  m.total_ms = r.virtual_ms;
  m.resends = s.resends();
  m.window = window ? window : (s.device() ? s.device()->window : 0);
  return m;
}

int differing_pages(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  int n = 0;
  for (std::size_t p = 0; p < b.size(); p += ota::kFlashPage) {
    const std::size_t end = std::min(b.size(), p + ota::kFlashPage);
    if (!std::equal(b.begin() + static_cast<std::ptrdiff_t>(p), b.begin() + static_cast<std::ptrdiff_t>(end),
                    a.begin() + static_cast<std::ptrdiff_t>(p)))
      ++n;
  }
  return n;
}

// What no installer avoids between the reset and the new application, at the flash timings the
// board runs (its typical ones, DS5319 and the W25Q16JV datasheet): each differing page erased
// (30 ms) and programmed (512 half-words of 52.5 us), the flag move's two erases of the flag
// medium (the flag area, then the journal: internal pages, or W25Q sectors of 45 ms). (The boot
// that installs starts the application without the RECOVER listening window.)
double install_floor_ms(const ota::Layout& l, int pages) {
  constexpr double kPageEraseMs = 30, kHalfWordMs = 0.0525;
  const auto erase_ms = [](const ota::Region& r) {
    return r.medium == ota::Medium::external ? static_cast<double>(sim::kW25qTypical.sector_erase_ns) / 1e6
                                             : kPageEraseMs;
  };
  return pages * (kPageEraseMs + ota::kFlashPage / 2 * kHalfWordMs) + erase_ms(l.flags) + erase_ms(l.journal());
}

void speed_rows() {
  std::printf("| layout | image | window | one-way latency | download | line-rate time | efficiency |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const char* name : {"internal", "external"}) {
    const e2e::Firmware fw(name);
    const auto v1 = fw.largest_app(1, 1), v2 = fw.largest_app(2, 2);
    for (double lat : {0.0, 150.0})
      for (std::uint8_t win : {std::uint8_t{1}, std::uint8_t{0}}) {
        const Measure m = update(fw, v1, v2, win, lat);
        const double line_ms = static_cast<double>(v2.size()) * 10 / 115200 * 1000;
        std::printf("| %s | %zu B | %s | %.0f ms | %s | %.0f ms | %s |\n", name, v2.size(),
                    win == 1 ? "1 (stop-and-wait)" : (std::to_string(m.window) + " (the device's)").c_str(), lat,
                    m.ok ? (std::to_string(static_cast<int>(m.download_ms)) + " ms").c_str() : "FAILED", line_ms,
                    m.ok ? (std::to_string(static_cast<int>(100 * line_ms / m.download_ms + 0.5)) + " %").c_str() : "-");
        std::fflush(stdout);
      }
  }
}

void install_rows() {
  std::printf("| layout | image | pages that differ | install (reset to new banner) | unavoidable: flash work | ratio |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const char* name : {"internal", "external"}) {
    const e2e::Firmware fw(name);
    const auto v1 = fw.largest_app(1, 1);
    const auto v2_all = fw.largest_app(2, 2);   // all pages differ (different filler)
    const auto v2_same = fw.largest_app(2, 1);  // same filler: only the code pages differ
    for (const auto* img : {&v2_all, &v2_same}) {
      const int pages = differing_pages(v1, *img);
      const Measure m = update(fw, v1, *img, 0, 0);
      const double bound = install_floor_ms(*fw.layout, pages);
      std::printf("| %s | %zu B | %d of %zu | %s | %.0f ms | %s |\n", name, img->size(), pages,
                  (img->size() + ota::kFlashPage - 1) / ota::kFlashPage,
                  m.ok ? (std::to_string(static_cast<int>(m.install_ms)) + " ms").c_str() : "FAILED", bound,
                  m.ok ? (std::to_string(m.install_ms / bound).substr(0, 4) + "x").c_str() : "-");
      std::fflush(stdout);
    }
  }
}

void emulator_rows() {
  std::printf("| run | instructions | virtual time | wall time | instructions/s | vs real time |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const char* name : {"internal", "external"}) {
    const e2e::Firmware fw(name);
    bluepill::Board b;
    const auto t0 = Clock::now();
    board_with(b, fw, fw.largest_app(1, 1));
    ota::host::Session s(fw.largest_app(2, 2), 2);
    const auto r = e2e::run(b, s);
    const double wall = seconds_since(t0);
    const double virt = static_cast<double>(b.now_ns()) / 1e9;
    std::printf("| boot + largest update, %s | %.1f M | %.2f s | %.2f s | %.1f M/s | %.1fx %s |\n", name,
                static_cast<double>(b.instructions()) / 1e6, virt, wall,
                static_cast<double>(b.instructions()) / 1e6 / wall, virt / wall,
                r.stop == bluepill::Stop::error || s.outcome() != ota::host::Outcome::upgraded ? "(FAILED)" : "faster");
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  try {
    if (what == "speed" || what == "all") speed_rows();
    if (what == "install" || what == "all") install_rows();
    if (what == "emulator" || what == "all") emulator_rows();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ota-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

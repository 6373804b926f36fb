// bluepill: the emulated Blue Pill on the command line.
//   bluepill --flash board.bin --image build/firmware/internal/bootloader.elf --image app.elf --pty
// Diagnostics go to stderr; USART1 goes to the chosen link (stdio by default).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <iostream>

#include "bluepill/board.hpp"
#include "bluepill/chip.hpp"
#include "bluepill/file_lock.hpp"
#include "bluepill/gdb.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_reset = 0;
void on_signal(int) { g_stop = 1; }
void on_reset(int) { g_reset = 1; }  // SIGUSR1: the reset button

void report(const char* what, const bluepill::Board& board, std::uint64_t instructions, double virt_s, double wall) {
  const double n = static_cast<double>(instructions);
  std::printf("bench %s: %.0f instructions, %.3f s virtual in %.3f s wall: %.1f M instructions/s, %.2fx real time\n",
              what, n, virt_s, wall, n / wall / 1e6, virt_s / wall);
  (void)board;
}

// The raw instruction rate (a tight loop at 72 MHz), then, if images are given, the rate of
// that firmware (its UART output is discarded).
int bench(double seconds, const std::vector<std::string>& images) {
  {
    bluepill::Board board;
    auto mem = board.flash().bytes();
    const std::uint32_t words[] = {0x20005000, 0x08000009};
    std::memcpy(&mem[0], words, sizeof words);
    const std::uint16_t code[] = {
        0x4802,  // ldr r0, [pc, #8]
        0x3801,  // 1: subs r0, #1
        0xd1fd,  // bne 1b
        0xe7fb,  // b back to the ldr
        0xbf00, 0xbf00,
        0x9680, 0x0098,  // .word 10000000
    };
    std::memcpy(&mem[8], code, sizeof code);
    board.power_on();
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = board.run_for_us(seconds * 1e6);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report("loop (8 MHz reset clock)", board, board.instructions(), board.now_us() / 1e6, wall);
    if (r.stop == bluepill::Stop::error) return 1;
  }
  if (images.empty()) return 0;
  bluepill::Board board;
  for (const auto& img : images) board.load_image(img);
  board.power_on();
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = board.run_for_us(seconds * 1e6);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report("firmware", board, board.instructions(), board.now_us() / 1e6, wall);
  if (r.stop == bluepill::Stop::error) {
    std::fprintf(stderr, "%s", r.message.c_str());
    return 1;
  }
  return 0;
}

// A whole number, decimal or 0x-hex, at most `max`: nothing before or after it, no sign.
bool parse_number(const std::string& text, unsigned long max, unsigned long& out) {
  if (text.empty() || !std::isxdigit(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoul(text.c_str(), &end, 0);
  return errno == 0 && *end == '\0' && out <= max;
}

}  // namespace

std::string_view as_text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

int main(int argc, char** argv) {
  CLI::App app{"bluepill: an emulated STM32F103C8 Blue Pill with a W25Q16 on SPI1"};
  bluepill::Config cfg;
  std::vector<std::string> images;
  std::string flash_file, w25q_file, connect, timing = "typ", uid, exit_on, pty_link;
  std::vector<std::string> worn_pages;
  std::uint32_t bin_base = 0x08000000;
  bool pty = false, stdio = false, erase = false, no_w25q = false, lenient = false, verbose = false, quiet = false;
  std::uint64_t cut_after = 0;
  double cut_at_us = 0, run_us = 0, bench_s = 0;
  int gdb_port = -1;
  app.add_option("--image,image", images, "program .elf/.hex/.bin images into the internal flash (factory programming)");
  app.add_option("--bin-base", bin_base, "load address of .bin images")->default_str("0x08000000");
  app.add_flag("--erase", erase, "erase the whole internal flash before loading images");
  app.add_option("--flash", flash_file, "file holding the internal flash contents (power cycles keep it)");
  app.add_option("--worn-page", worn_pages,
                 "a worn internal flash page, by any address in it (repeatable): its erases end with no error "
                 "flag but leave some bits programmed");
  auto* w25q_opt = app.add_option("--w25q", w25q_file, "file holding the W25Q contents");
  auto* no_w25q_opt = app.add_flag("--no-w25q", no_w25q, "no W25Q on SPI1")->excludes(w25q_opt);
  app.add_flag("--w25q-protected", cfg.w25q_protected,
               "the W25Q's block 0 write-protected (status register bits or block locks left by another project)")
      ->excludes(no_w25q_opt);
  auto* pty_opt = app.add_flag("--pty", pty, "bridge USART1 to a new pseudo-terminal (its path is printed)");
  app.add_option("--pty-link", pty_link, "also make PATH a symbolic link to the pty: a name that stays the same "
                                         "from run to run (removed at exit)")
      ->needs(pty_opt);
  auto* connect_opt = app.add_option("--connect", connect, "bridge USART1 to a TCP connection the board dials: host:port")
                          ->excludes(pty_opt);
  app.add_flag("--stdio", stdio, "bridge USART1 to stdin/stdout (the default)")->excludes(pty_opt)->excludes(connect_opt);
  app.add_flag("--realtime", cfg.realtime, "pace virtual time to wall-clock time");
  app.add_option("--baud", cfg.link_baud,
                 "the far end's rate: USART1 set more than 2.5 % away from it is an error (firmware built "
                 "with OTA_USART1_BAUD)")
      ->default_str("115200")
      ->check(CLI::Range(1200u, 4500000u));
  app.add_option("--latency-ms", cfg.latency_ms, "one-way link latency in virtual milliseconds")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cycles-per-instruction", cfg.cycles_per_instruction,
                 "core clock cycles per instruction: 1 (default) is the Cortex-M3 at its best; 2 is "
                 "slow silicon (flash wait states, loads, branches)")
      ->check(CLI::Range(1.0, 16.0));
  app.add_option("--timing", timing, "flash/W25Q operation times: typ, max or random")
      ->check(CLI::IsMember({"typ", "max", "random"}));
  app.add_option("--seed", cfg.seed, "seed of random timings, torn bits and SRAM contents");
  app.add_option("--uid", uid, "unique device ID: three 32-bit words, e.g. 0x1234,0x5678,0x9abc");
  app.add_option("--cut-after", cut_after, "cut the power after N instructions, then exit");
  app.add_option("--cut-at-us", cut_at_us, "cut the power at this virtual time (microseconds), then exit")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--run-us", run_us, "stop (cleanly) after this much virtual time");
  app.add_option("--exit-on", exit_on, "stop (cleanly) once USART1 has sent this text");
  app.add_flag("--lenient", lenient, "report errors but keep running (faults go to the HardFault handler)");
  app.add_flag("-v,--verbose", verbose, "also print info diagnostics (resets, power events)");
  app.add_flag("-q,--quiet", quiet, "print errors only");
  app.add_option("--bench", bench_s, "measure the instruction rate over this many virtual seconds (a loop, then the given images) and exit")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--gdb", gdb_port, "wait for gdb (target remote :PORT) before running; 0 picks a port")
      ->check(CLI::Range(0, 65535));
  CLI11_PARSE(app, argc, argv);

  if (bench_s > 0) {
    try {
      return bench(bench_s, images);
    } catch (const std::exception& e) {
      std::cerr << "bluepill: " << e.what() << "\n";
      return 2;
    }
  }
  cfg.flash_file = flash_file;
  cfg.w25q_file = w25q_file;
  cfg.w25q = !no_w25q;
  cfg.strict = !lenient;
  cfg.timing = timing == "max" ? bluepill::TimingMode::maximum
               : timing == "random" ? bluepill::TimingMode::random
                                    : bluepill::TimingMode::typical;
  if (!uid.empty()) {
    std::size_t from = 0;
    for (int i = 0; i < 3; ++i) {
      const std::size_t comma = i < 2 ? uid.find(',', from) : uid.size();
      unsigned long w = 0;
      if (comma == std::string::npos || !parse_number(uid.substr(from, comma - from), 0xFFFFFFFFul, w)) {
        std::cerr << "bluepill: --uid wants three comma-separated 32-bit numbers, not '" << uid << "'\n";
        return 2;
      }
      cfg.uid[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(w);
      from = comma + 1;
    }
  }

  for (const auto& page : worn_pages) {
    unsigned long addr = 0;
    if (!parse_number(page, 0xFFFFFFFFul, addr) || addr < 0x08000000ul || addr >= 0x08010000ul) {
      std::cerr << "bluepill: --worn-page wants an address in the internal flash (0x08000000-0x0800FFFF), not '" << page
                << "'\n";
      return 2;
    }
    cfg.worn_pages.push_back(static_cast<std::uint32_t>(addr));
  }

  if (!flash_file.empty() && !w25q_file.empty() &&
      std::filesystem::weakly_canonical(flash_file) == std::filesystem::weakly_canonical(w25q_file)) {
    std::cerr << "bluepill: --flash and --w25q name the same file, " << flash_file << "\n";
    return 2;
  }
  // Two boards on one flash file would each write their own copy at exit, and the second would
  // not see the first's writes: one board per file.
  // The lock follows each save's new copy (bluepill/file_lock.hpp): whoever opens the name finds
  // a locked file, the old one or the new one.
  bluepill::FileLock locks[2];  // flash, W25Q; held until exit
  const std::string* const files[2] = {&flash_file, &w25q_file};
  for (int i = 0; i < 2; ++i) {
    const std::string& file = *files[i];
    if (file.empty()) continue;
    if (!locks[i].take(file)) {
      std::cerr << "bluepill: " << file << ": " << (errno == EWOULDBLOCK ? "in use by another bluepill" : std::strerror(errno))
                << "\n";
      return 2;
    }
  }
  cfg.before_save_rename = [&](const std::filesystem::path& part, const std::filesystem::path& file) {
    if (!locks[file == cfg.flash_file ? 0 : 1].renew(part))  // the part file is another process's
      std::cerr << "bluepill: " << part.string() << ": cannot lock it: " << std::strerror(errno) << "\n";
  };

  std::string connect_host;
  unsigned long connect_port = 0;
  if (!connect.empty()) {
    const auto colon = connect.rfind(':');
    connect_host = colon == std::string::npos ? "" : connect.substr(0, colon);
    if (connect_host.size() > 2 && connect_host.front() == '[' && connect_host.back() == ']')
      connect_host = connect_host.substr(1, connect_host.size() - 2);  // [IPv6]:port
    if (connect_host.empty() || !parse_number(connect.substr(colon + 1), 65535, connect_port) || connect_port == 0) {
      std::cerr << "bluepill: --connect wants host:port with a port of 1-65535, not '" << connect << "'\n";
      return 2;
    }
  }

  // The --pty-link made, removed however the run ends (a return or an exception below).
  struct RemovedAtExit {
    std::string path;
    ~RemovedAtExit() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }
  } link_guard;
  std::string& link_made = link_guard.path;
  try {
    {  // the images read and checked on a board without files first: a bad one changes no file
      bluepill::Config dry = cfg;
      dry.flash_file.clear();
      dry.w25q_file.clear();
      bluepill::Board check(dry);
      for (const auto& img : images) check.load_image(img, bin_base);
    }
    bluepill::Board board(cfg);
    board.diagnostics().on_add = [&](const bluepill::Diagnostic& d) {
      if (d.severity == bluepill::Severity::error || (!quiet && d.severity == bluepill::Severity::warning) || verbose)
        std::cerr << "bluepill: " << d.to_string() << std::endl;
    };
    if (erase) board.erase_flash();
    for (const auto& img : images) board.load_image(img, bin_base);
    if (pty) {
      board.attach(bluepill::open_pty());
      if (!pty_link.empty()) {
        // Replaces a link left by an earlier run, never anything else.
        std::error_code ec;
        const auto st = std::filesystem::symlink_status(pty_link, ec);
        if (std::filesystem::exists(st) && !std::filesystem::is_symlink(st))
          throw std::runtime_error("--pty-link: " + pty_link + " exists and is not a symbolic link");
        std::filesystem::remove(pty_link, ec);
        std::filesystem::create_symlink(board.link()->describe(), pty_link);  // throws with the reason
        link_made = pty_link;
      }
      std::cout << "bluepill: USART1 on " << board.link()->describe() << std::endl;
    } else if (!connect.empty()) {
      std::cerr << "bluepill: dialling " << connect << std::endl;  // until something listens there
      board.attach(bluepill::connect_tcp(connect_host, static_cast<std::uint16_t>(connect_port)));
      std::cerr << "bluepill: USART1 connected to " << connect << std::endl;
    } else {
      (void)stdio;
      board.attach(bluepill::open_stdio());
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGUSR1, on_reset);

    board.power_on();
    if (gdb_port >= 0) {
      bluepill::GdbStub stub(board, static_cast<std::uint16_t>(gdb_port));
      stub.stop_when([] { return g_stop != 0; });
      std::cout << "bluepill: waiting for gdb on 127.0.0.1:" << stub.port() << std::endl;
      if (!stub.serve()) {
        board.power_cut();
        return 0;
      }
    }
    bluepill::RunResult r{};
    const double limit_us = cut_at_us > 0 ? cut_at_us : run_us > 0 ? run_us : 1e18;
    // The flash files follow the board as it runs, not only at its exit: a board killed (kill -9,
    // a CI timeout) keeps what it wrote up to a quarter of a second before, as a board whose power
    // was cut then would (each file is written beside and renamed over, whole).
    auto contents = [&] {
      std::size_t h = 0;
      if (!flash_file.empty()) h = std::hash<std::string_view>{}(as_text(board.flash().bytes()));
      if (!w25q_file.empty()) h ^= std::hash<std::string_view>{}(as_text(board.w25q().bytes())) * 31;
      return h;
    };
    std::optional<std::size_t> saved;  // (the images just loaded are saved at the first check)
    auto last_save = std::chrono::steady_clock::now();
    auto keep_files = [&] {
      if (flash_file.empty() && w25q_file.empty()) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_save < std::chrono::milliseconds(250)) return;
      last_save = now;
      if (const std::size_t h = contents(); h != saved) {
        board.save();
        saved = h;
      }
    };
    auto done = [&] {
      keep_files();
      return g_stop != 0 || g_reset != 0 ||
             (!exit_on.empty() && board.uart_output().find(exit_on) != std::string::npos);
    };
    // The reset button (SIGUSR1) when the run ended for it (`for_it`) and no stop came too: the
    // board resets and the run goes on. True if it was pressed.
    auto press_reset = [&](bool for_it) {
      if (!(g_reset && g_stop == 0 && for_it)) return false;
      g_reset = 0;
      std::cerr << "bluepill: reset (SIGUSR1) at " << board.now_ns() / 1000 << " us" << std::endl;
      board.reset_pin();
      return true;
    };
    if (cut_after > 0) {
      for (;;) {
        const std::uint64_t left = cut_after - std::min(cut_after, board.instructions());
        if (left == 0) break;
        r = board.run_instructions(std::min<std::uint64_t>(left, 10'000'000));
        if (press_reset(r.stop == bluepill::Stop::limit)) continue;
        if (r.stop != bluepill::Stop::limit || done()) break;
      }
    } else {
      do {
        r = board.run_until(done, limit_us - board.now_us());
      } while (press_reset(r.stop == bluepill::Stop::condition));
    }
    if (r.stop == bluepill::Stop::error) {
      std::cerr << "bluepill: stopped on error at " << board.now_ns() / 1000 << " us after " << board.instructions()
                << " instructions\n";
      board.power_cut();
      return 1;
    }
    if (r.stop == bluepill::Stop::idle) std::cerr << "bluepill: " << r.message << "\n";
    if (r.stop == bluepill::Stop::breakpoint)
      std::cerr << "bluepill: BKPT 0x" << std::hex << r.bkpt << std::dec << " at " << board.now_ns() / 1000 << " us\n";
    // (Only when the cut came: not when --exit-on or a signal stopped the run first.)
    if ((cut_after > 0 && board.instructions() >= cut_after) ||
        (cut_at_us > 0 && r.stop == bluepill::Stop::limit)) {
      std::cerr << "bluepill: power cut after " << board.instructions() << " instructions at " << board.now_ns() / 1000
                << " us" << std::endl;
    }
    board.power_cut();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bluepill: " << e.what() << "\n";
    return 2;
  }
}

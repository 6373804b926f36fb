// `ota`: the host tool. `ota image` builds and inspects update images, `ota push` updates one
// device over a serial port or TCP, `ota serve` every device that dials in, `ota status` asks a
// device who it is. Exit codes (stable, for scripts):
//   0 upgraded (or already up to date; status: answered)
//                                        2 usage error, or a port/address that cannot be used
//   3 refused by the device
//   4 total checksum mismatch             5 timeout                6 link lost
//   7 device came back without the image  8 protocol error         9 bad input file
//   130 stopped by SIGINT/SIGTERM/SIGHUP or a closed stdout (a running download is ABORTed; the next push resumes it)
#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <sys/stat.h>
#include <unistd.h>

#include "ota/app_info.hpp"
#include "ota/host/image.hpp"
#include "ota/host/push.hpp"
#include "ota/host/serve.hpp"

using namespace ota;
using namespace ota::host;

namespace {

enum Exit : int {
  kOk = 0, kUsage = 2, kRefused = 3, kChecksum = 4, kTimeout = 5, kLinkLost = 6,
  kUpgradeFailed = 7, kProtocol = 8, kBadInput = 9, kInterrupted = 130,
};

int exit_code(Outcome o) {
  switch (o) {
    case Outcome::upgraded:
    case Outcome::up_to_date:
    case Outcome::answered: return kOk;
    case Outcome::refused: return kRefused;
    case Outcome::checksum_failed: return kChecksum;
    case Outcome::timeout: return kTimeout;
    case Outcome::link_lost: return kLinkLost;
    case Outcome::no_link: return kUsage;  // the port or address given cannot be used
    case Outcome::interrupted: return kInterrupted;
    case Outcome::upgrade_failed: return kUpgradeFailed;
    case Outcome::protocol_error:
    case Outcome::pending: return kProtocol;
  }
  return kProtocol;
}

const Layout* layout_named(const std::string& name) {
  if (name == "internal") return &kInternalLayout;
  if (name == "external") return &kExternalLayout;
  return nullptr;
}

// Standard output whose reader went away (`ota serve --json | head -5`): SIGPIPE is ignored, so
// the write fails with EPIPE instead of killing the tool between two frames. While a device is
// talked to, that stops the run as a first Ctrl-C does: a download under way is ABORTed, and the
// tool ends with 130. (After a Ctrl-C that also ended the reader, `| tee`, it is no second one.)
void flush_out() {
  static bool told = false;
  if (std::fflush(stdout) == 0 || errno != EPIPE || told) return;
  told = true;
  std::fprintf(stderr, "ota: standard output was closed: stopping\n");
  stop_as_if_interrupted();
}

// A JSON string's contents: quotes, backslashes and control characters escaped, and bytes that
// are not UTF-8 (a file name is any bytes) as U+FFFD, so that every line parses as JSON.
std::string json_escape(const std::string& s) {
  std::string o;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", c);
      o += u;
      ++i;
      continue;
    }
    // The length of the UTF-8 sequence c starts (0: not a valid start), and its continuation bytes.
    const std::size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (valid && len == 3) {  // no overlong forms, no surrogates
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (valid && len == 4) {  // no overlong forms, nothing above U+10FFFF
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (valid) {
      o.append(s, i, len);
      i += len;
    } else {
      o += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return o;
}

// The link rate the image's app info names, as `ota image` prints it.
std::string link_rate(const Image& img) {
  return img.link_baud() ? std::to_string(img.link_baud()) + " baud" : "any rate";
}

// The layout and version come from the image's OTA_APP_INFO record (ota/app_info.hpp) when it has
// one; -l and -v may repeat them but not contradict them (an image labelled with the wrong layout
// or version installs an application that cannot be updated again, or is pushed forever). An
// image without the record needs both.
int cmd_image_build(const std::string& in, const std::string& out, const std::string& layout_name,
                    std::optional<std::uint32_t> version) {
  // Read before the layout is known: both layouts put the application at the same address.
  static_assert(kInternalLayout.app.base == kExternalLayout.app.base);
  const Layout* l = layout_named(layout_name);
  std::error_code ec;
  if (std::filesystem::equivalent(in, out, ec)) {
    std::fprintf(stderr, "ota image: -o %s is the input file itself: give another output file\n", out.c_str());
    return kUsage;
  }
  std::vector<std::uint8_t> bytes;
  if (Error e = read_firmware(in, kInternalLayout.app.base, bytes)) {
    std::fprintf(stderr, "ota image: %s\n", e.text.c_str());
    return kBadInput;
  }
  if (Error e = check_app_info_records(bytes)) {
    std::fprintf(stderr, "ota image: %s: %s\n", in.c_str(), e.text.c_str());
    return kBadInput;
  }
  AppInfo info;
  const bool has_info = find_app_info(bytes.data(), bytes.size(), info);  // the first record, anywhere
  if (has_info && !find_image_app_info(bytes.data(), bytes.size(), info)) {
    // A factory image (bootloader and application) holds the application's record 8 KB in: say
    // what the file is rather than where the record should be.
    if (Error e = check_image(l ? *l : kExternalLayout, bytes)) {
      std::fprintf(stderr, "ota image: %s: not an application%s: %s\n", in.c_str(), l ? "" : " of either layout",
                   e.text.c_str());
      return kBadInput;
    }
    std::fprintf(stderr,
                 "ota image: %s: its app info lies beyond the first %u bytes, where devices look for it (keep "
                 "the .ota_app_info section right after the vector table)\n",
                 in.c_str(), kAppInfoWindow - static_cast<unsigned>(AppInfo::kSize));
    return kBadInput;
  }
  if (has_info) {
    const Layout* built = layout_by_id(static_cast<LayoutId>(info.layout));
    if (!built) {
      std::fprintf(stderr, "ota image: %s: its app info names an unknown layout (%u)\n", in.c_str(), info.layout);
      return kBadInput;
    }
    if (l && l != built) {
      std::fprintf(stderr, "ota image: %s was built for the %s layout (its app info says so), not %s\n",
                   in.c_str(), built->name, l->name);
      return kBadInput;
    }
    if (version && *version != info.version) {
      std::fprintf(stderr, "ota image: %s is version %u (its app info says so), not %u\n", in.c_str(),
                   info.version, *version);
      return kBadInput;
    }
    l = built;
    version = info.version;
  } else if (Error e = check_image(l ? *l : kExternalLayout, bytes); e && (!l || !version)) {
    // (Not an application at all, a bootloader say: asking for --layout and --version would not
    // help. Without --layout it is checked as for the external layout, the larger one.)
    std::fprintf(stderr, "ota image: %s: %s%s\n", in.c_str(), l ? "" : "not an application of either layout: ",
                 e.text.c_str());
    return kBadInput;
  } else if (!l || !version) {
    std::fprintf(stderr,
                 "ota image: %s carries no app info (OTA_APP_INFO, see docs/client-library.md): give "
                 "--layout and --version\n",
                 in.c_str());
    return kUsage;
  } else {
    std::fprintf(stderr,
                 "ota image: warning: %s carries no app info: nothing shows that it runs the update client; "
                 "a device that takes an image without one can be updated again only with `ota push --recover`\n",
                 in.c_str());
  }
  Image img;
  img.layout = l->id;
  img.version = *version;
  img.load_address = l->app.base;
  img.bytes = std::move(bytes);
  if (Error e = check_image(*l, img.bytes)) {
    std::fprintf(stderr, "ota image: %s: %s\n", in.c_str(), e.text.c_str());
    return kBadInput;
  }
  if (Error e = save_file(out, encode_ota_file(img))) {
    std::fprintf(stderr, "ota image: %s\n", e.text.c_str());
    return kBadInput;
  }
  // The summary goes to stdout, unless the .ota itself went there (`-o /dev/stdout | ...`,
  // `-o /dev/stdout > v2.ota`): then to stderr, or it would be written into the .ota.
  struct stat written, console;
  const bool into_stdout = ::stat(out.c_str(), &written) == 0 && ::fstat(STDOUT_FILENO, &console) == 0 &&
                           written.st_dev == console.st_dev && written.st_ino == console.st_ino;
  std::fprintf(into_stdout ? stderr : stdout, "%s: %s layout, version %u, product %s, %s, %zu bytes, CRC-32 %08X\n",
               out.c_str(), l->name, img.version, img.product() ? hex8(img.product()).c_str() : "none",
               link_rate(img).c_str(), img.bytes.size(), img.crc());
  return kOk;
}

int cmd_image_info(const std::string& file) {
  Image img;
  if (Error e = load_ota_file(file, img)) {
    std::fprintf(stderr, "ota image: %s\n", e.text.c_str());
    return kBadInput;
  }
  const Layout* l = layout_by_id(img.layout);
  std::printf("file:      %s\nlayout:    %s\nversion:   %u\nproduct:   %s\nlink:      %s\n"
              "size:      %zu bytes (limit %u)\ncrc32:     %08X\nload at:   0x%08X\n",
              file.c_str(), l->name, img.version, img.product() ? hex8(img.product()).c_str() : "none",
              link_rate(img).c_str(), img.bytes.size(), l->image_limit, img.crc(), img.load_address);
  if (Error e = check_image(*l, img.bytes)) {
    std::printf("status:    UNUSABLE: %s\n", e.text.c_str());
    return kBadInput;
  }
  std::printf("status:    ok\n");
  return kOk;
}

// A device's result: one JSON line (with the connection it ended on, when serving many), or one
// line of text. `t_ms`: since the command began (a served device's elapsed_ms counts from its
// connection).
void print_result(bool json, std::uint64_t t_ms, const PushReport& r, std::uint32_t image_version, int code,
                  std::uint32_t conn, bool again = false) {
  const std::string uid = r.device ? uid_hex(*r.device) : "";
  const std::string conn_field =
      conn ? ",\"conn\":" + std::to_string(conn) + ",\"again\":" + (again ? "true" : "false") : "";
  if (json) {
    std::printf("{\"t_ms\":%llu,\"event\":\"result\"%s,\"outcome\":\"%s\",\"exit\":%d,\"detail\":\"%s\","
                "\"uid\":\"%s\",\"device_version\":%u,\"image_version\":%u,\"resends\":%u,\"elapsed_ms\":%llu}\n",
                static_cast<unsigned long long>(t_ms), conn_field.c_str(), to_string(r.outcome), code,
                json_escape(r.detail).c_str(), uid.c_str(), r.device ? r.device->app_version : 0, image_version,
                r.resends, static_cast<unsigned long long>(r.elapsed_ms));
  } else {
    std::printf("%s: %s%s%s (%.1f s, %u re-sent)\n", uid.empty() ? "no device" : ("device " + uid).c_str(),
                to_string(r.outcome), r.detail.empty() ? "" : ": ", r.detail.c_str(),
                static_cast<double>(r.elapsed_ms) / 1000.0, r.resends);
  }
  flush_out();
}

// A failure before any session (the image file, the listening address) as the one --json line a
// script reading stdout gets; the text goes to stderr as ever. `outcome`: "bad-input" (exit 9) or
// "no-link" (exit 2).
void fail(bool json, const char* tool, const char* outcome, int code, const std::string& text) {
  std::fprintf(stderr, "ota %s: %s\n", tool, text.c_str());
  if (!json) return;
  std::printf("{\"t_ms\":0,\"event\":\"result\",\"outcome\":\"%s\",\"exit\":%d,\"detail\":\"%s\"}\n", outcome, code,
              json_escape(text).c_str());
  flush_out();
}

struct PushArgs {
  std::string image, port, listen;
  std::uint32_t baud = 115200;
  bool json = false, force = false, recover = false;
  double timeout_s = 30;
  double reply_timeout_s = 1.5;
  unsigned window = 0, packet = kMaxChunk;
};

PushOptions push_options(const PushArgs& a, const Image& img) {
  PushOptions opt;
  opt.baud = a.baud;
  opt.session.force = a.force;
  opt.session.layout = img.layout;
  opt.session.product = img.product();
  opt.session.image_link_baud = img.link_baud();
  if (!a.port.empty()) opt.session.link_baud = a.baud;
  opt.session.recover = a.recover;
  opt.session.window = static_cast<std::uint8_t>(a.window);
  opt.session.packet_size = static_cast<std::uint16_t>(a.packet);
  opt.session.reply_timeout_ms = static_cast<std::uint32_t>(a.reply_timeout_s * 1000);
  opt.session.hello_timeout_ms = static_cast<std::uint32_t>(a.timeout_s * 1000);
  opt.session.reboot_timeout_ms = static_cast<std::uint32_t>(a.timeout_s * 1000);
  opt.connect_timeout_ms = static_cast<std::uint32_t>(a.timeout_s * 1000);
  return opt;
}

std::uint64_t ms_since(std::chrono::steady_clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count());
}

void print_listening(bool json, std::chrono::steady_clock::time_point t_start, std::uint16_t port, const char* whom) {
  if (json)
    std::printf("{\"t_ms\":%llu,\"event\":\"listening\",\"port\":%u}\n",
                static_cast<unsigned long long>(ms_since(t_start)), port);
  else
    std::printf("listening on port %u for %s\n", port, whom);
  flush_out();
}

// One session event as a --json line.
void print_event_json(const Event& e, std::uint64_t ms) {
  std::printf("{\"t_ms\":%llu,\"event\":\"%s\",\"text\":\"%s\"}\n", static_cast<unsigned long long>(ms),
              e.kind.c_str(), json_escape(e.text).c_str());
  flush_out();
}

// An event as the text output shows it, on `out`.
void print_event_text(std::FILE* out, const Event& e, std::uint64_t ms) {
  std::fprintf(out, "[%7.3f s] %-10s %s\n", static_cast<double>(ms) / 1000.0, e.kind.c_str(), e.text.c_str());
}

// One device's session over the serial port or the TCP address of `a` (push and status).
PushReport run_push(const PushArgs& a, const Image& img, const PushOptions& opt, const PushObserver& obs,
                    std::chrono::steady_clock::time_point t_start) {
  if (!a.port.empty()) return push_serial(a.port, img, opt, obs);
  return push_tcp(a.listen, img, opt, obs,
                  [&](std::uint16_t port) { print_listening(a.json, t_start, port, "the device"); });
}

int cmd_push(const PushArgs& a) {
  Image img;
  if (Error e = load_usable_ota_file(a.image, img)) {
    fail(a.json, "push", "bad-input", kBadInput, e.text);
    return kBadInput;
  }
  const PushOptions opt = push_options(a, img);
  const auto t_start = std::chrono::steady_clock::now();
  const bool tty = !a.json && isatty(STDOUT_FILENO);
  bool bar_open = false;
  PushObserver obs;
  obs.event = [&](const Event& e, std::uint64_t ms) {
    if (a.json) return print_event_json(e, ms);
    if (bar_open) std::printf("\n"), bar_open = false;
    print_event_text(stdout, e, ms);
    flush_out();
  };
  std::uint32_t last_decile = 0;
  obs.progress = [&](std::uint32_t acked, std::uint32_t total, std::uint64_t ms) {
    if (total == 0) return;
    const std::uint32_t pct = acked * 100 / total;
    if (a.json) {
      if (pct / 10 != last_decile || acked == total)
        std::printf("{\"t_ms\":%llu,\"event\":\"progress\",\"acked\":%u,\"total\":%u}\n",
                    static_cast<unsigned long long>(ms), acked, total);
    } else if (tty) {
      const int w = 40, fill = static_cast<int>(pct * w / 100);
      std::printf("\r  [%.*s%*s] %3u%%  %u/%u packets", fill, "########################################",
                  w - fill, "", pct, acked, total);
      bar_open = true;
    } else if (pct / 10 != last_decile) {
      std::printf("[%7.3f s] progress   %u%% (%u/%u packets)\n", static_cast<double>(ms) / 1000.0, pct, acked, total);
    }
    last_decile = pct / 10;
    flush_out();
  };

  const PushReport r = run_push(a, img, opt, obs, t_start);
  if (bar_open) std::printf("\n");
  const int code = exit_code(r.outcome);
  if (r.outcome == Outcome::no_link)  // the link named on the command line: a usage error, said as one
    fail(a.json, "push", "no-link", code, r.detail);
  else
    print_result(a.json, r.elapsed_ms, r, img.version, code, 0);
  return code;
}

// Asks the device who it is (HELLO_REQ; with --recover, its bootloader) and prints its HELLO;
// changes nothing on it. Over TCP: the first device that dials in.
int cmd_status(const PushArgs& a) {
  Image img;  // no image: the session only asks
  PushOptions opt = push_options(a, img);
  opt.session.query = true;
  opt.session.layout.reset();
  const auto t_start = std::chrono::steady_clock::now();
  PushObserver obs;
  // The text output is the device's answer alone; what asks the user to act (reset the device so
  // that its bootloader hears RECOVER) goes to stderr, as it happens.
  if (a.json) obs.event = print_event_json;
  else
    obs.event = [](const Event& e, std::uint64_t ms) {
      if (e.kind == "recover") print_event_text(stderr, e, ms);
    };
  const PushReport r = run_push(a, img, opt, obs, t_start);
  const int code = exit_code(r.outcome);
  if (r.outcome == Outcome::no_link) {
    fail(a.json, "status", "no-link", code, r.detail);
    return code;
  }
  if (r.outcome != Outcome::answered || !r.device) {
    print_result(a.json, r.elapsed_ms, r, 0, code, 0);
    return code;
  }
  const Hello& h = *r.device;
  const Layout* l = layout_by_id(h.layout);
  if (a.json) {
    const char* report = h.report == Report::upgrade_ok      ? "upgrade-ok"
                         : h.report == Report::download_ok    ? "download-ok"
                         : h.report == Report::install_failed ? "install-failed"
                                                              : "none";
    const std::string product = h.product == 0 ? "null"
                                : h.product == kProductHeld && h.role == Role::recovery
                                    ? "\"held\""
                                    : "\"" + hex8(h.product) + "\"";
    std::printf("{\"t_ms\":%llu,\"event\":\"status\",\"uid\":\"%s\",\"protocol\":%u,\"role\":\"%s\",\"app_version\":%u,"
                "\"product\":%s,\"layout\":\"%s\",\"staging_capacity\":%u,\"window\":%u,\"max_chunk\":%u,\"report\":\"%s\","
                "\"download\":%s,\"exit\":%d}\n",
                static_cast<unsigned long long>(r.elapsed_ms), uid_hex(h).c_str(), h.protocol,
                h.role == Role::recovery ? "recovery" : "application", h.app_version, product.c_str(),
                l ? l->name : "unknown",
                h.staging_capacity, h.window, h.max_chunk, report,
                h.session_next == kNoSession
                    ? "null"
                    : ("{\"image_crc\":\"" + hex8(h.session_crc) + "\",\"next\":" + std::to_string(h.session_next) + "}").c_str(),
                code);
  } else {
    std::printf("device %s: %s\n", uid_hex(h).c_str(), describe(h).c_str());
  }
  flush_out();
  return code;
}

struct ServeArgs {
  PushArgs push;
  std::uint32_t devices = 0;
  double idle_s = 0;
};

// Every device that dials in is updated; each one's result is printed as it ends, and a summary
// at the end. The exit code: 0 when every device ended upgraded or up to date (and, with
// --devices, that many did); else the code of the first device that did not, 6 for a device whose
// link dropped and that did not come back, 5 when fewer devices came than --devices asked.
int cmd_serve(const ServeArgs& a) {
  Image img;
  if (Error e = load_usable_ota_file(a.push.image, img)) {
    fail(a.push.json, "serve", "bad-input", kBadInput, e.text);
    return kBadInput;
  }
  ServeOptions opt;
  opt.push = push_options(a.push, img);
  opt.push.session.recover_fleet = a.push.recover;
  opt.devices = a.devices;
  opt.idle_ms = static_cast<std::uint32_t>(a.idle_s * 1000);
  const bool json = a.push.json;
  const auto t_start = std::chrono::steady_clock::now();
  ServeObserver obs;
  // The text output leaves out what devices that already ended say when they dial again (a modem
  // redials whenever its connection closes), and the connections themselves: the hello line
  // names the device.
  obs.event = [&](std::uint32_t conn, const std::optional<Hello>& dev, const Event& e, std::uint64_t ms, bool again) {
    const std::string uid = dev ? uid_hex(*dev) : "";
    if (json)
      std::printf("{\"t_ms\":%llu,\"event\":\"%s\",\"conn\":%u,\"uid\":\"%s\",\"again\":%s,\"text\":\"%s\"}\n",
                  static_cast<unsigned long long>(ms), e.kind.c_str(), conn, uid.c_str(), again ? "true" : "false",
                  json_escape(e.text).c_str());
    else if (again || e.kind == "connect" || (e.kind == "disconnect" && !dev))
      return;
    else
      std::printf("[%7.3f s] #%-3u %-10s %s%s%s\n", static_cast<double>(ms) / 1000.0, conn, e.kind.c_str(),
                  uid.empty() ? "" : uid.c_str(), uid.empty() ? "" : ": ", e.text.c_str());
    flush_out();
  };
  std::map<std::uint32_t, std::uint32_t> decile;  // per connection
  obs.progress = [&](std::uint32_t conn, const std::optional<Hello>& dev, std::uint32_t acked, std::uint32_t total,
                     std::uint64_t ms, bool again) {
    if (total == 0 || (!json && again)) return;  // a redial's progress, as its events: --json only
    const std::uint32_t d = acked * 10 / total;
    std::uint32_t& last = decile.try_emplace(conn, 0).first->second;
    if (d == last && acked != total) return;
    last = d;
    const std::string uid = dev ? uid_hex(*dev) : "";
    if (json)
      std::printf("{\"t_ms\":%llu,\"event\":\"progress\",\"conn\":%u,\"uid\":\"%s\",\"again\":%s,\"acked\":%u,"
                  "\"total\":%u}\n",
                  static_cast<unsigned long long>(ms), conn, uid.c_str(), again ? "true" : "false", acked, total);
    else
      std::printf("[%7.3f s] #%-3u progress   %s%s%u%% (%u/%u packets)\n", static_cast<double>(ms) / 1000.0, conn,
                  uid.c_str(), uid.empty() ? "" : ": ", acked * 100 / total, acked, total);
    flush_out();
  };
  // A device that dials again after it ended, and is up to date or ends as it did before (one
  // the image is refused to, say), gets its line in --json only: a modem redials every time its
  // connection closes, and the text output would fill with them.
  std::map<std::string, Outcome> printed;  // by uid: the last outcome the text output showed
  obs.ended = [&](const DeviceReport& d) {
    const std::string uid = d.report.device ? uid_hex(*d.report.device) : "";
    const auto last = printed.find(uid);
    const bool repeat = d.again && (d.report.outcome == Outcome::up_to_date ||
                                    (last != printed.end() && last->second == d.report.outcome));
    if (!json && repeat) return;
    printed[uid] = d.report.outcome;
    print_result(json, ms_since(t_start), d.report, img.version, exit_code(d.report.outcome), d.conn, d.again);
  };
  const ServeReport r = serve_tcp(a.push.listen, img, opt, obs, [&](std::uint16_t port) {
    print_listening(json, t_start, port, "devices");
  });
  if (!r.error.empty()) {
    fail(json, "serve", "no-link", kUsage, r.error);
    return kUsage;
  }
  for (const DeviceReport& d : r.lost) print_result(json, ms_since(t_start), d.report, img.version, kLinkLost, d.conn);
  int code = kOk;
  std::size_t ok = 0, stopped = 0;  // stopped: under way when the serve was stopped, not failed
  for (const DeviceReport& d : r.ended) {
    const int c = exit_code(d.report.outcome);
    if (c == kOk) ++ok;
    else if (d.report.outcome == Outcome::interrupted) ++stopped;
    else if (code == kOk) code = c;
  }
  // A device lost once the count was reached could not have come back (nothing is accepted
  // then): it is reported, but the N devices asked for are the answer.
  const bool count_reached = a.devices != 0 && r.ended.size() >= a.devices;
  if (code == kOk && !r.lost.empty() && !count_reached) code = kLinkLost;
  if (code == kOk && a.devices != 0 && !count_reached) code = kTimeout;
  if (code == kOk && r.ended.empty() && r.lost.empty()) code = kTimeout;  // nothing came: not a success
  if (r.interrupted) code = kInterrupted;
  const std::size_t failed = r.ended.size() - ok - stopped;
  if (json)
    std::printf("{\"t_ms\":%llu,\"event\":\"summary\",\"devices\":%zu,\"ok\":%zu,\"failed\":%zu,\"lost\":%zu,"
                "\"stopped\":%zu,\"exit\":%d,\"elapsed_ms\":%llu}\n",
                static_cast<unsigned long long>(r.elapsed_ms), r.ended.size() + r.lost.size(), ok, failed,
                r.lost.size(), stopped, code, static_cast<unsigned long long>(r.elapsed_ms));
  else
    std::printf("%zu device(s): %zu upgraded or up to date, %zu failed, %zu lost%s%s (%.1f s)\n",
                r.ended.size() + r.lost.size(), ok, failed, r.lost.size(),
                stopped ? (", " + std::to_string(stopped) + " stopped under way").c_str() : "",
                r.interrupted ? "; stopped by the user" : r.idle ? "; no device for --idle" : "",
                static_cast<double>(r.elapsed_ms) / 1000.0);
  return code;
}

// Seconds in [0.1, max]. (CLI::Range lets NaN through: no comparison with it is true.)
CLI::Validator seconds_up_to(double max) {
  return CLI::Validator(
      [max](std::string& in) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(in.c_str(), &end);
        if (end != in.c_str() && *end == '\0' && v >= 0.1 && v <= max) return {};
        char range[64];
        std::snprintf(range, sizeof range, "%g", max);
        return "not a number of seconds from 0.1 to " + std::string(range) + ": " + in;
      },
      "SECONDS");
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // see flush_out(); sockets are written with MSG_NOSIGNAL anyway
  CLI::App app{"ota: build update images and push them to STM32F103 devices"};
  app.require_subcommand(1);

  auto* image = app.add_subcommand("image", "build or inspect an update image");
  image->require_subcommand(1);
  std::string in, out, layout, info_file;
  std::optional<std::uint32_t> version;
  auto* build = image->add_subcommand("build", "make an .ota image from a .bin, .hex or .elf");
  build->add_option("input", in, "application firmware (.bin at the application address, .hex, .elf)")->required();
  build->add_option("-o,--output", out, "the .ota file to write")->required();
  build->add_option("-l,--layout", layout, "flash layout: internal or external (default: from the image's app info, which it must match)")->check(CLI::IsMember({"internal", "external"}));
  build->add_option("-v,--version", version, "application version, a number (default: from the image's app info, which it must match)");
  auto* info = image->add_subcommand("info", "show and check an .ota image");
  info->add_option("image", info_file, "the .ota file")->required();

  PushArgs p;
  auto* push = app.add_subcommand("push", "update one device over a serial port or TCP");
  push->add_option("image", p.image, "the .ota image to install")->required();
  auto* port = push->add_option("-p,--port", p.port, "serial port (e.g. /dev/ttyUSB0, or a pty)");
  auto* listen = push->add_option("--listen", p.listen, "wait for the device to connect over TCP: PORT (every interface, IPv6 and IPv4) or HOST:PORT");
  port->excludes(listen);
  push->add_option("-b,--baud", p.baud, "serial baud rate")
      ->check(CLI::IsMember(std::vector<std::uint32_t>(std::begin(ota::host::kSerialRates),
                                                       std::end(ota::host::kSerialRates))))
      ->capture_default_str();
  push->add_option("-t,--timeout", p.timeout_s, "seconds to wait for the device (hello, reboot, connect)")->check(seconds_up_to(86400.0))->capture_default_str();
  const char* reply_help =
      "seconds without an answer before frames are sent again (at least: longer round trips are measured and "
      "waited for); raise it on a link below ~2 kbit/s, where frames still on their way would go again behind themselves";
  push->add_option("--reply-timeout", p.reply_timeout_s, reply_help)->check(seconds_up_to(600.0))->capture_default_str();
  push->add_option("-w,--window", p.window, "frames in flight (0: as the device allows)")->check(CLI::Range(0u, 255u))->capture_default_str();
  push->add_option("--packet", p.packet, "bytes per data frame (16..256, dividing 1024)")->check(CLI::IsMember({16u, 32u, 64u, 128u, 256u}))->capture_default_str();
  push->add_flag("--json", p.json, "JSON lines instead of text (and of the progress bar on a terminal)");
  push->add_flag("-f,--force", p.force, "push even if the device already runs this version, or a newer one (downgrade)");
  push->add_flag("--recover", p.recover,
                 "recover a device whose application crashes at boot: keep its bootloader in recovery "
                 "mode (reset the device if its application still answers)");

  PushArgs st;
  auto* status = app.add_subcommand("status", "ask a device who it is (version, layout, pending report and download); changes nothing");
  auto* st_port = status->add_option("-p,--port", st.port, "serial port (e.g. /dev/ttyUSB0, or a pty)");
  auto* st_listen = status->add_option("--listen", st.listen, "wait for the device to connect over TCP: PORT (every interface, IPv6 and IPv4) or HOST:PORT");
  st_port->excludes(st_listen);
  status->add_option("-b,--baud", st.baud, "serial baud rate")
      ->check(CLI::IsMember(std::vector<std::uint32_t>(std::begin(ota::host::kSerialRates),
                                                       std::end(ota::host::kSerialRates))))
      ->capture_default_str();
  status->add_option("-t,--timeout", st.timeout_s, "seconds to wait for the device")->check(seconds_up_to(86400.0))->capture_default_str();
  status->add_flag("--json", st.json, "one JSON line per event, the last one \"status\"");
  status->add_flag("--recover", st.recover, "ask the bootloader instead (reset the device if its application answers)");

  ServeArgs sv;
  auto* serve = app.add_subcommand("serve", "update every device that dials in over TCP, many at once");
  serve->add_option("image", sv.push.image, "the .ota image to install")->required();
  serve->add_option("--listen", sv.push.listen, "where devices connect: PORT (every interface, IPv6 and IPv4) or HOST:PORT")->required();
  serve->add_option("-n,--devices", sv.devices, "stop once this many devices have ended (default: no count)");
  serve->add_option("--idle", sv.idle_s, "stop once no device has had an update under way for this many seconds (default: never)")
      ->check(seconds_up_to(2592000.0));  // up to 30 days
  serve->add_option("-t,--timeout", sv.push.timeout_s, "seconds to wait for each device (hello, reboot, a redial after a dropped link)")->check(seconds_up_to(86400.0))->capture_default_str();
  serve->add_option("--reply-timeout", sv.push.reply_timeout_s, reply_help)->check(seconds_up_to(600.0))->capture_default_str();
  serve->add_option("-w,--window", sv.push.window, "frames in flight (0: as the device allows)")->check(CLI::Range(0u, 255u))->capture_default_str();
  serve->add_option("--packet", sv.push.packet, "bytes per data frame (16..256, dividing 1024)")->check(CLI::IsMember({16u, 32u, 64u, 128u, 256u}))->capture_default_str();
  serve->add_flag("--json", sv.push.json, "JSON lines, each with the connection (conn) and the device's uid");
  serve->add_flag("-f,--force", sv.push.force, "install on devices that already run this version or a newer one too (once each)");
  serve->add_flag("--recover", sv.push.recover,
                  "also reach devices whose application crashes at boot: RECOVER until each device answers, so "
                  "that a bootloader that hears it takes the image (its own product's only); devices whose "
                  "application answers are updated by it");

  if (argc > 1 && argv[1][0] != '-' && std::string_view(argv[1]) != "image" && std::string_view(argv[1]) != "push" &&
      std::string_view(argv[1]) != "serve" && std::string_view(argv[1]) != "status") {
    std::fprintf(stderr, "ota: '%s' is not a command (commands: image build, image info, push, serve, status; see --help)\n", argv[1]);
    return kUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  if (*build) return cmd_image_build(in, out, layout, version);
  if (*info) return cmd_image_info(info_file);
  if (*push) {
    if (p.port.empty() && p.listen.empty()) {
      std::fprintf(stderr, "ota push: give --port or --listen\n");
      return kUsage;
    }
    return cmd_push(p);
  }
  if (*serve) return cmd_serve(sv);
  if (*status) {
    if (st.port.empty() && st.listen.empty()) {
      std::fprintf(stderr, "ota status: give --port or --listen\n");
      return kUsage;
    }
    return cmd_status(st);
  }
  return kUsage;
}

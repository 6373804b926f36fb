// The whole system as a user runs it: the real firmware on the emulated board (`bluepill`), the
// `ota` tool pushing over a real pty or a real TCP connection the board dials, and between them,
// where a test needs it, a relay that damages or cuts the link.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "e2e/board_wire.hpp"
#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/frame.hpp"
#include "e2e/relay.hpp"
#include "ota/host/image.hpp"
#include "ota/host/push.hpp"
#include "process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::Process;

namespace {

std::string json_field(const std::string& out, const std::string& key) {
  const auto at = out.rfind("\"" + key + "\":");
  if (at == std::string::npos) return "";
  auto v = out.substr(at + key.size() + 3);
  if (!v.empty() && v[0] == '"') return v.substr(1, v.find('"', 1) - 1);
  return v.substr(0, v.find_first_of(",}"));
}

class E2eTools : public ::testing::TestWithParam<std::string> {
 protected:
  e2e::Firmware fw{GetParam()};
  fs::path dir;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("ota_e2e_" + std::to_string(::getpid()) + "_" +
                                       std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  // The update image, built by the tool as a user would.
  std::string image(std::uint32_t version) {
    const std::string out = (dir / ("v" + std::to_string(version) + ".ota")).string();
    Process p({OTA_TOOL, "image", "build", fw.app_elf(version), "-o", out, "-v", std::to_string(version), "-l", GetParam()});
    EXPECT_EQ(p.wait(30s), 0) << p.output();
    return out;
  }
  std::vector<std::string> board_args() {
    return {BLUEPILL, "-q", "--image", fw.bootloader_elf(), "--image", fw.app_elf(1)};
  }
  // `ota push --listen` on a free port; returns the port.
  std::uint16_t listening(Process& push) {
    const auto line = push.wait_for("{\"t_ms\":", 20s);
    EXPECT_TRUE(line) << push.output();
    return line ? static_cast<std::uint16_t>(std::stoi(json_field(*line, "port"))) : 0;
  }
  std::unique_ptr<Process> push_tcp(const std::string& img, std::uint16_t& port) {
    auto p = std::make_unique<Process>(std::vector<std::string>{
        OTA_TOOL, "push", img, "--listen", "127.0.0.1:0", "--json", "--timeout", "60"});
    port = listening(*p);
    return p;
  }
  // Pushes `img` to the board over a pty (the board is started here); returns the tool's output.
  int push_pty(Process& board, const std::string& img, std::string& out) {
    Process push({OTA_TOOL, "push", img, "--port", pty_of(board), "--json", "--timeout", "60"});
    const int rc = push.wait(120s);
    out = push.output();
    return rc;
  }
  // The largest image of the layout as an .ota file: a download long enough to stop midway.
  std::string largest_image() {
    const std::string big = (dir / "big.ota").string();
    EXPECT_FALSE(ota::host::save_file(big, ota::host::encode_ota_file({fw.layout->id, 2, fw.layout->app.base, fw.largest_app(2, 3)})));
    return big;
  }
  // Pushes `img` over the board's pty and stops the push with `sig` once packets are acknowledged:
  // the tool ABORTs the download and exits 130, "interrupted".
  void stop_push_midway(Process& board, const std::string& img, int sig) {
    Process push({OTA_TOOL, "push", img, "--port", pty_of(board), "--json", "--timeout", "60"});
    ASSERT_TRUE(downloading(push)) << push.output();
    push.signal(sig);
    ASSERT_EQ(push.wait(20s), 130) << push.output();
    EXPECT_EQ(json_field(push.output(), "outcome"), "interrupted") << push.output();
  }
  // Reads the push's --json lines until one reports packets acknowledged; false if none comes.
  static bool downloading(Process& push) {
    while (const auto l = push.wait_for("{\"t_ms\":", 30s))
      if (l->find("\"event\":\"progress\"") != std::string::npos && json_field(*l, "acked") != "0") return true;
    return false;
  }
  // Presses the board's reset button (SIGUSR1) until a line of `tool` contains `heard` (and
  // `also`), reading its lines for 1.5 s before each press: a RECOVER stream reaches a
  // bootloader in the 50 ms window after a reset, but a board starved of CPU (a loaded machine)
  // can miss one window, and a running application gives no second chance by itself.
  static bool reset_until(Process& board, Process& tool, const std::string& heard, const std::string& also = "") {
    for (int press = 0; press < 6; ++press) {
      const auto until = std::chrono::steady_clock::now() + 1500ms;
      while (std::chrono::steady_clock::now() < until)
        if (const auto l = tool.read_line(200ms);
            l && l->find(heard) != std::string::npos && l->find(also) != std::string::npos)
          return true;
      board.signal(SIGUSR1);
    }
    return false;
  }
  std::string pty_of(Process& board) {
    if (pty_.empty()) {
      const auto line = board.wait_for("bluepill: USART1 on ", 20s);
      EXPECT_TRUE(line) << board.output();
      if (line) pty_ = line->substr(line->rfind(' ') + 1);
    }
    return pty_;
  }
  std::string pty_;
};

// Also the board's --uid and the fields of --json's result line.
TEST_P(E2eTools, UpdateOverPty) {
  auto args = board_args();
  args.insert(args.end(), {"--uid", "0x11223344,0x55667788,0x99aabbcc", "--pty"});
  Process board(args);
  std::string out;
  ASSERT_EQ(push_pty(board, image(2), out), 0) << out;
  const std::string result = out.substr(out.rfind("\"event\":\"result\""));
  EXPECT_EQ(json_field(result, "outcome"), "upgraded") << out;
  EXPECT_EQ(json_field(result, "exit"), "0") << out;
  EXPECT_EQ(json_field(result, "device_version"), "2") << out;
  EXPECT_EQ(json_field(result, "image_version"), "2") << out;
  EXPECT_EQ(json_field(result, "uid"), "4433221188776655ccbbaa99")
      << "the UID words as the chip stores them, lowest address first: " << out;
  EXPECT_EQ(json_field(result, "resends"), "0") << out;
  EXPECT_GT(std::stoul(json_field(result, "elapsed_ms")), 0u) << out;
  EXPECT_NE(out.find("reports upgrade OK"), std::string::npos) << out;
}

TEST_P(E2eTools, UpdateOverTcpDialledByTheBoard) {
  std::uint16_t port = 0;
  auto push = push_tcp(image(2), port);
  auto args = board_args();
  args.insert(args.end(), {"--connect", "127.0.0.1:" + std::to_string(port)});
  Process board(args);
  ASSERT_EQ(push->wait(120s), 0) << push->output();
  EXPECT_EQ(json_field(push->output(), "outcome"), "upgraded");
  EXPECT_EQ(json_field(push->output(), "device_version"), "2");
}

// Ctrl-C in the middle of a download: the tool ABORTs it, says so and exits 130; the board goes on
// running v1, and the next push resumes where the first one stopped.
TEST_P(E2eTools, InterruptedPushAbortsAndTheNextOneResumes) {
  const std::string big = largest_image();
  auto args = board_args();
  args.insert(args.end(), {"--pty", "--realtime"});
  Process board(args);
  ASSERT_NO_FATAL_FAILURE(stop_push_midway(board, big, SIGINT));
  std::string out;
  ASSERT_EQ(push_pty(board, big, out), 0) << out;
  EXPECT_NE(out.find("\"event\":\"resume\""), std::string::npos) << out;
  // The resume is told before the progress it makes.
  EXPECT_LT(out.find("\"event\":\"resume\""), out.find("\"event\":\"progress\"")) << out;
  EXPECT_EQ(json_field(out, "outcome"), "upgraded") << out;
}

// `ota status` says who runs and what is pending, and changes nothing: the download it saw
// under way is resumed by the next push.
TEST_P(E2eTools, StatusTellsWhatRunsAndWhatIsPendingAndChangesNothing) {
  const std::string big = largest_image();
  auto args = board_args();
  args.insert(args.end(), {"--pty", "--realtime"});
  Process board(args);
  auto status = [&] {
    Process st({OTA_TOOL, "status", "--port", pty_of(board), "--json", "--timeout", "20"});
    EXPECT_EQ(st.wait(60s), 0) << st.output();
    const std::string out = st.output();
    const auto at = out.rfind("\"event\":\"status\"");
    return at == std::string::npos ? std::string() : out.substr(at);
  };
  std::string s = status();
  EXPECT_EQ(json_field(s, "role"), "application") << s;
  EXPECT_EQ(json_field(s, "app_version"), "1") << s;
  EXPECT_EQ(json_field(s, "layout"), GetParam()) << s;
  EXPECT_EQ(json_field(s, "protocol"), "2") << s;
  EXPECT_EQ(json_field(s, "product"), ota::host::hex8(ota::AppInfo::product_id("ota-example-app"))) << s;
  EXPECT_EQ(json_field(s, "report"), "none") << s;
  EXPECT_NE(s.find("\"download\":null"), std::string::npos) << s;
  ASSERT_NO_FATAL_FAILURE(stop_push_midway(board, big, SIGINT));
  s = status();
  ota::host::Image big_img;
  ASSERT_FALSE(ota::host::load_ota_file(big, big_img));
  // Its CRC-32 as `ota image info` writes it.
  EXPECT_NE(s.find("\"download\":{\"image_crc\":\"" + ota::host::hex8(big_img.crc()) + "\""), std::string::npos) << s;
  EXPECT_NE(json_field(s, "next"), "0") << s;
  std::string out;
  ASSERT_EQ(push_pty(board, big, out), 0) << out;
  EXPECT_NE(out.find("\"event\":\"resume\""), std::string::npos) << out;
  s = status();
  EXPECT_EQ(json_field(s, "app_version"), "2") << s;
  // With --recover (and the reset button): the bootloader, which names the product of the
  // application it holds.
  Process held({OTA_TOOL, "status", "--port", pty_of(board), "--json", "--recover", "--timeout", "30"});
  EXPECT_TRUE(reset_until(board, held, "\"event\":\"status\"")) << held.output();
  ASSERT_EQ(held.wait(60s), 0) << held.output();
  s = held.output().substr(held.output().rfind("\"event\":\"status\""));
  EXPECT_EQ(json_field(s, "role"), "recovery") << s;
  EXPECT_EQ(json_field(s, "product"), ota::host::hex8(ota::AppInfo::product_id("ota-example-app"))) << s;
}

// `bluepill --flash` keeps the flash in its file as the board runs, not only at a clean exit: a
// board killed (kill -9, the power cut a user reaches for; a CI timeout) after an update boots
// the new application from its file, not the old one with the old journal.
TEST_P(E2eTools, AKilledBoardKeepsWhatItWroteInItsFlashFiles) {
  const std::string flash = (dir / "board.bin").string(), w25q = (dir / "board.w25q").string();
  auto args = board_args();
  args.insert(args.end(), {"--flash", flash, "--w25q", w25q, "--pty"});
  auto board = std::make_unique<Process>(args);
  std::string out;
  ASSERT_EQ(push_pty(*board, image(2), out), 0) << out;
  std::this_thread::sleep_for(1s);  // a quarter of a second at most: what a kill may lose
  board->signal(SIGKILL);
  board->wait(10s);
  board = std::make_unique<Process>(std::vector<std::string>{BLUEPILL, "-q", "--flash", flash, "--w25q", w25q, "--pty"});
  pty_.clear();
  Process st({OTA_TOOL, "status", "--port", pty_of(*board), "--json", "--timeout", "20"});
  ASSERT_EQ(st.wait(60s), 0) << st.output();
  const std::string s = st.output().substr(st.output().rfind("\"event\":\"status\""));
  EXPECT_EQ(json_field(s, "app_version"), "2") << "the board lost the update it had installed: " << s;
  EXPECT_EQ(json_field(s, "report"), "none") << s;
}

// Ctrl-C mid-download: the ABORT goes out behind the DATA frames already sent. The example
// application (20-25 packets, fewer than the board's window of 23 plus what its ring holds) is
// then all on its way, and the board completes the download before the ABORT reaches it: the
// tool must not say that it stopped the update. The largest image is stopped for real, and the
// tool says where the next push resumes. Either way the board is where the tool says.
TEST_P(E2eTools, CtrlCMidDownloadSaysWhatTheBoardDoesWithIt) {
  for (const bool largest : {false, true}) {
    SCOPED_TRACE(largest ? "largest image" : "example application");
    auto args = board_args();
    args.insert(args.end(), {"--pty", "--realtime"});
    Process board(args);
    pty_.clear();
    Process push({OTA_TOOL, "push", largest ? largest_image() : image(2), "--port", pty_of(board), "--json",
                  "--timeout", "60"});
    ASSERT_TRUE(downloading(push)) << push.output();
    push.signal(SIGINT);
    ASSERT_EQ(push.wait(20s), 130) << push.output();
    const std::string detail = json_field(push.output(), "detail");
    const bool too_late = detail.find("too late: the whole image had reached the device") != std::string::npos;
    const bool resumes = detail.find("the next push resumes there") != std::string::npos;
    EXPECT_TRUE(too_late != resumes) << push.output();
    if (!largest) {
      EXPECT_TRUE(too_late) << push.output();  // all of it was on its way
    }
    std::this_thread::sleep_for(3s);  // the install, if any
    Process st({OTA_TOOL, "status", "--port", pty_of(board), "--json", "--timeout", "20"});
    ASSERT_EQ(st.wait(60s), 0) << st.output();
    const std::string s = st.output().substr(st.output().rfind("\"event\":\"status\""));
    EXPECT_EQ(json_field(s, "app_version"), too_late ? "2" : "1") << detail << "\n" << s;
    if (resumes) {
      EXPECT_NE(s.find("\"download\":{\"image_crc\":"), std::string::npos) << s;
    }
  }
}

// SIGTERM (a service manager stopping the push) is Ctrl-C: the download is ABORTed, exit 130.
// The board then goes away mid-download (its process dies, the pty with it): link lost, exit 6.
TEST_P(E2eTools, SigtermStopsAPushAndALostBoardEndsOneWithExitCode6) {
  const std::string big = largest_image();
  auto args = board_args();
  args.insert(args.end(), {"--pty", "--realtime"});
  Process board(args);
  ASSERT_NO_FATAL_FAILURE(stop_push_midway(board, big, SIGTERM));

  Process again({OTA_TOOL, "push", big, "--port", pty_of(board), "--json", "--timeout", "60"});
  ASSERT_TRUE(downloading(again)) << again.output();
  board.kill();
  ASSERT_EQ(again.wait(30s), 6) << again.output();
  EXPECT_EQ(json_field(again.output(), "outcome"), "link-lost") << again.output();
}

// A board whose application hangs at once (loaded from a .bin at the application address, as a
// botched manual flashing would): `ota push --recover`, and the reset button pressed (SIGUSR1),
// bring it back with the good image.
TEST_P(E2eTools, RecoverBringsBackABoardWhoseApplicationHangs) {
  const fs::path hang = dir / "hang.bin";
  ASSERT_FALSE(ota::host::save_file(hang, fw.hanging_app(1)));
  Process board({BLUEPILL, "-q", "--image", fw.bootloader_elf(), "--bin-base", "0x08002000", "--image",
                 hang.string(), "--pty", "--realtime"});
  Process push({OTA_TOOL, "push", image(2), "--port", pty_of(board), "--json", "--recover", "--timeout", "60"});
  // RECOVER goes out every 10 ms. The board may have heard it already in the listening window
  // of its power-on; if nothing answers, the button is pressed.
  EXPECT_TRUE(reset_until(board, push, "\"event\":\"hello\"")) << push.output();
  ASSERT_EQ(push.wait(60s), 0) << push.output();
  EXPECT_EQ(json_field(push.output(), "outcome"), "upgraded") << push.output();
  EXPECT_NE(push.output().find("bootloader (recovery mode)"), std::string::npos) << push.output();
}

// A board whose application faults at once resets over and over (--lenient: a fault resets the
// board instead of stopping it). `ota status` without --recover gets no HELLO, and says that the
// bootloader keeps starting and that --recover reaches it; with --recover it answers.
TEST_P(E2eTools, StatusOnABoardThatResetsOverAndOverNamesRecover) {
  const fs::path crash = dir / "crash.bin";
  ASSERT_FALSE(ota::host::save_file(crash, fw.crashing_app(2)));
  Process board({BLUEPILL, "-q", "--image", fw.bootloader_elf(), "--bin-base", "0x08002000", "--image",
                 crash.string(), "--pty", "--realtime", "--lenient"});
  Process st({OTA_TOOL, "status", "--port", pty_of(board), "--timeout", "3"});
  ASSERT_EQ(st.wait(30s), 5) << st.output();
  EXPECT_NE(st.output().find("times and no frame came: it resets over and over"), std::string::npos) << st.output();
  EXPECT_NE(st.output().find("`--recover` reaches its bootloader"), std::string::npos) << st.output();
  Process held({OTA_TOOL, "status", "--port", pty_of(board), "--recover", "--timeout", "30"});
  ASSERT_EQ(held.wait(60s), 0) << held.output();
  EXPECT_NE(held.output().find("bootloader in recovery mode"), std::string::npos) << held.output();
}

// A push at another rate than the firmware's, on a board run --lenient (which goes on past the
// mismatch, as a real board does): every byte is garbled both ways, no HELLO comes, and the
// tool says the bytes it got were no frame nor text, a link at another baud rate.
TEST_P(E2eTools, AnotherRateThanTheFirmwaresIsNamedAsSuch) {
  auto args = board_args();
  args.insert(args.end(), {"--pty", "--realtime", "--lenient", "--baud", "9600"});
  Process board(args);
  Process st({OTA_TOOL, "status", "--port", pty_of(board), "--baud", "9600", "--timeout", "3"});
  ASSERT_EQ(st.wait(30s), 5) << st.output();
  EXPECT_NE(st.output().find("that made neither a frame nor text: a link at another baud rate"), std::string::npos)
      << st.output();
}

// v2 of the example application relabelled as another product (its app info rewritten): `ota
// push` does not offer it to the board's application, which names its product in HELLO, and
// the application refuses it too when a server sends it all the same; v1 keeps running.
TEST_P(E2eTools, AnImageOfAnotherProductIsRefusedAndV1KeepsRunning) {
  const auto own = fw.app_bin(2), bytes = fw.relabelled_app(2, "another-product");
  ota::AppInfo info, other;
  ASSERT_TRUE(ota::find_app_info(own.data(), own.size(), info));
  ASSERT_TRUE(ota::find_app_info(bytes.data(), bytes.size(), other));
  const std::string file = (dir / "other.ota").string();
  ASSERT_FALSE(ota::host::save_file(file, ota::host::encode_ota_file({fw.layout->id, 2, fw.layout->app.base, bytes})));
  auto args = board_args();
  args.push_back("--pty");
  Process board(args);
  std::string out;
  EXPECT_EQ(push_pty(board, file, out), 3) << out;
  EXPECT_NE(json_field(out, "detail").find("the image is for product " + ota::host::hex8(other.product) +
                                           ", the device runs product " + ota::host::hex8(info.product)),
            std::string::npos) << out;
  ota::host::Image img;
  ASSERT_FALSE(ota::host::load_ota_file(file, img));
  const auto r = ota::host::push_serial(pty_of(board), img, {}, {});  // no product check here
  EXPECT_EQ(r.outcome, ota::host::Outcome::refused) << r.detail;
  EXPECT_NE(r.detail.find("not a valid application"), std::string::npos) << r.detail;
  EXPECT_EQ(push_pty(board, image(1), out), 0) << out;
  EXPECT_EQ(json_field(out, "outcome"), "up-to-date") << out;
}

TEST_P(E2eTools, ImageOneByteTooLargeIsRefusedAndV1KeepsRunning) {
  auto bytes = fw.app_bin(2);
  bytes.resize(fw.layout->image_limit + 1, 0xA5);  // past what `ota image` would allow
  const std::string big = (dir / "big.ota").string();
  ASSERT_FALSE(ota::host::save_file(big, ota::host::encode_ota_file({fw.layout->id, 2, fw.layout->app.base, bytes})));
  auto args = board_args();
  args.push_back("--pty");
  Process board(args);
  std::string out;
  // `ota push` does not send it (exit 9, the file is unusable) ...
  EXPECT_EQ(push_pty(board, big, out), 9) << out;
  EXPECT_NE(out.find("unusable: image of"), std::string::npos) << out;
  // ... and the device refuses it when a server sends it all the same (push_serial does not
  // check the image).
  ota::host::Image img;
  ASSERT_FALSE(ota::host::load_ota_file(big, img));
  const auto r = ota::host::push_serial(pty_of(board), img, {}, {});
  EXPECT_EQ(r.outcome, ota::host::Outcome::refused) << r.detail;
  EXPECT_NE(r.detail.find("too large"), std::string::npos) << r.detail;
  // Still v1: offering v1 finds it up to date.
  EXPECT_EQ(push_pty(board, image(1), out), 0) << out;
  EXPECT_EQ(json_field(out, "outcome"), "up-to-date") << out;
}

TEST_P(E2eTools, LinkThatCorruptsDropsAndDuplicatesStillEndsInV2) {
  std::mt19937 rng(GetParam() == "internal" ? 5 : 6);
  std::size_t damaged = 0;
  // About one byte in 400, in both directions, is dropped, flipped or duplicated (the board sends
  // a byte per TCP segment, the server whole frames: the rate is per byte, not per burst).
  auto damage = [&](std::vector<std::uint8_t>& b, bool) {
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (rng() % 400 != 0) continue;
      switch (rng() % 3) {
        case 0: b.erase(b.begin() + static_cast<std::ptrdiff_t>(i)); break;
        case 1: b[i] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
        default: b.insert(b.begin() + static_cast<std::ptrdiff_t>(i), b[i]), ++i; break;
      }
      ++damaged;
    }
  };
  std::uint16_t port = 0;
  auto push = push_tcp(image(2), port);
  e2e::Relay relay(port, damage);
  auto args = board_args();
  args.insert(args.end(), {"--connect", "127.0.0.1:" + std::to_string(relay.port())});
  Process board(args);
  ASSERT_EQ(push->wait(180s), 0) << push->output();
  EXPECT_EQ(json_field(push->output(), "outcome"), "upgraded");
  EXPECT_GT(damaged, 0u);
  EXPECT_NE(json_field(push->output(), "resends"), "0") << "the damage cost re-sends";
}

TEST_P(E2eTools, LinkCutMidDownloadResumesAndEndsInV2) {
  std::uint16_t port = 0;
  auto push = push_tcp(image(2), port);
  e2e::Relay relay(port);
  // Cut once the first staging unit is complete (1 KB page / 4 KB sector) and more is under way.
  const std::size_t size = fw.app_bin(2).size(), unit = fw.layout->staging_unit;
  ASSERT_GT(size, unit + 512) << "the image must span more than one staging unit";
  relay.cut_after(unit + (size - unit) / 2);
  auto args = board_args();
  args.insert(args.end(), {"--connect", "127.0.0.1:" + std::to_string(relay.port())});
  Process board(args);
  ASSERT_EQ(push->wait(180s), 0) << push->output();
  EXPECT_EQ(relay.cuts(), 1u);
  EXPECT_GE(relay.connections(), 2u) << "the board dialled again";
  EXPECT_EQ(json_field(push->output(), "outcome"), "upgraded");
  EXPECT_NE(push->output().find("\"event\":\"resume\""), std::string::npos) << push->output();
}

// `ota serve`: two boards dial in at once, one of them through a link that is cut midway. Each is
// updated on its own connection; the cut one dials again and resumes where it stopped.
TEST_P(E2eTools, ServeUpdatesTwoBoardsAtOnceOneThroughACutLink) {
  Process serve({OTA_TOOL, "serve", image(2), "--listen", "127.0.0.1:0", "--devices", "2", "--json", "--timeout", "60"});
  const std::uint16_t port = listening(serve);
  e2e::Relay relay(port);
  const std::size_t size = fw.app_bin(2).size(), unit = fw.layout->staging_unit;
  relay.cut_after(unit + (size - unit) / 2);
  auto direct = board_args();
  direct.insert(direct.end(), {"--uid", "1,2,3", "--connect", "127.0.0.1:" + std::to_string(port)});
  auto relayed = board_args();
  relayed.insert(relayed.end(), {"--uid", "4,5,6", "--connect", "127.0.0.1:" + std::to_string(relay.port())});
  Process a(direct), b(relayed);
  ASSERT_EQ(serve.wait(180s), 0) << serve.output();
  EXPECT_EQ(relay.cuts(), 1u);
  const std::string out = serve.output();
  std::size_t upgraded = 0;
  for (auto at = out.find("\"event\":\"result\""); at != std::string::npos; at = out.find("\"event\":\"result\"", at + 1))
    upgraded += json_field(out.substr(at, out.find('\n', at) - at), "outcome") == "upgraded";
  EXPECT_EQ(upgraded, 2u) << out;
  EXPECT_NE(out.find("\"uid\":\"010000000200000003000000\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"uid\":\"040000000500000006000000\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"event\":\"resume\""), std::string::npos) << out;
  const std::string summary = out.substr(out.rfind("\"event\":\"summary\""));
  EXPECT_EQ(json_field(summary, "ok"), "2") << out;
  EXPECT_EQ(json_field(summary, "lost"), "0") << out;
}

// A board's modem dials again whenever its connection closes. `ota serve --force` forces each
// device once: the redials after its upgrade find it up to date (one download, not one per
// redial), and they are no work for --idle, which ends the serve.
TEST_P(E2eTools, ServeForcesEachDeviceOnceAndIdleIgnoresRedials) {
  // --idle 6: room for the board to boot and dial in on a loaded machine (the wait counts from the start).
  Process serve({OTA_TOOL, "serve", image(1), "--listen", "127.0.0.1:0", "--force", "--idle", "6", "--json"});
  const std::uint16_t port = listening(serve);
  auto args = board_args();
  args.insert(args.end(), {"--connect", "127.0.0.1:" + std::to_string(port)});
  Process board(args);
  ASSERT_EQ(serve.wait(120s), 0) << serve.output();
  const std::string out = serve.output();
  auto count = [&](const std::string& what) { return test::count_in(out, what); };
  EXPECT_EQ(count("\"event\":\"downloaded\""), 1u) << out;
  EXPECT_EQ(count("\"again\":false,\"outcome\":\"upgraded\""), 1u) << out;
  EXPECT_GE(count("\"again\":true,\"outcome\":\"up-to-date\""), 1u) << "the board did not dial again: " << out;
  EXPECT_EQ(count("\"event\":\"result\""), count("\"outcome\":\"upgraded\"") + count("\"outcome\":\"up-to-date\"")) << out;
  const std::string summary = out.substr(out.rfind("\"event\":\"summary\""));
  EXPECT_EQ(json_field(summary, "devices"), "1") << out;
  EXPECT_EQ(json_field(summary, "ok"), "1") << out;
}

// A board the image is refused to (it is built for the other layout) redials whenever its
// connection closes: the text output says so once, not once per redial, and --idle ends the serve.
TEST_P(E2eTools, ServeTextShowsARefusedDeviceOnceAcrossItsRedials) {
  const std::string other_layout = GetParam() == "internal" ? "external" : "internal";
  const e2e::Firmware other(other_layout);
  const std::string img = (dir / "other.ota").string();
  Process build({OTA_TOOL, "image", "build", other.app_elf(2), "-o", img});
  ASSERT_EQ(build.wait(30s), 0) << build.output();
  Process serve({OTA_TOOL, "serve", img, "--listen", "127.0.0.1:0", "--idle", "4"});
  const auto line = serve.wait_for("listening on port ", 20s);  // "listening on port N for devices"
  ASSERT_TRUE(line) << serve.output();
  e2e::Relay relay(static_cast<std::uint16_t>(std::stoi(line->substr(line->find("port ") + 5))));
  auto args = board_args();
  args.insert(args.end(), {"--connect", "127.0.0.1:" + std::to_string(relay.port())});
  Process board(args);
  EXPECT_EQ(serve.wait(60s), 3) << serve.output();
  EXPECT_GE(relay.connections(), 3u) << "the board did not dial again";
  EXPECT_EQ(test::count_in(serve.output(), "\ndevice "), 1u) << "result lines: " << serve.output();
  EXPECT_NE(serve.output().find(": refused: image is built for the " + other_layout), std::string::npos)
      << serve.output();
}

// `ota serve --recover`: a fleet where one board's application hangs at boot (its update
// client never answers) and another's runs. The hanging one's bootloader hears RECOVER (in the
// listening window of its power-on, or else of a press of its reset button) and takes the image;
// the running one, whose modem passes nothing to it for its first 1.5 s (its bootloader's window
// is long over), is updated by its application, without a reset. Both end upgraded.
TEST_P(E2eTools, ServeRecoverBringsBackAHangingBoardAndUpdatesARunningOne) {
  const fs::path hang = dir / "hang.bin";
  ASSERT_FALSE(ota::host::save_file(hang, fw.hanging_app(1)));
  Process serve({OTA_TOOL, "serve", image(2), "--listen", "127.0.0.1:0", "--recover", "--devices", "2", "--json",
                 "--timeout", "60"});
  const std::uint16_t port = listening(serve);
  const std::string at = "127.0.0.1:" + std::to_string(port);
  const auto t0 = std::chrono::steady_clock::now();
  e2e::Relay late_modem(port, [t0](std::vector<std::uint8_t>& bytes, bool to_device) {
    if (to_device && std::chrono::steady_clock::now() - t0 < 1500ms) bytes.clear();
  });
  auto healthy = board_args();
  healthy.insert(healthy.end(), {"--uid", "1,2,3", "--realtime", "--connect", "127.0.0.1:" + std::to_string(late_modem.port())});
  Process running(healthy);
  Process hanging({BLUEPILL, "-q", "--image", fw.bootloader_elf(), "--bin-base", "0x08002000", "--image",
                   hang.string(), "--uid", "4,5,6", "--realtime", "--connect", at});
  const std::string hanging_uid = "\"uid\":\"040000000500000006000000\"";
  EXPECT_TRUE(reset_until(hanging, serve, "\"event\":\"hello\"", hanging_uid)) << serve.output();
  ASSERT_EQ(serve.wait(120s), 0) << serve.output();
  const std::string out = serve.output();
  const std::string healthy_uid = "\"uid\":\"010000000200000003000000\"";
  std::size_t upgraded = 0, bootloader_hellos = 0, application_hellos = 0, recover_waits = 0;
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) {
    const bool hello = l.find("\"event\":\"hello\"") != std::string::npos;
    upgraded += l.find("\"event\":\"result\"") != std::string::npos && json_field(l, "outcome") == "upgraded";
    bootloader_hellos += hello && l.find("\"text\":\"bootloader (recovery mode)") != std::string::npos &&
                         l.find(hanging_uid) != std::string::npos;
    application_hellos += hello && l.find("\"text\":\"application v1\"") != std::string::npos &&
                          l.find(healthy_uid) != std::string::npos;
    recover_waits += l.find("\"event\":\"recover\"") != std::string::npos;
  }
  EXPECT_EQ(upgraded, 2u) << out;
  EXPECT_GE(bootloader_hellos, 1u) << "the hanging board was not reached through its bootloader: " << out;
  EXPECT_EQ(application_hellos, 1u) << "the running board was not updated by its application: " << out;
  EXPECT_EQ(recover_waits, 0u) << "a running application was left waiting for a reset: " << out;
  const std::string summary = out.substr(out.rfind("\"event\":\"summary\""));
  EXPECT_EQ(json_field(summary, "ok"), "2") << out;
}

// An image whose application hangs, served with --recover: the board takes it, does not come
// back (its watchdog, or the reset button, brings its bootloader up again, which answers
// RECOVER), and the serve does not send it the same image a second time: upgrade failed.
TEST_P(E2eTools, ServeRecoverDoesNotSendABoardTheImageThatHangsItTwice) {
  const std::string bad = (dir / "hang.ota").string();
  ASSERT_FALSE(ota::host::save_file(bad, ota::host::encode_ota_file({fw.layout->id, 2, fw.layout->app.base, fw.hanging_app(2)})));
  Process serve({OTA_TOOL, "serve", bad, "--listen", "127.0.0.1:0", "--recover", "--idle", "8", "--json", "--timeout", "3"});
  auto args = board_args();
  args.insert(args.end(), {"--realtime", "--connect", "127.0.0.1:" + std::to_string(listening(serve))});
  Process board(args);
  bool ended = false;  // the first result: the board did not come back after its download
  while (!ended)
    if (const auto l = serve.read_line(60s)) ended = l->find("\"event\":\"result\"") != std::string::npos;
    else break;
  ASSERT_TRUE(ended) << serve.output();
  EXPECT_TRUE(reset_until(board, serve, "the image is not sent twice")) << serve.output();  // sooner than its watchdog
  EXPECT_EQ(serve.wait(120s), 7) << serve.output();
  const std::string out = serve.output();
  EXPECT_EQ(test::count_in(out, "\"event\":\"downloaded\""), 1u) << out;
  EXPECT_NE(out.find("the image is not sent twice"), std::string::npos) << out;
}

TEST_P(E2eTools, WrongTotalChecksumFailsAndV1KeepsRunning) {
  // One DATA frame changed in flight with a valid frame CRC: only the total CRC-32 can tell.
  auto rewriter = std::make_shared<e2e::DataRewriter>(1);
  std::uint16_t port = 0;
  auto push = push_tcp(image(2), port);
  e2e::Relay relay(port, [rewriter](std::vector<std::uint8_t>& b, bool to_device) { (*rewriter)(b, to_device); });
  auto args = board_args();
  args.insert(args.end(), {"--connect", "127.0.0.1:" + std::to_string(relay.port())});
  Process board(args);
  EXPECT_EQ(push->wait(120s), 4) << push->output();
  EXPECT_TRUE(rewriter->done());
  EXPECT_EQ(json_field(push->output(), "outcome"), "checksum-failed");
  EXPECT_EQ(json_field(push->output(), "device_version"), "1");
  // No OTA-START was written and v1 still runs: the board dials again and the next server, offered
  // v1, finds it up to date, with no pending install reported.
  std::uint16_t port2 = 0;
  auto again = push_tcp(image(1), port2);
  relay.set_server_port(port2);
  EXPECT_EQ(again->wait(120s), 0) << again->output();
  EXPECT_EQ(json_field(again->output(), "outcome"), "up-to-date") << again->output();
  EXPECT_EQ(again->output().find("reports download OK"), std::string::npos) << again->output();
}

// `ota serve --recover` sends RECOVER every 10 ms on every new connection until its device
// answers. A modem that loses its connection when the board resets after RESULT ok (one that
// hangs up with the MCU's reset, or redials whenever its connection closes) is back while the
// bootloader installs: the RECOVERs wait in the UART ring. The bootloader used to hear them in its
// listening window after the (successful) install and stay in recovery mode holding v2; the serve
// acknowledged that upgrade report, then, having given this device the whole image, ended it
// `upgrade-failed` ("its application does not run"), exit 7, about a board whose v2 ran fine. The
// boot that installs an application now starts it without the window.
TEST_P(E2eTools, ServeRecoverDoesNotCallAnInstalledBoardFailedWhenItsModemRedialsDuringTheInstall) {
  Process serve({OTA_TOOL, "serve", largest_image(), "--listen", "127.0.0.1:0", "--recover", "--devices", "1", "--json",
                 "--timeout", "60"});
  const std::uint16_t port = listening(serve);
  std::atomic<e2e::Relay*> self{nullptr};
  auto dec = std::make_shared<ota::FrameDecoderBuffer<64>>();
  auto cut = std::make_shared<std::atomic<bool>>(false);
  // The modem loses its connection once the device has sent RESULT ok (at the server's next
  // bytes: its first HELLO_REQ of the reboot phase), and dials again at once.
  // (Its first connection carries nothing to the board for 1.5 s, as a modem that takes its
  // time: the board's application answers it, not its bootloader at power-on.)
  const auto t0 = std::chrono::steady_clock::now();
  e2e::Relay modem(port, [&self, dec, cut, t0](std::vector<std::uint8_t>& bytes, bool to_device) {
    if (to_device && std::chrono::steady_clock::now() - t0 < 1500ms) bytes.clear();
    if (to_device || *cut) return;
    for (const std::uint8_t b : bytes)
      if (dec->feed(b) == ota::FrameDecoder::Event::frame && dec->frame().type == 0x85 && dec->frame().len == 5 &&
          dec->frame().payload[0] == 0 && self.load()) {
        *cut = true;
        self.load()->cut_after(1);
        return;
      }
  });
  self = &modem;
  auto args = board_args();
  args.insert(args.end(), {"--realtime", "--connect", "127.0.0.1:" + std::to_string(modem.port())});
  Process board(args);
  const int rc = serve.wait(120s);
  const std::string out = serve.output();
  EXPECT_TRUE(*cut) << out;
  EXPECT_EQ(rc, 0) << out;
  const auto result = out.rfind("\"event\":\"result\"");
  ASSERT_NE(result, std::string::npos) << out;
  EXPECT_EQ(json_field(out.substr(result), "outcome"), "upgraded") << out;
}

// A .bin cut short (a copy or a download of the file that stopped part-way) is no valid
// application, but when its reset handler survives the cut it used to pass every check: `ota
// image build` made an .ota of it, the device took it (the vector table fits, the CRC-32 is the
// cut file's own) and installed it, and the board then reset for ever. The image's end as the
// linker placed it (OTA_APP_INFO's second record) now tells the tool how long the file must be.
TEST_P(E2eTools, ATruncatedBinIsRefusedAndTheBoardKeepsAWorkingApplication) {
  auto bytes = fw.app_bin(2);
  const std::uint32_t reset = ota::get_u32(bytes.data() + 4) & ~1u;
  bytes.resize(reset - fw.layout->app.base + 512);  // cut 512 bytes past the reset handler's entry
  const fs::path bin = dir / "app-v2-cut.bin";
  ASSERT_FALSE(ota::host::save_file(bin, bytes));
  const std::string cut = (dir / "cut.ota").string();
  Process build({OTA_TOOL, "image", "build", bin.string(), "-o", cut});
  const int built = build.wait(30s);
  EXPECT_EQ(built, 9) << "a truncated .bin must be refused as a bad input: " << build.output();
  EXPECT_NE(build.output().find("cut short"), std::string::npos) << build.output();
  if (built != 0) return;
  // Built all the same: what a push of it does to a board running v1.
  auto args = board_args();
  args.insert(args.end(), {"--pty", "--realtime", "--lenient"});
  Process board(args);
  Process push({OTA_TOOL, "push", cut, "--port", pty_of(board), "--json", "--timeout", "10"});
  const int pushed = push.wait(120s);
  Process st({OTA_TOOL, "status", "--port", pty_of(board), "--timeout", "3"});
  EXPECT_EQ(st.wait(30s), 0) << "the board no longer runs an application that answers: " << st.output()
                             << "\npush (exit " << pushed << "): " << push.output();
}

INSTANTIATE_TEST_SUITE_P(Layouts, E2eTools, ::testing::Values("internal", "external"),
                         [](const auto& i) { return i.param; });

class E2eToolsExternal : public E2eTools {};

// A board built without its W25Q (bluepill --no-w25q): the application has nowhere to stage, so it
// refuses the update with a flash error before anything is erased, and goes on running v1.
TEST_P(E2eToolsExternal, ABoardWithoutItsW25qRefusesAndKeepsV1) {
  auto args = board_args();
  args.insert(args.end(), {"--no-w25q", "--pty"});
  Process board(args);
  std::string out;
  EXPECT_EQ(push_pty(board, image(2), out), 3) << out;
  EXPECT_EQ(json_field(out, "outcome"), "refused") << out;
  EXPECT_NE(json_field(out, "detail").find("cannot use its external flash (is the W25Q wired and powered?"),
            std::string::npos) << out;
  EXPECT_EQ(push_pty(board, image(1), out), 0) << out;
  EXPECT_EQ(json_field(out, "outcome"), "up-to-date") << out;
}

INSTANTIATE_TEST_SUITE_P(Layouts, E2eToolsExternal, ::testing::Values("external"),
                         [](const auto& i) { return i.param; });

}  // namespace

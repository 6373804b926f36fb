// The `ota` tool as a user runs it: image build and info on .bin/.hex/.elf, refusals with a clear
// message and exit code, push over a real pty and a real TCP connection to ota-sim-device (the
// CPU-less simulated device), and serve to several of them at once.
#include <gtest/gtest.h>

#include <pty.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <cstring>

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/crc.hpp"
#include "ota/frame.hpp"
#include "ota/protocol.hpp"
#include "ota/host/image.hpp"
#include "ota/host/session.hpp"
#include "process.hpp"
#include "sim/device.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::Process;

namespace {

// One field of a JSON line: a string's contents, or a number as written.
std::string field(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return "";
  auto v = line.substr(at + key.size() + 3);
  if (!v.empty() && v[0] == '"') return v.substr(1, v.find('"', 1) - 1);
  return v.substr(0, v.find_first_of(",}"));
}

// The JSON lines of one event kind.
std::vector<std::string> lines_of(const std::string& out, const std::string& kind) {
  std::vector<std::string> r;
  for (std::size_t at = 0, nl; at < out.size(); at = nl + 1) {
    nl = out.find('\n', at);
    if (nl == std::string::npos) nl = out.size();
    const std::string l = out.substr(at, nl - at);
    if (l.find("\"event\":\"" + kind + "\"") != std::string::npos) r.push_back(l);
  }
  return r;
}

// Reads the tool's --json lines until one is the event `kind`; false if none comes in time.
bool next_event(Process& p, const std::string& kind, std::chrono::milliseconds timeout = 10s) {
  while (const auto l = p.wait_for("{\"t_ms\":", timeout))
    if (l->find("\"event\":\"" + kind + "\"") != std::string::npos) return true;
  return false;
}

// A TCP connection to 127.0.0.1:port, as a device's modem would open it; -1 if it fails.
int dial(const std::string& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// A pty in raw mode, both ends open: the tests below play the device on `master`.
void open_raw_pty(int& master, int& slave, char (&name)[256]) {
  ASSERT_EQ(::openpty(&master, &slave, name, nullptr, nullptr), 0);
  termios t{};
  ASSERT_EQ(::tcgetattr(slave, &t), 0);
  ::cfmakeraw(&t);
  ASSERT_EQ(::tcsetattr(slave, TCSANOW, &t), 0);
}

// What a device running application `version` (internal layout) says: one HELLO frame, on `fd`.
void say_hello(int fd, std::uint32_t version, std::uint8_t protocol = ota::kProtocolVersion) {
  ota::Hello h;
  h.protocol = protocol;
  h.app_version = version;
  h.window = 8;
  h.staging_capacity = ota::kInternalLayout.image_limit;
  std::uint8_t payload[ota::Hello::kSize];
  ota::encode(h, payload);
  std::uint8_t frame[ota::encoded_size_max(ota::Hello::kSize)];
  const std::size_t n = ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::hello), payload, sizeof payload,
                                          frame, sizeof frame);
  ASSERT_EQ(::write(fd, frame, n), static_cast<ssize_t>(n));
}

// ota-sim-device on a pty of its own, as a test's device: `pty` is its path, empty (and the test
// failed) when it named none.
struct SimDeviceOnPty {
  Process proc;
  std::string pty;
  explicit SimDeviceOnPty(const std::string& layout, const std::vector<std::string>& more = {})
      : proc([&] {
          std::vector<std::string> argv = {SIM_DEVICE, "--pty", "--layout", layout};
          argv.insert(argv.end(), more.begin(), more.end());
          return argv;
        }()) {
    if (const auto line = proc.wait_for("pty ", 10s)) pty = line->substr(4);
    else ADD_FAILURE() << "ota-sim-device named no pty: " << proc.output();
  }
};

class OtaCli : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("ota_cli_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path write(const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const fs::path p = dir / name;
    EXPECT_FALSE(ota::host::save_file(p, bytes));
    return p;
  }
  int ota(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), OTA_TOOL);
    Process p(args);
    const int rc = p.wait(60s);
    if (out) *out = p.output();
    return rc;
  }
};

TEST_F(OtaCli, BuildsAndInspectsAnImageFromBin) {
  const auto app = sim::make_app_image(ota::kInternalLayout, 2, 9000);
  const auto bin = write("app.bin", app);
  std::string out;
  ASSERT_EQ(ota({"image", "build", bin.string(), "-o", (dir / "app.ota").string(), "-v", "2", "-l", "internal"}, &out), 0) << out;
  ota::host::Image img;
  ASSERT_FALSE(ota::host::load_ota_file(dir / "app.ota", img));
  EXPECT_EQ(img.version, 2u);
  EXPECT_EQ(img.layout, ota::LayoutId::internal);
  EXPECT_EQ(img.bytes, app);
  ASSERT_EQ(ota({"image", "info", (dir / "app.ota").string()}, &out), 0);
  EXPECT_NE(out.find("version:   2"), std::string::npos) << out;
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08X", ota::crc32(app.data(), app.size()));
  EXPECT_NE(out.find(crc), std::string::npos) << out;
}

TEST_F(OtaCli, ReadsIntelHexAndElf) {
  // The real application firmware, as the firmware build made it.
  const fs::path fw = OTA_FIRMWARE_DIR;
  std::vector<std::uint8_t> bin;
  ASSERT_FALSE(ota::host::load_file(fw / "internal/app.bin", bin)) << "firmware not built";
  for (const char* ext : {"hex", "elf"}) {
    const auto out = dir / (std::string("app-") + ext + ".ota");
    ASSERT_EQ(ota({"image", "build", (fw / (std::string("internal/app.") + ext)).string(), "-o", out.string(), "-v", "1"}), 0) << ext;
    ota::host::Image img;
    ASSERT_FALSE(ota::host::load_ota_file(out, img));
    EXPECT_EQ(img.bytes, bin) << ext;
  }
}

// The example application carries its layout and version (OTA_APP_INFO): `ota image build` takes
// them from it, and refuses a -l or -v that contradicts them, which would install an application
// that cannot be updated again (wrong layout) or is pushed again and again (wrong version).
TEST_F(OtaCli, TheImagesAppInfoGivesLayoutAndVersion) {
  const fs::path fw = OTA_FIRMWARE_DIR;
  std::string out;
  for (const char* layout : {"internal", "external"}) {
    const auto elf = (fw / layout / "app-v2.elf").string();
    const auto ota_file = dir / (std::string(layout) + ".ota");
    ASSERT_EQ(ota({"image", "build", elf, "-o", ota_file.string()}, &out), 0) << out;
    ota::host::Image img;
    ASSERT_FALSE(ota::host::load_ota_file(ota_file, img));
    EXPECT_EQ(img.layout, std::string(layout) == "internal" ? ota::LayoutId::internal : ota::LayoutId::external);
    EXPECT_EQ(img.version, 2u);
    const char* other = std::string(layout) == "internal" ? "external" : "internal";
    const auto bad = dir / "bad.ota";
    EXPECT_EQ(ota({"image", "build", elf, "-o", bad.string(), "-l", other}, &out), 9);
    EXPECT_NE(out.find(std::string("built for the ") + layout + " layout"), std::string::npos) << out;
    EXPECT_EQ(ota({"image", "build", elf, "-o", bad.string(), "-v", "3"}, &out), 9);
    EXPECT_NE(out.find("is version 2"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(bad));
    EXPECT_EQ(ota({"image", "build", elf, "-o", ota_file.string(), "-v", "2", "-l", layout}, &out), 0) << out;
    // The example application's product, as the build and `image info` show it.
    const std::string product = ota::host::hex8(ota::AppInfo::product_id("ota-example-app"));
    EXPECT_NE(out.find("version 2, product " + product + ","), std::string::npos) << out;
    EXPECT_EQ(ota({"image", "info", ota_file.string()}, &out), 0) << out;
    EXPECT_NE(out.find("product:   " + product + "\n"), std::string::npos) << out;
  }
  // A record beyond the bytes a device looks at (its product and layout would go unchecked).
  {
    auto late = sim::make_app_image(ota::kInternalLayout, 2, 4000);
    const auto info = ota::AppInfo::make(ota::LayoutId::internal, 2, "late");
    std::memcpy(late.data() + ota::kAppInfoWindow, &info, sizeof info);
    EXPECT_EQ(ota({"image", "build", write("late.bin", late).string(), "-o", (dir / "l.ota").string()}, &out), 9);
    EXPECT_NE(out.find("its app info lies beyond the first 512 bytes"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(dir / "l.ota"));
  }
  // An image without the record: both must be given, nothing is assumed.
  const auto bin = write("plain.bin", sim::make_app_image(ota::kInternalLayout, 2, 4000));
  EXPECT_EQ(ota({"image", "build", bin.string(), "-o", (dir / "p.ota").string(), "-v", "2"}, &out), 2);
  EXPECT_NE(out.find("give --layout and --version"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir / "p.ota"));
  // Given both, it is built, with a warning: nothing shows it runs the update client.
  EXPECT_EQ(ota({"image", "build", bin.string(), "-o", (dir / "p.ota").string(), "-v", "2", "-l", "internal"}, &out), 0);
  EXPECT_NE(out.find("warning: " + bin.string() + " carries no app info"), std::string::npos) << out;
  EXPECT_NE(out.find("ota push --recover"), std::string::npos) << out;
  // A bootloader as a .bin (no record either): what it is, not a request for --layout and --version.
  const auto boot = (fw / "internal" / "bootloader.bin").string();
  EXPECT_EQ(ota({"image", "build", boot, "-o", (dir / "b.ota").string()}, &out), 9);
  EXPECT_NE(out.find("this is a bootloader or factory image"), std::string::npos) << out;
  EXPECT_EQ(out.find("give --layout"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir / "b.ota"));
  // A factory image as a .bin (under another name): the application's record lies 8 KB in, but
  // what is wrong is the file, not where the record sits.
  fs::copy_file(fw / "internal" / "factory.bin", dir / "first.bin");
  EXPECT_EQ(ota({"image", "build", (dir / "first.bin").string(), "-o", (dir / "f.ota").string()}, &out), 9);
  EXPECT_NE(out.find("this is a bootloader or factory image"), std::string::npos) << out;
  EXPECT_EQ(out.find("right after the vector table"), std::string::npos) << out;
  // -o naming the input itself: refused, the input left as it was.
  const auto elf = dir / "mine.elf";
  fs::copy_file(fw / "internal" / "app-v2.elf", elf);
  const auto size = fs::file_size(elf);
  EXPECT_EQ(ota({"image", "build", elf.string(), "-o", (dir / "." / "mine.elf").string()}, &out), 2);
  EXPECT_NE(out.find("is the input file itself"), std::string::npos) << out;
  EXPECT_EQ(fs::file_size(elf), size);
}

fs::path make_ota(const fs::path& dir, const ota::Layout& l, std::uint32_t version, std::uint32_t size) {
  const fs::path p = dir / ("v" + std::to_string(version) + ".ota");
  EXPECT_FALSE(ota::host::save_file(p, ota::host::encode_ota_file({l.id, version, l.app.base, sim::make_app_image(l, version, size)})));
  return p;
}

// Input and output files that cannot be used: exit 9 (a bad input file) with the reason.
TEST_F(OtaCli, FilesThatCannotBeUsedSayWhy) {
  std::string out;
  const std::string missing = (dir / "missing.ota").string();
  EXPECT_EQ(ota({"image", "info", missing}, &out), 9);
  EXPECT_NE(out.find("No such file or directory"), std::string::npos) << out;
  EXPECT_EQ(ota({"push", missing, "--port", "/dev/null"}, &out), 9);
  EXPECT_EQ(ota({"image", "build", (dir / "missing.bin").string(), "-o", (dir / "x.ota").string(), "-l", "internal", "-v", "1"}, &out), 9);
  EXPECT_NE(out.find("No such file or directory"), std::string::npos) << out;
  // Two images joined into one file are not "truncated".
  auto one = ota::host::encode_ota_file({ota::LayoutId::internal, 2, 0x08002000, sim::make_app_image(ota::kInternalLayout, 2, 4000)});
  auto two = one;
  two.insert(two.end(), one.begin(), one.end());
  EXPECT_EQ(ota({"image", "info", write("two.ota", two).string()}, &out), 9);
  EXPECT_NE(out.find("after the image"), std::string::npos) << out;
  // An extended address record without its 2 data bytes (its checksum right).
  std::ofstream(dir / "short.hex") << ":00000004FC\n:00000001FF\n";
  EXPECT_EQ(ota({"image", "build", (dir / "short.hex").string(), "-o", (dir / "s.ota").string(), "-l", "internal", "-v", "1"}, &out), 9);
  EXPECT_NE(out.find("line 1: an address record holds 2 data bytes"), std::string::npos) << out;
  // An output that cannot be written.
  const auto bin = write("app.bin", sim::make_app_image(ota::kInternalLayout, 2, 4000));
  EXPECT_EQ(ota({"image", "build", bin.string(), "-o", (dir / "no-dir" / "x.ota").string(), "-l", "internal", "-v", "2"}, &out), 9);
  EXPECT_NE(out.find("cannot write"), std::string::npos) << out;
  EXPECT_NE(out.find("No such file or directory"), std::string::npos) << out;
  // A text file (a link map, say) given without --layout: not an application of either layout,
  // not "does not fit the external layout", which no one asked for.
  const auto text = write("app.map", std::vector<std::uint8_t>(600, 'x'));
  EXPECT_EQ(ota({"image", "build", text.string(), "-o", (dir / "t.ota").string()}, &out), 9);
  EXPECT_NE(out.find("not an application of either layout: vector table"), std::string::npos) << out;
}

TEST(AppInfo, FoundOnlyWithItsMagicAndCheckWord) {
  std::vector<std::uint8_t> img(64, 0xFF);
  const auto info = ota::AppInfo::make(ota::LayoutId::external, 7);
  std::memcpy(img.data() + 24, &info, sizeof info);
  ota::AppInfo got;
  ASSERT_TRUE(ota::find_app_info(img.data(), img.size(), got));
  EXPECT_EQ(got.version, 7u);
  EXPECT_EQ(got.layout, static_cast<std::uint32_t>(ota::LayoutId::external));
  EXPECT_EQ(got.product, 0u);
  img[24 + 8] ^= 1;  // the version changed without its check word
  EXPECT_FALSE(ota::find_app_info(img.data(), img.size(), got));
  EXPECT_FALSE(ota::find_app_info(img.data(), 24 + sizeof info - 1, got));  // cut short

  // A product, and a product changed without its check word.
  const auto named = ota::AppInfo::make(ota::LayoutId::internal, 3, "weather-station");
  std::fill(img.begin(), img.end(), 0xFF);
  std::memcpy(img.data() + 8, &named, sizeof named);
  ASSERT_TRUE(ota::find_app_info(img.data(), img.size(), got));
  EXPECT_EQ(got.product, ota::AppInfo::product_id("weather-station"));
  EXPECT_EQ(got.version, 3u);
  img[8 + 16] ^= 1;
  EXPECT_FALSE(ota::find_app_info(img.data(), img.size(), got));

  // A link rate, and a rate changed without its check word: the record is found, naming none.
  const auto rated = named.at_link_baud(9600);
  std::fill(img.begin(), img.end(), 0xFF);
  std::memcpy(img.data() + 8, &rated, sizeof rated);
  ASSERT_TRUE(ota::find_app_info(img.data(), img.size(), got));
  EXPECT_EQ(got.link_baud, 9600u);
  EXPECT_EQ(got.product, ota::AppInfo::product_id("weather-station"));
  img[8 + 24] ^= 1;
  ASSERT_TRUE(ota::find_app_info(img.data(), img.size(), got));
  EXPECT_EQ(got.link_baud, 0u) << "a rate whose check word does not match";
  EXPECT_EQ(got.product, ota::AppInfo::product_id("weather-station"));

  // The 24-byte record before the rate: found with its product, naming no rate, whatever follows
  // it, also at the very end of what is searched.
  const std::uint32_t product = ota::AppInfo::product_id("weather-station");
  const std::uint32_t record24[8] = {ota::AppInfo::kMagic0, ota::AppInfo::kMagic1, 4, 1, product,
                                     ota::AppInfo::check_of(4, 1, product), 9600, 0x12345678};
  std::fill(img.begin(), img.end(), 0xFF);
  std::memcpy(img.data() + 8, record24, sizeof record24);
  ASSERT_TRUE(ota::find_app_info(img.data(), img.size(), got));
  EXPECT_EQ(got.version, 4u);
  EXPECT_EQ(got.product, product);
  EXPECT_EQ(got.link_baud, 0u);
  ASSERT_TRUE(ota::find_app_info(img.data(), 8 + 24, got)) << "a 24-byte record at the end of what is searched";
  EXPECT_EQ(got.product, product);

  // The first release's 20-byte record (no product, its check word at +16): found, naming none,
  // also at the very end of what is searched.
  const std::uint32_t old_record[5] = {ota::AppInfo::kMagic0, ota::AppInfo::kMagic1, 5, 2,
                                       ota::AppInfo::check_of(5, 2, 0)};
  std::fill(img.begin(), img.end(), 0xFF);
  std::memcpy(img.data() + 44, old_record, sizeof old_record);
  ASSERT_TRUE(ota::find_app_info(img.data(), 64, got));
  EXPECT_EQ(got.version, 5u);
  EXPECT_EQ(got.layout, 2u);
  EXPECT_EQ(got.product, 0u);
  EXPECT_EQ(got.check, ota::AppInfo::check_of(5, 2, 0));
}

// Only the bytes searched count: a record cut short by the end of what is searched (a device's
// scan in pieces, the window of the image it looks at) is read from those bytes alone, whatever
// lies past them in memory.
TEST(AppInfo, NothingPastTheEndOfWhatIsSearchedIsRead) {
  std::vector<std::uint8_t> img(64, 0xFF);
  const auto rated = ota::AppInfo::make(ota::LayoutId::internal, 3, "weather-station").at_link_baud(9600);
  std::memcpy(img.data() + 8, &rated, sizeof rated);
  ota::AppInfo got;
  // Its first 24 bytes searched: the record, naming no rate (its rate and check word lie past them).
  ASSERT_TRUE(ota::find_app_info(img.data(), 8 + 24, got));
  EXPECT_EQ(got.product, ota::AppInfo::product_id("weather-station"));
  EXPECT_EQ(got.link_baud, 0u);
  // Its first 20 bytes searched: not the first release's record (its fifth word is a product,
  // not that record's check word), and its own check word lies past them: no record.
  EXPECT_FALSE(ota::find_app_info(img.data(), 8 + 20, got));
}

// A device looks for the record only where it may start, in the image's first 512 bytes: one that
// starts later is not its record, even when it fits the bytes the device reads.
TEST(AppInfo, ADeviceTakesNoRecordStartingPastTheFirst512Bytes) {
  std::vector<std::uint8_t> img(600, 0xFF);
  const std::uint32_t product = ota::AppInfo::product_id("weather-station");
  const std::uint32_t record24[6] = {ota::AppInfo::kMagic0, ota::AppInfo::kMagic1, 4, 1, product,
                                     ota::AppInfo::check_of(4, 1, product)};
  ota::AppInfo got;
  std::memcpy(img.data() + 508, record24, sizeof record24);
  EXPECT_TRUE(ota::find_image_app_info(img.data(), img.size(), got)) << "starts at 508";
  std::fill(img.begin(), img.end(), 0xFF);
  std::memcpy(img.data() + 516, record24, sizeof record24);
  EXPECT_FALSE(ota::find_image_app_info(img.data(), img.size(), got)) << "starts at 516";
}

// Product ids stay clear of the two values with a meaning of their own: a name whose FNV-1a hash
// is 0 would read as "no product" (any image taken), one whose hash is 0xFFFFFFFF as kProductHeld.
TEST(AppInfo, NoProductNameHasTheIdOfNoProductOrOfAHeldOne) {
  EXPECT_NE(ota::AppInfo::product_id("7met1an"), 0u);  // FNV-1a 0x00000000
  EXPECT_NE(ota::AppInfo::product_id("w-j9tb7"), ota::kProductHeld);  // FNV-1a 0xFFFFFFFF
  EXPECT_NE(ota::AppInfo::product_id("w-j9tb7"), 0u);
}

TEST_F(OtaCli, RefusesWhatCannotWork) {
  std::string out;
  const auto big = write("big.bin", sim::make_app_image(ota::kInternalLayout, 2, ota::kInternalLayout.image_limit + 1));
  EXPECT_EQ(ota({"image", "build", big.string(), "-o", (dir / "x.ota").string(), "-v", "2", "-l", "internal"}, &out), 9);
  EXPECT_NE(out.find("too large"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "x.ota"));
  // The same image fits the external layout.
  EXPECT_EQ(ota({"image", "build", big.string(), "-o", (dir / "x.ota").string(), "-v", "2", "-l", "external"}), 0);
  auto bad = sim::make_app_image(ota::kInternalLayout, 2, 4000);
  ota::put_u32(bad.data() + 4, 0x08000101);  // reset handler inside the bootloader
  const auto badf = write("bad.bin", bad);
  EXPECT_EQ(ota({"image", "build", badf.string(), "-o", (dir / "y.ota").string(), "-v", "2", "-l", "internal"}, &out), 9);
  EXPECT_NE(out.find("this is a bootloader or factory image"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir / "y.ota"));
  ota::put_u32(bad.data() + 4, 0x08002000 + 4000 + 1);  // reset handler just past the image's end
  EXPECT_EQ(ota({"image", "build", write("past.bin", bad).string(), "-o", (dir / "y.ota").string(), "-v", "2", "-l", "internal"}, &out), 9);
  EXPECT_NE(out.find("reset handler 0x08002FA1"), std::string::npos) << out;
  EXPECT_EQ(out.find("bootloader or factory"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir / "y.ota"));
  // A corrupted .ota file is refused by push before any link is opened.
  auto file = ota::host::encode_ota_file({ota::LayoutId::internal, 2, 0x08002000, sim::make_app_image(ota::kInternalLayout, 2, 4000)});
  file[100] ^= 1;
  EXPECT_EQ(ota({"push", write("c.ota", file).string(), "--port", "/dev/null"}, &out), 9);
  EXPECT_NE(out.find("corrupted"), std::string::npos);
  EXPECT_EQ(ota({"push", write("d.ota", file).string()}), 2);  // neither --port nor --listen
  // The firmware itself instead of an .ota: how to make one.
  EXPECT_EQ(ota({"push", write("app.elf", {0x7F, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}).string(), "--port", "/dev/null"}, &out), 9);
  EXPECT_NE(out.find("not an .ota image (no OTAI header): make one from the .elf/.hex/.bin with `ota image build`"), std::string::npos) << out;
  EXPECT_EQ(ota({"bogus", "v2.ota"}, &out), 2);
  EXPECT_NE(out.find("'bogus' is not a command"), std::string::npos) << out;
  // A well-formed .ota whose image no device could take (made by another tool, or a damaged
  // build): push and serve refuse it as a bad input, before any link is opened, as `image info`
  // calls it unusable; not sent to be refused by the device.
  const auto over = write("over.ota", ota::host::encode_ota_file({ota::LayoutId::internal, 2, 0x08002000,
                                                                  sim::make_app_image(ota::kInternalLayout, 2, ota::kInternalLayout.image_limit + 1)}));
  EXPECT_EQ(ota({"image", "info", over.string()}, &out), 9);
  EXPECT_NE(out.find("UNUSABLE"), std::string::npos) << out;
  EXPECT_EQ(ota({"push", over.string(), "--port", "/dev/null"}, &out), 9);
  EXPECT_NE(out.find("unusable: image of"), std::string::npos) << out;
  EXPECT_NE(out.find("too large for the internal layout"), std::string::npos) << out;
  EXPECT_EQ(ota({"serve", over.string(), "--listen", "127.0.0.1:0"}, &out), 9);
  EXPECT_NE(out.find("unusable"), std::string::npos) << out;
  // An .ota given where firmware is expected: said so, not read as a .bin with a strange
  // vector table.
  EXPECT_EQ(ota({"image", "build", make_ota(dir, ota::kInternalLayout, 2, 4000).string(), "-o", (dir / "again.ota").string(), "-l", "internal", "-v", "3"}, &out), 9);
  EXPECT_NE(out.find("already an .ota image"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir / "again.ota"));
  // A port that is not a serial port at all: a usage error that says so.
  const auto good = make_ota(dir, ota::kInternalLayout, 2, 4000).string();
  for (const std::string& port : {std::string("/dev/null"), write("not-a-port", {1, 2, 3}).string()}) {
    EXPECT_EQ(ota({"push", good, "--port", port}, &out), 2) << port;
    EXPECT_NE(out.find("not a serial port (a tty)"), std::string::npos) << out;
  }
}

// Also --baud, --window and --packet as they reach the link and the session.
TEST_F(OtaCli, PushOverPty) {
  SimDeviceOnPty dev("internal");
  ASSERT_FALSE(dev.pty.empty());
  std::string out;
  const int rc = ota({"push", make_ota(dir, ota::kInternalLayout, 2, 20000).string(), "--port", dev.pty, "--json",
                      "--baud", "57600", "--window", "3", "--packet", "128"}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"outcome\":\"upgraded\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"device_version\":2"), std::string::npos) << out;
  EXPECT_NE(out.find("at 57600 baud"), std::string::npos) << out;
  EXPECT_NE(out.find("20000 bytes in 157 packets of 128, window 3"), std::string::npos) << out;
  EXPECT_TRUE(dev.proc.wait_for("boot 2: application v2 (installed)", 10s)) << dev.proc.output();
}

// docs/flashing.md says to push with `ota push --baud N` at the rate the firmware was built with
// (OTA_USART1_BAUD): every rate it can be built for reaches the link.
TEST_F(OtaCli, PushesAtEveryRateTheFirmwareCanBeBuiltFor) {
  for (const std::uint32_t baud : {OTA_USART1_RATES}) {
    const std::string rate = std::to_string(baud);
    SCOPED_TRACE(rate);
    SimDeviceOnPty dev("internal");
    ASSERT_FALSE(dev.pty.empty());
    std::string out;
    const int rc = ota({"push", make_ota(dir, ota::kInternalLayout, 2, 4000).string(), "--port", dev.pty, "--json",
                        "--baud", rate}, &out);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("\"outcome\":\"upgraded\""), std::string::npos) << out;
    EXPECT_NE(out.find("at " + rate + " baud"), std::string::npos) << out;
  }
}

// The device already runs the image's version: up to date, unless --force; forced, the image is
// downloaded and installed again, and the upgrade report proves it.
TEST_F(OtaCli, ForceInstallsTheVersionTheDeviceAlreadyRuns) {
  SimDeviceOnPty dev("internal", {"--version", "2"});
  ASSERT_FALSE(dev.pty.empty());
  const std::string img = make_ota(dir, ota::kInternalLayout, 2, 20000).string();
  std::string out;
  EXPECT_EQ(ota({"push", img, "--port", dev.pty, "--json"}, &out), 0) << out;
  EXPECT_NE(out.find("\"outcome\":\"up-to-date\""), std::string::npos) << out;
  EXPECT_EQ(ota({"push", img, "--port", dev.pty, "--json", "--force"}, &out), 0) << out;
  EXPECT_NE(out.find("\"outcome\":\"upgraded\""), std::string::npos) << out;
  EXPECT_TRUE(dev.proc.wait_for("boot 2: application v2 (installed)", 10s)) << dev.proc.output();
}

TEST_F(OtaCli, PushOverTcpToADeviceThatDialsIn) {
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kExternalLayout, 3, 50000).string(), "--listen", "127.0.0.1:0", "--json"});
  const auto listening = push.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(listening);
  const std::string port = field(*listening, "port");
  Process dev({SIM_DEVICE, "--connect", "127.0.0.1:" + port, "--layout", "external"});
  EXPECT_EQ(push.wait(60s), 0) << push.output();
  EXPECT_NE(push.output().find("\"outcome\":\"upgraded\""), std::string::npos) << push.output();
  EXPECT_TRUE(dev.wait_for("boot 2: application v3 (installed)", 10s)) << dev.output();
}

// A device whose connection drops (here: one that hangs up at once) and that dials in again: the
// push goes on with the new connection; --json tells the drop as "disconnect" and has one "done"
// and one final "result", each line with its t_ms.
TEST_F(OtaCli, ADeviceThatReconnectsFinishesThePush) {
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 3, 20000).string(), "--listen", "127.0.0.1:0", "--json"});
  const auto listening = push.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(listening && listening->find("listening") != std::string::npos) << push.output();
  const std::string port = field(*listening, "port");
  {
    const int fd = dial(port);
    ASSERT_GE(fd, 0);
    char buf[64];
    EXPECT_GT(::recv(fd, buf, sizeof buf, 0), 0);  // the server's HELLO_REQ
    ::close(fd);
  }
  ASSERT_TRUE(next_event(push, "disconnect")) << push.output();
  Process dev({SIM_DEVICE, "--connect", "127.0.0.1:" + port, "--layout", "internal"});
  EXPECT_EQ(push.wait(60s), 0) << push.output();
  const std::string out = push.output();
  EXPECT_NE(out.find("\"outcome\":\"upgraded\""), std::string::npos) << out;
  auto count = [&](const std::string& what) { return test::count_in(out, what); };
  EXPECT_EQ(count("\"event\":\"done\""), 1u) << out;
  EXPECT_EQ(count("\"event\":\"result\""), 1u) << out;
  EXPECT_EQ(count("\"event\":\"connect\""), 2u) << out;
  std::size_t lines = 0;
  for (std::size_t at = 0; at < out.size(); at = out.find('\n', at) + 1) {
    if (out.compare(at, 1, "{") != 0) break;
    EXPECT_EQ(out.compare(at, 8, "{\"t_ms\":"), 0) << out.substr(at, out.find('\n', at) - at);
    ++lines;
    if (out.find('\n', at) == std::string::npos) break;
  }
  EXPECT_GT(lines, 5u) << out;
}

TEST_F(OtaCli, WrongLayoutIsRefusedWithExitCode3) {
  SimDeviceOnPty dev("external");
  ASSERT_FALSE(dev.pty.empty());
  std::string out;
  EXPECT_EQ(ota({"push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--port", dev.pty}, &out), 3);
  EXPECT_NE(out.find("built for the internal layout"), std::string::npos) << out;
}

// An application without the app-info record, built into an image with the wrong -v: it installs,
// but the device comes back running the version the application itself says. The push must not
// call that an upgrade: exit 7 and what the device runs.
TEST_F(OtaCli, ADeviceThatComesBackOnAnotherVersionIsUpgradeFailedWithExitCode7) {
  SimDeviceOnPty dev("internal");
  ASSERT_FALSE(dev.pty.empty());
  const auto bin = write("v2.bin", sim::make_app_image(ota::kInternalLayout, 2, 9000));
  const auto img = dir / "claims-v3.ota";
  std::string out;
  ASSERT_EQ(ota({"image", "build", bin.string(), "-o", img.string(), "-v", "3", "-l", "internal"}, &out), 0) << out;
  EXPECT_EQ(ota({"push", img.string(), "--port", dev.pty, "--json"}, &out), 7) << out;
  EXPECT_NE(out.find("\"outcome\":\"upgrade-failed\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"exit\":7"), std::string::npos) << out;
  EXPECT_NE(out.find("came back running v2"), std::string::npos) << out;
}

// A link named on the command line that cannot be used is the user's to fix: exit 2 with the
// reason, not "link lost" (6), which means a device went away.
TEST_F(OtaCli, LinksThatCannotBeUsedAreUsageErrors) {
  const std::string img = make_ota(dir, ota::kInternalLayout, 2, 9000).string();
  std::string out;
  EXPECT_EQ(ota({"push", img, "--port", (dir / "no-such-tty").string()}, &out), 2);
  EXPECT_EQ(out.rfind("ota push: cannot open ", 0), 0u) << "said as a usage error, not as a device's result: " << out;
  EXPECT_EQ(ota({"status", "--port", (dir / "no-such-tty").string()}, &out), 2);
  EXPECT_EQ(out.rfind("ota status: cannot open ", 0), 0u) << out;
  EXPECT_EQ(ota({"status"}, &out), 2);
  EXPECT_NE(out.find("ota status: give --port or --listen"), std::string::npos) << out;
  for (const char* bad : {"99999", "127.0.0.1:70000", "127.0.0.1:", "x:12ab"}) {
    EXPECT_EQ(ota({"push", img, "--listen", bad}, &out), 2) << bad;
    EXPECT_NE(out.find("bad listen address"), std::string::npos) << out;
  }
  EXPECT_EQ(ota({"push", img, "--listen", "no-such-host.invalid:7000"}, &out), 2);
  EXPECT_NE(out.find("cannot listen"), std::string::npos) << out;
  // A port another server already listens on.
  Process first({OTA_TOOL, "push", img, "--listen", "127.0.0.1:0", "--json", "--timeout", "20"});
  const auto listening = first.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(listening) << first.output();
  const std::string port = field(*listening, "port");
  EXPECT_EQ(ota({"push", img, "--listen", "127.0.0.1:" + port}, &out), 2);
  EXPECT_NE(out.find("cannot listen"), std::string::npos) << out;
  // By name too: not quietly on another address of the name (::1) that no device dials.
  EXPECT_EQ(ota({"push", img, "--listen", "localhost:" + port, "--timeout", "1"}, &out), 2);
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  // And every interface: the dual-stack socket's IPv4 half is taken.
  EXPECT_EQ(ota({"push", img, "--listen", ":" + port, "--timeout", "1"}, &out), 2);
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  // Values that would silently wrap or wait forever.
  EXPECT_EQ(ota({"push", img, "--port", "/dev/null", "--window", "257"}, &out), 2);
  EXPECT_EQ(ota({"push", img, "--port", "/dev/null", "--timeout", "-1"}, &out), 2);
  // Rates the serial port cannot take: not "cannot open" (the port is fine), and never 0 (B0
  // hangs up the line).
  for (const char* rate : {"12345", "0"}) {
    EXPECT_EQ(ota({"push", img, "--port", "/dev/null", "--baud", rate}, &out), 2) << rate;
    EXPECT_NE(out.find("--baud"), std::string::npos) << out;
    EXPECT_EQ(out.find("cannot open"), std::string::npos) << out;
  }
}

// A script that reads --json line by line gets a "result" line for every failure: a link that
// cannot be used (push, status), a bad image file (push, serve: "bad-input", exit 9), an address
// serve cannot listen on ("no-link", exit 2); the text goes to stderr as well.
TEST_F(OtaCli, JsonConsumersGetAResultLineForEveryFailure) {
  const auto good = make_ota(dir, ota::kInternalLayout, 2, 9000);
  std::vector<std::uint8_t> bytes;
  ASSERT_FALSE(ota::host::load_file(good, bytes));
  bytes.resize(bytes.size() / 2);
  const std::string truncated = write("truncated.ota", bytes).string();
  std::string out;
  EXPECT_EQ(ota({"push", truncated, "--listen", "127.0.0.1:0", "--json", "--timeout", "1"}, &out), 9);
  EXPECT_EQ(lines_of(out, "result").size(), 1u) << "push --json, bad image: " << out;
  EXPECT_EQ(ota({"serve", truncated, "--listen", "127.0.0.1:0", "--json", "--idle", "1"}, &out), 9);
  EXPECT_EQ(lines_of(out, "summary").size() + lines_of(out, "result").size(), 1u) << "serve --json, bad image: " << out;
  Process first({OTA_TOOL, "push", good.string(), "--listen", "127.0.0.1:0", "--json", "--timeout", "20"});
  const auto listening = first.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(listening) << first.output();
  EXPECT_EQ(ota({"serve", good.string(), "--listen", "127.0.0.1:" + field(*listening, "port"), "--json"}, &out), 2);
  EXPECT_EQ(lines_of(out, "summary").size() + lines_of(out, "result").size(), 1u) << "serve --json, port in use: " << out;
  // A failure before any device is the same short line from every command (docs/ota-tool.md): t_ms,
  // event, outcome, exit, detail and nothing else; the text on stderr too.
  const std::string in_use = "127.0.0.1:" + field(*listening, "port");
  const std::vector<std::pair<std::vector<std::string>, std::string>> no_link = {
      {{"push", good.string(), "--port", "/dev/null", "--json"}, "ota push: "},
      {{"push", good.string(), "--listen", in_use, "--json"}, "ota push: "},
      {{"status", "--listen", in_use, "--json"}, "ota status: "},
      {{"serve", good.string(), "--listen", in_use, "--json"}, "ota serve: "}};
  for (const auto& [args, text] : no_link) {
    SCOPED_TRACE(args[0] + " " + args[args.size() - 3] + " " + args[args.size() - 2]);
    EXPECT_EQ(ota(args, &out), 2) << out;
    const auto results = lines_of(out, "result");
    ASSERT_EQ(results.size(), 1u) << out;
    EXPECT_EQ(field(results[0], "outcome"), "no-link") << out;
    EXPECT_EQ(results[0].find("\"uid\""), std::string::npos) << "not the short line: " << results[0];
    EXPECT_NE(results[0].find("\"detail\":\""), std::string::npos) << results[0];
    EXPECT_NE(out.find(text), std::string::npos) << "no text on stderr: " << out;
  }
}

// `-t nan` is a usage error, not a timeout of 0 ms (CLI::Range lets NaN through: every comparison
// with NaN is false), and `--idle nan` not a serve that never stops.
TEST_F(OtaCli, ATimeoutThatIsNotANumberIsAUsageError) {
  const std::string img = make_ota(dir, ota::kInternalLayout, 2, 9000).string();
  std::string out;
  EXPECT_EQ(ota({"push", img, "--listen", "127.0.0.1:0", "--timeout", "nan"}, &out), 2) << out;
  Process serve({OTA_TOOL, "serve", img, "--listen", "127.0.0.1:0", "--idle", "nan"});  // runs for ever
  EXPECT_EQ(serve.wait(5s), 2) << serve.output();
}

// SIGHUP (the ssh session or terminal of a field engineer closes) stops a push as Ctrl-C does:
// exit 130, and the port is no longer exclusive (killed outright, the push would leave TIOCEXCL
// set while anything holds the pty's other end, and the next push would be refused "in use").
TEST_F(OtaCli, AHangupStopsAPushAsCtrlCDoesAndLeavesThePortUsable) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_EQ(::openpty(&master, &slave, name, nullptr, nullptr), 0);
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--port", name, "--json",
                "--timeout", "20"});
  ASSERT_TRUE(next_event(push, "open")) << push.output();
  push.signal(SIGHUP);
  EXPECT_EQ(push.wait(10s), 130) << push.output();
  int excl = 0;
  ASSERT_EQ(::ioctl(slave, TIOCGEXCL, &excl), 0);
  EXPECT_EQ(excl, 0) << "the port was left in exclusive mode";
  ::close(master);
  ::close(slave);
}

// --json text is valid JSON in UTF-8 whatever bytes it quotes: a port name with a control
// character, a quote and a byte that is not UTF-8 (a file name is any bytes) comes out escaped,
// as U+FFFD, and UTF-8 as it is.
TEST_F(OtaCli, JsonLinesAreValidUtf8WhateverTheyQuote) {
  const std::string img = make_ota(dir, ota::kInternalLayout, 2, 9000).string();
  std::string out;
  EXPECT_EQ(ota({"push", img, "--port", (dir / "a\xff\"b\tc\xc3\xa9").string(), "--json"}, &out), 2) << out;
  const std::string line = lines_of(out, "result").at(0);
  EXPECT_NE(line.find("a\xEF\xBF\xBD\\\"b\\u0009c\xc3\xa9: No such file"), std::string::npos) << line;
  EXPECT_EQ(line.find('\xff'), std::string::npos) << line;
  EXPECT_EQ(line.find('\t'), std::string::npos) << line;
}

// A link that holds the device's answers for 2.5 s once the download is under way (a modem's
// buffers, a cellular latency spike): with the default reply timeout (1.5 s) the push sends
// frames again that were still on their way; with --reply-timeout 5 it waits them out. Both end
// upgraded.
TEST_F(OtaCli, AReplyTimeoutAboveTheLinksDelaysSendsNothingTwice) {
  const std::string img = make_ota(dir, ota::kInternalLayout, 2, 9000).string();
  for (const bool raised : {false, true}) {
    SCOPED_TRACE(raised ? "--reply-timeout 5" : "default");
    std::vector<std::string> args = {OTA_TOOL, "push", img, "--listen", "127.0.0.1:0", "--json", "--timeout", "20"};
    if (raised) args.insert(args.end(), {"--reply-timeout", "5"});
    Process push(args);
    const auto listening = push.wait_for("{\"t_ms\":", 10s);
    ASSERT_TRUE(listening) << push.output();
    const auto port = static_cast<std::uint16_t>(std::stoi(field(*listening, "port")));
    std::thread modem([port] {
      sim::Device dev(ota::kInternalLayout, 1);
      dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
      dev.boot();
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return;
      std::size_t received = 0;
      std::vector<std::uint8_t> held;
      std::optional<std::chrono::steady_clock::time_point> release;
      for (const auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) > 0) {
          std::uint8_t buf[4096];
          const ssize_t n = ::read(fd, buf, sizeof buf);
          if (n <= 0) break;
          received += static_cast<std::size_t>(n);
          dev.receive(buf, static_cast<std::size_t>(n));
        }
        const auto out = dev.take_output();
        held.insert(held.end(), out.begin(), out.end());
        if (!release && received > 600) release = std::chrono::steady_clock::now() + 2500ms;  // DATA under way
        if (release && std::chrono::steady_clock::now() < *release) continue;
        if (!held.empty() && ::send(fd, held.data(), held.size(), MSG_NOSIGNAL) < 0) break;
        held.clear();
      }
      ::close(fd);
    });
    EXPECT_EQ(push.wait(60s), 0) << push.output();
    modem.join();
    const std::size_t retries = lines_of(push.output(), "retry").size();
    if (raised) {
      EXPECT_EQ(retries, 0u) << push.output();
      EXPECT_EQ(field(lines_of(push.output(), "result").at(0), "resends"), "0") << push.output();
    } else {
      EXPECT_GE(retries, 1u) << push.output();
    }
  }
}

// What a device said before the port was opened (a HELLO left from before its reset, unread) is
// no answer: `ota status` does not describe it, it asks, and here nobody answers (exit 5).
TEST_F(OtaCli, BytesReceivedBeforeThePortWasOpenedAreNoAnswer) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_NO_FATAL_FAILURE(open_raw_pty(master, slave, name));
  ASSERT_NO_FATAL_FAILURE(say_hello(master, 7));
  std::string out;
  EXPECT_EQ(ota({"status", "--port", name, "--json", "--timeout", "1"}, &out), 5) << out;
  EXPECT_EQ(out.find("\"app_version\":7"), std::string::npos) << out;
  ::close(master);
  ::close(slave);
}

// HOST:PORT takes a name as the help says, not only a numeric address.
TEST_F(OtaCli, ListensOnAHostName) {
  std::string out;
  EXPECT_EQ(ota({"push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--listen", "localhost:0", "--timeout", "0.5"}, &out), 5);
  EXPECT_NE(out.find("listening on port"), std::string::npos) << out;
}

// ":PORT" is every interface, IPv6 as well as IPv4 (a device on an IPv6-only carrier dials the
// server's IPv6 address), on one socket; an IPv4 device is named as IPv4.
TEST_F(OtaCli, ListensOnEveryInterfaceIPv6AndIPv4) {
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--listen", ":0", "--json",
                "--timeout", "20"});
  const auto line = push.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(line && line->find("\"listening\"") != std::string::npos) << push.output();
  const auto port = static_cast<std::uint16_t>(std::stoi(field(*line, "port")));
  const int v4 = dial(std::to_string(port));
  EXPECT_GE(v4, 0) << "not on IPv4";
  const int v6 = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_loopback;
  EXPECT_EQ(::connect(v6, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0) << "not on IPv6: " << std::strerror(errno);
  // The first connection (IPv4) gets the session; the second, while the first is still young,
  // is turned away, and named.
  auto seen = [&] {
    const std::string& o = push.output();
    return o.find("connected from 127.0.0.1") != std::string::npos && o.find("connection from ::1") != std::string::npos;
  };
  while (!seen() && push.read_line(5s)) {
  }
  const std::string out = push.output();
  EXPECT_NE(out.find("device connected from 127.0.0.1"), std::string::npos) << out;
  EXPECT_NE(out.find("turned away a connection from ::1"), std::string::npos) << out;
  EXPECT_EQ(out.find("::ffff:"), std::string::npos) << out;
  push.signal(SIGINT);
  EXPECT_EQ(push.wait(10s), 130) << push.output();
  if (v4 >= 0) ::close(v4);
  ::close(v6);
}

TEST_F(OtaCli, NoDeviceTimesOutWithExitCode5) {
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ota({"push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--listen", "127.0.0.1:0", "--timeout", "1"}, &out), 5);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "--timeout 1 was not taken";
  // A serial port with nobody behind it: the wait for HELLO ends after --timeout too.
  int master = -1, slave = -1;
  char name[256];
  ASSERT_EQ(::openpty(&master, &slave, name, nullptr, nullptr), 0);
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_EQ(ota({"push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--port", name, "--timeout", "1"}, &out), 5) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 10s) << "--timeout 1 was not taken: " << out;
  ::close(master);
  ::close(slave);
  EXPECT_NE(out.find("timeout"), std::string::npos) << out;
  EXPECT_NE(out.find("no device: timeout"), std::string::npos) << "no device ever answered: " << out;
}

}  // namespace

// ---- ota serve: many devices over TCP ----------------------------------------------------------

class OtaServe : public OtaCli {
 protected:
  // `ota serve` of v2 (internal layout) on a port of the system's choosing, with `extra`.
  std::vector<std::string> serve_command(const std::vector<std::string>& extra, bool json) {
    std::vector<std::string> args{OTA_TOOL, "serve", make_ota(dir, ota::kInternalLayout, 2, 12000).string(), "--listen",
                                  "127.0.0.1:0"};
    if (json) args.push_back("--json");
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  // `ota serve` of v2 (internal layout) with --json and `extra`, run through `wrapper` if given
  // (a shell that sets a limit); waits for its listening port.
  std::unique_ptr<Process> serve(const std::vector<std::string>& extra, std::vector<std::string> wrapper = {}) {
    std::vector<std::string> args = std::move(wrapper);
    const auto command = serve_command(extra, true);
    args.insert(args.end(), command.begin(), command.end());
    auto p = std::make_unique<Process>(args);
    const auto line = p->wait_for("{\"t_ms\":", 10s);
    EXPECT_TRUE(line && line->find("\"listening\"") != std::string::npos) << p->output();
    if (line) port = field(*line, "port");
    return p;
  }
  // The same without --json, for its text output: the port from "listening on port N".
  std::unique_ptr<Process> serve_text(const std::vector<std::string>& extra) {
    auto p = std::make_unique<Process>(serve_command(extra, false));
    const auto line = p->wait_for("listening on port ", 10s);
    EXPECT_TRUE(line) << p->output();
    if (line) port = line->substr(18, line->find(' ', 18) - 18);
    return p;
  }
  std::unique_ptr<Process> device(std::uint64_t seed, const char* layout = "internal", std::uint32_t version = 1) {
    return std::make_unique<Process>(std::vector<std::string>{SIM_DEVICE, "--connect", "127.0.0.1:" + port, "--layout",
                                                              layout, "--seed", std::to_string(seed), "--version",
                                                              std::to_string(version)});
  }
  // A simulated device (uid of ota-sim-device --seed `seed`) on a connection the test holds: it
  // says its boot HELLO and the server starts the download; then it says nothing unless the test
  // writes to the returned socket.
  int ghost_says_hello(Process& srv, std::uint64_t seed) {
    sim::Device ghost(ota::kInternalLayout, seed);
    ghost.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
    ghost.boot();
    const int fd = dial(port);
    EXPECT_GE(fd, 0);
    const auto hello = ghost.take_output();
    EXPECT_EQ(::send(fd, hello.data(), hello.size(), 0), static_cast<ssize_t>(hello.size()));
    EXPECT_TRUE(next_event(srv, "start")) << srv.output();
    return fd;
  }
  // Reads the server's frames on `fd` until an ABORT (true), or the connection's end (false).
  static bool reads_abort(int fd) {
    ota::FrameDecoderBuffer<ota::kMaxChunk + 8> dec;
    std::uint8_t b[512];
    for (ssize_t n; (n = ::recv(fd, b, sizeof b, 0)) > 0;)
      for (ssize_t i = 0; i < n; ++i)
        if (dec.feed(b[i]) == ota::FrameDecoder::Event::frame &&
            dec.frame().type == static_cast<std::uint8_t>(ota::MsgType::abort))
          return true;
    return false;
  }
  std::string port;
};

// Three devices dial in while a fourth connection stays silent (a modem that connected and then
// said nothing): the three are updated side by side, each reported with its uid, and the silent
// one is dropped once the count is reached, not waited for (its hello timeout is 20 s).
TEST_F(OtaServe, UpdatesEveryDeviceThatDialsInSideBySide) {
  const auto t0 = std::chrono::steady_clock::now();
  auto srv = serve({"--devices", "3", "--timeout", "20"});
  const int silent = dial(port);
  ASSERT_GE(silent, 0);
  std::vector<std::unique_ptr<Process>> devs;
  for (std::uint64_t seed : {11, 12, 13}) devs.push_back(device(seed));
  ASSERT_EQ(srv->wait(60s), 0) << srv->output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s) << "waited for the silent connection";
  ::close(silent);
  const std::string out = srv->output();
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 3u) << out;
  std::set<std::string> uids;
  for (const auto& r : results) {
    EXPECT_EQ(field(r, "outcome"), "upgraded") << r;
    EXPECT_EQ(field(r, "device_version"), "2") << r;
    uids.insert(field(r, "uid"));
    // t_ms is the server's clock, as on every line (elapsed_ms is the connection's): a result
    // comes after its session's "done".
    for (const auto& d : lines_of(out, "done")) {
      if (field(d, "conn") != field(r, "conn")) continue;
      EXPECT_GE(std::stoull(field(r, "t_ms")), std::stoull(field(d, "t_ms"))) << r << "\n" << d;
    }
    EXPECT_GT(std::stoull(field(r, "t_ms")), std::stoull(field(r, "elapsed_ms"))) << r;
  }
  EXPECT_EQ(uids.size(), 3u) << out;
  // Progress lines name their device too.
  std::set<std::string> progressing;
  for (const auto& p : lines_of(out, "progress")) progressing.insert(field(p, "uid"));
  EXPECT_EQ(progressing, uids) << out;
  const auto summary = lines_of(out, "summary");
  ASSERT_EQ(summary.size(), 1u) << out;
  EXPECT_EQ(field(summary[0], "devices"), "3");
  EXPECT_EQ(field(summary[0], "ok"), "3");
  EXPECT_EQ(field(summary[0], "exit"), "0");
  // Connection 1 is the silent one: it connected first and ended without a device.
  bool silent_dropped = false;
  for (const auto& l : lines_of(out, "disconnect")) silent_dropped = silent_dropped || (field(l, "conn") == "1" && field(l, "uid").empty());
  EXPECT_TRUE(silent_dropped) << out;
  for (auto& d : devs) EXPECT_TRUE(d->wait_for("boot 2: application v2 (installed)", 10s)) << d->output();
}

// Each device gets its own outcome: one that cannot take the image is refused, another is
// upgraded, and the exit code is the refusal's.
TEST_F(OtaServe, ReportsEachDevicesOwnOutcome) {
  auto srv = serve({"--devices", "2"});
  auto good = device(21);
  auto other_layout = device(22, "external");
  EXPECT_EQ(srv->wait(60s), 3) << srv->output();
  const std::string out = srv->output();
  std::map<std::string, std::string> by_outcome;
  for (const auto& r : lines_of(out, "result")) by_outcome[field(r, "outcome")] = r;
  ASSERT_EQ(by_outcome.size(), 2u) << out;
  ASSERT_TRUE(by_outcome.count("upgraded") && by_outcome.count("refused")) << out;
  EXPECT_NE(field(by_outcome["refused"], "detail").find("internal layout"), std::string::npos) << out;
  EXPECT_NE(field(by_outcome["refused"], "uid"), field(by_outcome["upgraded"], "uid"));
  const auto summary = lines_of(out, "summary");
  ASSERT_EQ(summary.size(), 1u) << out;
  EXPECT_EQ(field(summary[0], "ok"), "1");
  EXPECT_EQ(field(summary[0], "failed"), "1");
}

// Fewer devices than --devices asked for: --idle ends the wait, exit 5 (timeout), and the ones
// that came are reported; none at all is exit 5 too. Without --devices, Ctrl-C ends a serve:
// exit 130, with the summary.
TEST_F(OtaServe, IdleAndCtrlCEndAServeWithASummary) {
  {
    auto nobody = serve({"--idle", "0.5"});
    EXPECT_EQ(nobody->wait(30s), 5) << "no device came: not a success: " << nobody->output();
  }
  {
    auto srv = serve({"--devices", "2", "--idle", "3"});
    auto d = device(31);
    EXPECT_EQ(srv->wait(60s), 5) << srv->output();
    const auto summary = lines_of(srv->output(), "summary");
    ASSERT_EQ(summary.size(), 1u) << srv->output();
    EXPECT_EQ(field(summary[0], "devices"), "1");
    EXPECT_EQ(field(summary[0], "ok"), "1");
  }
  auto srv = serve({});
  auto d = device(32);
  ASSERT_TRUE(next_event(*srv, "result", 20s)) << srv->output();
  // A device still under way when Ctrl-C comes (START sent) is "stopped", not "failed":
  // its update may go on at its next connection.
  const int under_way = ghost_says_hello(*srv, 33);
  srv->signal(SIGINT);
  EXPECT_EQ(srv->wait(30s), 130) << srv->output();
  ::close(under_way);
  const auto summary = lines_of(srv->output(), "summary");
  ASSERT_EQ(summary.size(), 1u) << srv->output();
  EXPECT_EQ(field(summary[0], "ok"), "1");
  EXPECT_EQ(field(summary[0], "stopped"), "1") << srv->output();
  EXPECT_EQ(field(summary[0], "failed"), "0") << srv->output();
  EXPECT_EQ(field(summary[0], "exit"), "130");
}

// `ota serve --json | head -3`: the reader of the output goes away. The serve stops as Ctrl-C
// stops it, ABORTing a download under way, and ends with 130; it is not killed by SIGPIPE (141)
// between two frames.
TEST_F(OtaServe, AClosedOutputStopsTheServeAsCtrlCDoes) {
  auto srv = serve({});
  const int under_way = ghost_says_hello(*srv, 41);
  srv->close_output();
  auto d = device(42);  // its connection is the next line the serve writes
  EXPECT_EQ(srv->wait(30s), 130);
  EXPECT_TRUE(reads_abort(under_way)) << "the download under way got no ABORT";
  ::close(under_way);
}

// `ota serve --json | tee log`, then Ctrl-C in the terminal: SIGINT reaches both, tee dies, and
// the serve's first line after the SIGINT (its "abort" event) meets a closed output. That is
// still one stop asked for by the user: the serve ABORTs and waits for the device to confirm (up
// to 2 reply timeouts); the closed output is no second signal that would stop it at once.
TEST_F(OtaServe, CtrlCWithTheOutputClosedIsNotASecondSignal) {
  auto srv = serve({});
  const int under_way = ghost_says_hello(*srv, 43);
  srv->close_output();
  srv->signal(SIGINT);
  ASSERT_TRUE(reads_abort(under_way)) << "the download under way got no ABORT";
  // The serve waits for the device's answer: the connection stays open meanwhile.
  pollfd pfd{under_way, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, 700);
  ssize_t got = 1;
  std::uint8_t b[64];
  if (ready > 0) got = ::recv(under_way, b, sizeof b, MSG_DONTWAIT);
  EXPECT_NE(got, 0) << "the serve closed the connection at once, without waiting for the ABORT's answer";
  EXPECT_EQ(srv->wait(30s), 130);
  ::close(under_way);
}

// A device whose modem lost its carrier dials again while its old connection is still open on
// our side (half-open: no FIN, no RST). The new connection's HELLO names the same uid: it takes
// over, the old one is dropped, and the device is counted once, upgraded, not lost.
TEST_F(OtaServe, ADeviceThatDialsAgainOverAHalfOpenLinkTakesOver) {
  auto srv = serve({"--devices", "1", "--timeout", "30"});
  const int fd = ghost_says_hello(*srv, 41);  // the same uid as ota-sim-device --seed 41
  // A modem notices the lost carrier and dials again after a while; by then the old connection
  // has been quiet longer than a reply timeout (1.5 s).
  std::this_thread::sleep_for(1600ms);
  auto again = device(41);
  EXPECT_EQ(srv->wait(60s), 0) << srv->output();
  ::close(fd);
  const std::string out = srv->output();
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 1u) << out;
  EXPECT_EQ(field(results[0], "outcome"), "upgraded") << out;
  EXPECT_EQ(field(results[0], "conn"), "2") << out;
  bool old_dropped = false;
  for (const auto& l : lines_of(out, "disconnect"))
    old_dropped = old_dropped || (field(l, "conn") == "1" && field(l, "uid") == field(results[0], "uid"));
  EXPECT_TRUE(old_dropped) << out;
  const auto summary = lines_of(out, "summary");
  ASSERT_EQ(summary.size(), 1u) << out;
  EXPECT_EQ(field(summary[0], "devices"), "1") << out;
  EXPECT_EQ(field(summary[0], "lost"), "0") << out;
}

// Out of file descriptors (here: a limit that leaves room for one connection, for six devices): a
// device that cannot be accepted waits in the backlog, the failure is said once, and it is served
// as soon as a descriptor is free. Never a server that stops accepting.
TEST_F(OtaServe, OutOfDescriptorsTheNextDeviceWaitsAndIsServed) {
  // Descriptors 0-2 (Process passes nothing else), the tool's six (epoll, eventfd, timerfd, the
  // signal pipe, the listening socket), and one for a connection.
  auto srv = serve({"--devices", "6"}, {"/bin/sh", "-c", "ulimit -n 10 && exec \"$0\" \"$@\""});
  ASSERT_FALSE(port.empty()) << srv->output();
  std::vector<std::unique_ptr<Process>> devs;
  for (std::uint64_t seed : {51, 52, 53, 54, 55, 56}) devs.push_back(device(seed));
  ASSERT_EQ(srv->wait(60s), 0) << srv->output();
  const std::string out = srv->output();
  EXPECT_EQ(lines_of(out, "accept").size(), 1u) << "the limit left no failure to recover from: " << out;
  std::size_t upgraded = 0;
  for (const auto& r : lines_of(out, "result")) upgraded += field(r, "outcome") == "upgraded";
  EXPECT_EQ(upgraded, 6u) << out;
}

// Once the count is reached nothing more is accepted, so a device under way whose link then drops
// cannot come back: it is reported (link-lost, exit 6 on its line), but the devices asked for
// are the answer (exit 0).
TEST_F(OtaServe, ADeviceLostAfterTheCountIsReportedButDoesNotFailTheServe) {
  auto srv = serve({"--devices", "1"});
  const int fd = ghost_says_hello(*srv, 61);
  auto other = device(62);
  ASSERT_TRUE(next_event(*srv, "result")) << srv->output();
  ::close(fd);  // the ghost's link drops
  EXPECT_EQ(srv->wait(30s), 0) << srv->output();
  const std::string out = srv->output();
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 2u) << out;
  EXPECT_EQ(field(results[1], "outcome"), "link-lost") << out;
  EXPECT_EQ(field(results[1], "exit"), "6") << out;
  const auto summary = lines_of(out, "summary");
  ASSERT_EQ(summary.size(), 1u) << out;
  EXPECT_EQ(field(summary[0], "lost"), "1") << out;
  EXPECT_EQ(field(summary[0], "exit"), "0") << out;
}

// A device that comes back after it ended (here: the same uid, reflashed with v1 in between) is
// one device: its second result says "again", the summary counts it once.
TEST_F(OtaServe, ADeviceThatComesBackIsOneDeviceWithASecondResult) {
  auto srv = serve({"--idle", "3"});
  auto first = device(71);
  ASSERT_TRUE(next_event(*srv, "result")) << srv->output();
  first.reset();
  auto second = device(71);
  EXPECT_EQ(srv->wait(60s), 0) << srv->output();
  const std::string out = srv->output();
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 2u) << out;
  EXPECT_EQ(field(results[0], "again"), "false") << out;
  EXPECT_EQ(field(results[1], "again"), "true") << out;
  EXPECT_EQ(field(results[0], "uid"), field(results[1], "uid")) << out;
  const auto summary = lines_of(out, "summary");
  ASSERT_EQ(summary.size(), 1u) << out;
  EXPECT_EQ(field(summary[0], "devices"), "1") << out;
}

// Two devices with one uid (a clone): while the first one's update talks, the second is turned
// away ("duplicate"), not allowed to take over its download. Once the first is gone, the second
// is served.
TEST_F(OtaServe, ASecondDeviceWithTheSameUidIsTurnedAwayWhileTheFirstTalks) {
  auto srv = serve({"--devices", "1"});
  const int fd = ghost_says_hello(*srv, 91);
  auto clone = device(91);
  // The first device keeps talking (a frame delimiter every 100 ms: bytes, no frame), so its
  // connection is never the quiet one a redial would replace, however slow the machine.
  bool turned_away = false;
  for (int i = 0; i < 100 && !turned_away; ++i) {
    const std::uint8_t zero = 0;
    ASSERT_EQ(::send(fd, &zero, 1, 0), 1);
    while (const auto l = srv->read_line(100ms)) turned_away = turned_away || l->find("\"event\":\"duplicate\"") != std::string::npos;
  }
  ASSERT_TRUE(turned_away) << srv->output();
  EXPECT_TRUE(clone->wait_for("boot 1", 10s));
  EXPECT_EQ(clone->wait(10s), 0) << "the clone's connection was closed";
  ::close(fd);  // the first device goes away
  auto back = device(91);
  EXPECT_EQ(srv->wait(30s), 0) << srv->output();
  const auto results = lines_of(srv->output(), "result");
  ASSERT_EQ(results.size(), 1u) << srv->output();
  EXPECT_EQ(field(results[0], "outcome"), "upgraded") << srv->output();
}

// The text output is for a person: a device that dials again after it ended, up to date, is not
// shown again (a modem redials every time its connection closes).
TEST_F(OtaServe, TheTextOutputLeavesOutRedialsOfDevicesAlreadyDone) {
  auto served = serve_text({"--idle", "3"});
  ASSERT_FALSE(port.empty()) << served->output();
  Process& srv = *served;
  auto first = device(81);
  ASSERT_TRUE(srv.wait_for("device ", 10s)) << srv.output();  // its result line
  first.reset();
  auto redial = device(81, "internal", 2);  // the same device, now running v2: up to date
  EXPECT_EQ(srv.wait(60s), 0) << srv.output();
  const std::string out = srv.output();
  EXPECT_EQ(out.find("up-to-date"), std::string::npos) << out;
  EXPECT_NE(out.find(": upgraded: running v2 ("), std::string::npos) << out;
  EXPECT_NE(out.find("1 device(s): 1 upgraded or up to date"), std::string::npos) << out;
  EXPECT_TRUE(redial->wait_for("boot 1: application v2", 10s)) << redial->output();
}

namespace {
// A second Ctrl-C while the push waits for the device's answer to its ABORT stops it at once,
// and the result is still `interrupted` (130), not a session left pending (exit 8).
TEST_F(OtaCli, ASecondCtrlCWhileTheAbortIsUnansweredIsStillInterrupted) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_NO_FATAL_FAILURE(open_raw_pty(master, slave, name));
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--port", name, "--json",
                "--timeout", "20"});
  ASSERT_TRUE(next_event(push, "open")) << push.output();
  ASSERT_NO_FATAL_FAILURE(say_hello(master, 1));
  ASSERT_TRUE(next_event(push, "start")) << push.output();  // START sent; the "device" says nothing more
  push.signal(SIGINT);
  ASSERT_TRUE(next_event(push, "abort")) << push.output();  // waiting for the ABORT's answer (3 s)
  push.signal(SIGINT);                                       // the user insists
  EXPECT_EQ(push.wait(10s), 130) << push.output();
  const auto results = lines_of(push.output(), "result");
  ASSERT_EQ(results.size(), 1u) << push.output();
  EXPECT_EQ(field(results[0], "outcome"), "interrupted") << results[0];
  ::close(master);
  ::close(slave);
}

// `nohup ota serve ...` (or a service started with SIGHUP ignored) survives its terminal: a
// SIGHUP ignored when the tool started stays ignored (asio's signal_set would install a handler
// whatever the inherited disposition).
TEST_F(OtaCli, AHangupIgnoredAtStartStaysIgnored) {
  const std::string img = make_ota(dir, ota::kInternalLayout, 2, 9000).string();
  auto* const old = std::signal(SIGHUP, SIG_IGN);  // as nohup does; inherited across fork and exec
  Process serve({OTA_TOOL, "serve", img, "--listen", "127.0.0.1:0", "--json"});
  std::signal(SIGHUP, old);
  ASSERT_TRUE(serve.wait_for("{\"t_ms\":", 10s)) << serve.output();  // listening
  serve.signal(SIGHUP);
  const auto summary = serve.wait_for("{\"t_ms\":", 1500ms);
  EXPECT_FALSE(summary) << "nohup'ed serve stopped on SIGHUP: " << *summary;
  serve.signal(SIGINT);
  EXPECT_EQ(serve.wait(10s), 130) << serve.output();
}

// The .ota header's layout and version are what `image info`, push and serve go by; the device
// goes by the app info inside the image (client.cpp layout_check; the version it reports after
// the install). An .ota whose header contradicts its own app info (another tool, an older ota, a
// hand-edited header with its CRC redone) is refused as a bad input (exit 9) before any START
// (it was downloaded in full and refused by the device, or installed and called "upgrade-failed").
TEST_F(OtaCli, AnOtaWhoseHeaderContradictsItsAppInfoIsRefusedBeforeStart) {
  const fs::path fw = OTA_FIRMWARE_DIR;
  std::vector<std::uint8_t> ext_app;  // the real example application v2, built for the external layout
  ASSERT_FALSE(ota::host::load_file(fw / "external" / "app-v2.bin", ext_app)) << "firmware not built";
  ASSERT_LE(ext_app.size(), ota::kInternalLayout.image_limit);
  const auto lie = write("layout-lie.ota", ota::host::encode_ota_file({ota::LayoutId::internal, 2, 0x08002000, ext_app}));
  std::string out;
  EXPECT_EQ(ota({"image", "info", lie.string()}, &out), 9) << out;
  SimDeviceOnPty dev("internal");
  ASSERT_FALSE(dev.pty.empty());
  EXPECT_EQ(ota({"push", lie.string(), "--port", dev.pty, "--json"}, &out), 9) << out;
  EXPECT_TRUE(lines_of(out, "start").empty()) << "the image went to the device: " << out;
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 1u) << out;
  EXPECT_EQ(field(results[0], "outcome"), "bad-input") << results[0];

  // The version: the header says 3, the application inside says 2.
  std::vector<std::uint8_t> int_app;
  ASSERT_FALSE(ota::host::load_file(fw / "internal" / "app-v2.bin", int_app));
  const auto v3 = write("version-lie.ota", ota::host::encode_ota_file({ota::LayoutId::internal, 3, 0x08002000, int_app}));
  EXPECT_EQ(ota({"image", "info", v3.string()}, &out), 9) << out;
  EXPECT_EQ(ota({"push", v3.string(), "--port", dev.pty, "--json"}, &out), 9) << out;
  EXPECT_TRUE(lines_of(out, "start").empty()) << "the image went to the device: " << out;
}

// `ota args` with 1 GB of memory at most: of address space (ulimit -v), or, in a build with
// AddressSanitizer (make test-sanitize), whose shadow memory takes terabytes of address space,
// of resident memory (its hard_rss_limit_mb). Over the limit the tool dies (not exit 9).
namespace {
std::vector<std::string> memory_limited(const std::string& args) {
#if defined(__SANITIZE_ADDRESS__)
  const std::string limit = "export ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=1024\"; ";
#else
  const std::string limit = "ulimit -v 1048576; ";
#endif
  return {"/bin/sh", "-c", limit + "exec " + std::string(OTA_TOOL) + " " + args};
}
}  // namespace

// An input that never ends (/dev/zero, /dev/urandom, a character device given by mistake) is
// read no further than any firmware could be, and refused (exit 9; it was read until memory ran
// out: bad_alloc, exit 134, no --json result line). Run under a 1 GB memory limit so that the
// test cannot take the machine's memory. (A FIFO without a writer waits for ever, as `cat`.)
TEST_F(OtaCli, InputsThatNeverEndAreRefusedNotReadForEver) {
  {
    Process info(memory_limited("image info /dev/zero"));
    EXPECT_EQ(info.wait(30s), 9) << "/dev/zero: " << info.output();
  }
  {
    Process push(memory_limited("push /dev/zero --port /dev/null --json"));
    EXPECT_EQ(push.wait(30s), 9) << "/dev/zero: " << push.output();
    EXPECT_EQ(lines_of(push.output(), "result").size(), 1u) << push.output();
  }
  {
    Process build(memory_limited("image build /dev/zero -o " + (dir / "z.ota").string() + " -l internal -v 1"));
    EXPECT_EQ(build.wait(30s), 9) << "/dev/zero: " << build.output();
  }
}

// A 2 GB file (a disk image or a core dump given by mistake; sparse here, so it costs no disk) is
// refused as too large (exit 9) by its size, unread (it took ~10 s and 2 GB of RAM to be told it
// has no OTAI header, and with less memory the tool aborted, exit 134, no --json result line).
TEST_F(OtaCli, AHugeInputFileIsRefusedWithoutReadingItWhole) {
  const auto ota_file = make_ota(dir, ota::kInternalLayout, 2, 9000);
  const fs::path big = dir / "big.ota", bin = dir / "big.bin";
  fs::copy_file(ota_file, big);
  fs::resize_file(big, 2ull << 30);  // a valid image, then 2 GB of (sparse) zeros
  fs::copy_file(fs::path(OTA_FIRMWARE_DIR) / "internal" / "app-v2.bin", bin);
  fs::resize_file(bin, 2ull << 30);
  {
    Process info(memory_limited("image info " + big.string()));
    EXPECT_EQ(info.wait(30s), 9) << info.output();
  }
  {
    Process push(memory_limited("push " + big.string() + " --port /dev/null --json"));
    EXPECT_EQ(push.wait(30s), 9) << push.output();
    EXPECT_EQ(lines_of(push.output(), "result").size(), 1u) << push.output();
  }
  {
    Process build(memory_limited("image build " + bin.string() + " -o " + (dir / "b.ota").string()));
    EXPECT_EQ(build.wait(30s), 9) << build.output();
    EXPECT_FALSE(fs::exists(dir / "b.ota"));
  }
}

// `-o` onto what is not a regular file is written through, never replaced by a regular file (as
// it was, exit 0): a FIFO (a script that pipes the image on), a device node (`-o /dev/null` for a
// dry run: run as root, as in many CI containers, the system's /dev/null was replaced), a symlink
// (`current.ota -> releases/v2.ota`: the file it names gets the image, the link stays).
TEST_F(OtaCli, AnOutputThatIsNotARegularFileIsNotReplaced) {
  const auto elf = (fs::path(OTA_FIRMWARE_DIR) / "internal" / "app-v2.elf").string();
  std::string out;
  const fs::path fifo = dir / "pipe.ota";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // a reader, so that a write goes through
  ASSERT_GE(reader, 0);
  ota({"image", "build", elf, "-o", fifo.string()}, &out);
  EXPECT_TRUE(fs::is_fifo(fifo)) << "the FIFO was replaced by a regular file: " << out;
  char buf[64];
  EXPECT_GT(::read(reader, buf, sizeof buf), 0) << "the FIFO's reader got nothing";
  ::close(reader);
  // A character device: a null device of our own (root only; /dev/null itself is left alone).
  const fs::path null = dir / "null";
  if (::mknod(null.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0) {
    ota({"image", "build", elf, "-o", null.string()}, &out);
    EXPECT_TRUE(fs::is_character_file(null)) << "-o onto a device node replaced it by a regular file: " << out;
  }
  // A symlink to the release file: the file it names gets the image, the link stays.
  const fs::path target = dir / "v2.ota", link = dir / "current.ota";
  std::ofstream(target) << "old";
  fs::create_symlink(target, link);
  EXPECT_EQ(ota({"image", "build", elf, "-o", link.string()}, &out), 0) << out;
  EXPECT_TRUE(fs::is_symlink(link)) << "the symlink was replaced by a regular file";
  EXPECT_GT(fs::file_size(target), 100u) << "the file the link names was not written";
}

// An image with two app info records that disagree (OTA_APP_INFO has internal linkage, so a
// second translation unit, a library say, can put its own record in .ota_app_info) is refused
// with a clear error (exit 9), no .ota written: which record is the image's cannot be told (it
// was built from the first, here v1 of "some-library", though the application reports v3 of
// "weather-station" in HELLO: a mislabelled .ota).
TEST_F(OtaCli, AnImageWithTwoContradictingAppInfoRecordsIsRefused) {
  auto img = sim::make_app_image(ota::kInternalLayout, 3, 4000);
  const auto lib = ota::AppInfo::make(ota::LayoutId::internal, 1, "some-library");
  const auto app = ota::AppInfo::make(ota::LayoutId::internal, 3, "weather-station");
  std::memcpy(img.data() + 0x110, &lib, sizeof lib);
  std::memcpy(img.data() + 0x130, &app, sizeof app);
  std::string out;
  EXPECT_EQ(ota({"image", "build", write("two.bin", img).string(), "-o", (dir / "two.ota").string()}, &out), 9) << out;
  EXPECT_FALSE(fs::exists(dir / "two.ota")) << out;
  // Two that differ in the link rate only (a library built for another OTA_USART1_BAUD).
  const auto slow = app.at_link_baud(9600), fast = app.at_link_baud(115200);
  std::memcpy(img.data() + 0x110, &slow, sizeof slow);
  std::memcpy(img.data() + 0x130, &fast, sizeof fast);
  EXPECT_EQ(ota({"image", "build", write("rates.bin", img).string(), "-o", (dir / "rates.ota").string()}, &out), 9)
      << out;
  EXPECT_NE(out.find("at 9600 baud at offset 272, version 3 of product"), std::string::npos) << out;
}

// An .ota whose header puts the binary anywhere but at its layout's application address (here
// 0x08004000: built for another base by another tool; its reset handler, 0x08002101, still falls
// inside the image) is refused as a bad input (exit 9) before any START (it was called "status:
// ok" and pushed, to be stored and started at 0x08002000).
TEST_F(OtaCli, AnOtaForAnotherLoadAddressIsRefusedBeforeStart) {
  const auto file = write("at-0x08004000.ota", ota::host::encode_ota_file(
      {ota::LayoutId::internal, 2, 0x08004000, sim::make_app_image(ota::kInternalLayout, 2, 9000)}));
  std::string out;
  EXPECT_EQ(ota({"image", "info", file.string()}, &out), 9) << out;
  SimDeviceOnPty dev("internal");
  ASSERT_FALSE(dev.pty.empty());
  EXPECT_EQ(ota({"push", file.string(), "--port", dev.pty, "--json"}, &out), 9) << out;
  EXPECT_TRUE(lines_of(out, "start").empty()) << "the image went to the device: " << out;
}

// A file whose read fails (EIO: a failing disk or USB stick, a network share; here
// /proc/self/mem, whose first page is unmapped, as a reliable source of EIO) is "cannot read ...:
// Input/output error", exit 9, with a --json result line (libstdc++'s filebuf threw
// std::ios_failure out of istreambuf_iterator: the tool died, exit 134).
TEST_F(OtaCli, AFileThatCannotBeReadIsABadInputNotACrash) {
  if (!fs::exists("/proc/self/mem")) GTEST_SKIP() << "no /proc";
  std::string out;
  EXPECT_EQ(ota({"image", "info", "/proc/self/mem"}, &out), 9) << out;
  EXPECT_NE(out.find("cannot read /proc/self/mem"), std::string::npos) << out;
  EXPECT_EQ(ota({"push", "/proc/self/mem", "--port", "/dev/null", "--json"}, &out), 9) << out;
  EXPECT_EQ(lines_of(out, "result").size(), 1u) << out;
  EXPECT_EQ(ota({"image", "build", "/proc/self/mem", "-o", (dir / "m.ota").string(), "-l", "internal", "-v", "1"}, &out), 9) << out;
  EXPECT_NE(out.find("cannot read /proc/self/mem"), std::string::npos) << out;
}

// Intel HEX input that holds two images is refused (exit 9), no .ota written: (1) two files
// joined with cat (records after the first end-of-file record); (2) two applications merged into
// one file (v2's data records, then v1's at the same addresses, one end-of-file record: data given
// twice for one address). Both were built silently, (2) into a blend of 4848 bytes labelled v2.
TEST_F(OtaCli, IntelHexWithTwoImagesInItIsRefused) {
  const fs::path fw = fs::path(OTA_FIRMWARE_DIR) / "internal";
  std::vector<std::uint8_t> v2, v1;
  ASSERT_FALSE(ota::host::load_file(fw / "app-v2.hex", v2));
  ASSERT_FALSE(ota::host::load_file(fw / "app.hex", v1));
  auto joined = v2;
  joined.insert(joined.end(), v1.begin(), v1.end());
  std::string out;
  EXPECT_EQ(ota({"image", "build", write("joined.hex", joined).string(), "-o", (dir / "j.ota").string()}, &out), 9) << out;
  EXPECT_FALSE(fs::exists(dir / "j.ota"));
  // v2 without its end-of-file record, then v1's data records and its end-of-file record.
  const std::string eof = ":00000001FF";
  std::string a(v2.begin(), v2.end()), b(v1.begin(), v1.end());
  ASSERT_NE(a.find(eof), std::string::npos);
  a.erase(a.find(eof));
  std::vector<std::uint8_t> merged(a.begin(), a.end());
  merged.insert(merged.end(), b.begin(), b.end());
  EXPECT_EQ(ota({"image", "build", write("merged.hex", merged).string(), "-o", (dir / "m.ota").string()}, &out), 9) << out;
  if (fs::exists(dir / "m.ota")) {
    ota::host::Image img;
    std::vector<std::uint8_t> v2_bin, v1_bin;
    ASSERT_FALSE(ota::host::load_ota_file(dir / "m.ota", img));
    ASSERT_FALSE(ota::host::load_file(fw / "app-v2.bin", v2_bin));
    ASSERT_FALSE(ota::host::load_file(fw / "app.bin", v1_bin));
    EXPECT_TRUE(img.bytes == v2_bin || img.bytes == v1_bin)
        << "the image built is neither v2 (" << v2_bin.size() << " bytes) nor v1 (" << v1_bin.size()
        << " bytes) but a blend of " << img.bytes.size() << " bytes: " << out;
  }
}
// `-o` onto a link to an open descriptor (/dev/stdout, /dev/fd/1) writes into what the shell
// opened: a pipe gets the .ota (`ota image build app.elf -o /dev/stdout | ssh host ...`). (Such a
// link's text is "pipe:[N]", no path: followed by hand it named a file to create.)
TEST_F(OtaCli, OutputToAStdoutLinkThroughAPipeIsWritten) {
  const auto elf = (fs::path(OTA_FIRMWARE_DIR) / "internal" / "app-v2.elf").string();
  for (const char* link : {"/dev/stdout", "/dev/fd/1"}) {
    SCOPED_TRACE(link);
    Process p({"/bin/sh", "-c", std::string(OTA_TOOL) + " image build " + elf + " -o " + link + " | wc -c"});
    EXPECT_EQ(p.wait(30s), 0) << p.output();
    EXPECT_EQ(p.output().find("cannot write"), std::string::npos) << p.output();
    // wc -c prints how many bytes came through the pipe (the last line; the summary, on stderr,
    // comes before it): the .ota's header alone is 32.
    std::string last = p.output();
    while (!last.empty() && last.back() == '\n') last.pop_back();
    last = last.substr(last.rfind('\n') + 1);
    std::uint64_t bytes = 0;
    for (char ch : last)
      if (ch >= '0' && ch <= '9') bytes = bytes * 10 + static_cast<std::uint64_t>(ch - '0');
    EXPECT_GT(bytes, 100u) << "the pipe got nothing: " << p.output();
  }
}

// The same with stdout appended to a file (`printf HEADER > b; ota image build app.elf -o
// /dev/stdout >> b`: a bundle, a log): the .ota is appended, what the file held stays (the file
// was replaced, written beside and renamed over).
TEST_F(OtaCli, OutputToAStdoutLinkAppendedToAFileKeepsWhatTheFileHeld) {
  const auto elf = (fs::path(OTA_FIRMWARE_DIR) / "internal" / "app-v2.elf").string();
  for (const char* link : {"/dev/stdout", "/dev/fd/1"}) {
    SCOPED_TRACE(link);
    const fs::path bundle = dir / "bundle.bin";
    std::ofstream(bundle) << "HEADER";
    Process p({"/bin/sh", "-c", std::string(OTA_TOOL) + " image build " + elf + " -o " + link + " >> " + bundle.string()});
    EXPECT_EQ(p.wait(30s), 0) << p.output();
    std::ifstream in(bundle, std::ios::binary);
    std::string head(6, '\0');
    in.read(head.data(), 6);
    EXPECT_EQ(head, "HEADER") << "the file stdout was appended to was replaced, its contents lost";
    const fs::path named = dir / "named.ota";
    std::string out;
    ASSERT_EQ(ota({"image", "build", elf, "-o", named.string()}, &out), 0) << out;
    EXPECT_EQ(fs::file_size(bundle), 6 + fs::file_size(named)) << "the bundle holds more than HEADER and the .ota";
  }
}

// The .ota written through stdout is an .ota and nothing else: the summary line ("/dev/stdout:
// internal layout, version 2, ...") goes to stderr then (it went into the pipe behind the image,
// or over its header when stdout was redirected to a file).
TEST_F(OtaCli, AnImageBuiltOntoStdoutIsAUsableOtaWithTheSummaryOnStderr) {
  const auto elf = (fs::path(OTA_FIRMWARE_DIR) / "internal" / "app-v2.elf").string();
  {
    Process p({"/bin/sh", "-c", std::string(OTA_TOOL) + " image build " + elf + " -o /dev/stdout | " + OTA_TOOL +
                                    " image info /dev/stdin"});
    EXPECT_EQ(p.wait(30s), 0) << "the piped .ota does not pass `ota image info`: " << p.output();
  }
  const fs::path file = dir / "redirected.ota", named = dir / "named.ota";
  Process p({"/bin/sh", "-c", std::string(OTA_TOOL) + " image build " + elf + " -o /dev/stdout > " + file.string()});
  ASSERT_EQ(p.wait(30s), 0) << p.output();
  EXPECT_NE(p.output().find("/dev/stdout: internal layout, version 2"), std::string::npos)
      << "no summary on stderr: " << p.output();
  std::string out;
  ASSERT_EQ(ota({"image", "build", elf, "-o", named.string()}, &out), 0) << out;
  EXPECT_NE(out.find(named.string() + ": internal layout, version 2"), std::string::npos) << out;
  EXPECT_EQ(fs::file_size(file), fs::file_size(named)) << "the redirected .ota differs from one written by name";
  EXPECT_EQ(ota({"image", "info", file.string()}, &out), 0) << "the redirected .ota does not pass `ota image info`: " << out;
}

// `-o a` where a -> b -> a (a loop: a release link pointed at the wrong name) names no file: the
// output cannot be written (exit 9, as `cp` says "Too many levels of symbolic links"), and the
// links are left as they are (the link `a` was replaced by a regular file, exit 0).
TEST_F(OtaCli, OutputOntoASymlinkLoopIsRefusedNotReplaced) {
  const auto elf = (fs::path(OTA_FIRMWARE_DIR) / "internal" / "app-v2.elf").string();
  const fs::path a = dir / "a.ota", b = dir / "b.ota";
  fs::create_symlink(b, a);
  fs::create_symlink(a, b);
  std::string out;
  EXPECT_EQ(ota({"image", "build", elf, "-o", a.string()}, &out), 9) << out;
  EXPECT_TRUE(fs::is_symlink(a)) << "the link was replaced by a regular file: " << out;
  EXPECT_TRUE(fs::is_symlink(b));
}

// A HEX file padded after its end-of-file record with Ctrl-Z (0x1A: an XMODEM/serial transfer
// pads to its block size, and DOS-era tools end text with it) is one image: it is built. (Only
// records after the end-of-file record are two files joined.)
TEST_F(OtaCli, IntelHexPaddedWithCtrlZAfterItsEndIsBuilt) {
  const fs::path fw = fs::path(OTA_FIRMWARE_DIR) / "internal";
  std::vector<std::uint8_t> v2;
  ASSERT_FALSE(ota::host::load_file(fw / "app-v2.hex", v2));
  v2.insert(v2.end(), 37, 0x1A);  // padded to a 128-byte block
  std::string out;
  EXPECT_EQ(ota({"image", "build", write("padded.hex", v2).string(), "-o", (dir / "p.ota").string()}, &out), 0) << out;
  EXPECT_TRUE(fs::exists(dir / "p.ota")) << out;
}
// docs/ota-tool.md, `ota serve --json`: every line but `listening` and the `summary` has `conn`, `uid` and
// `again` (progress lines had no `again`).
TEST_F(OtaServe, EveryJsonLineOfAConnectionHasConnUidAndAgain) {
  auto srv = serve({"--devices", "1", "--timeout", "20"});
  auto dev = device(7);
  ASSERT_EQ(srv->wait(60s), 0) << srv->output();
  const std::string out = srv->output();
  ASSERT_FALSE(lines_of(out, "progress").empty()) << out;
  std::set<std::string> lacking, kinds;  // "event: field" for each event kind whose line lacks a field
  for (std::size_t at = 0, nl; at < out.size(); at = nl + 1) {
    nl = out.find('\n', at);
    if (nl == std::string::npos) nl = out.size();
    const std::string l = out.substr(at, nl - at);
    if (l.rfind("{\"t_ms\":", 0) != 0) continue;
    const std::string event = field(l, "event");
    kinds.insert(event);
    if (event == "listening" || event == "summary") continue;
    for (const char* key : {"conn", "uid", "again"})
      if (l.find("\"" + std::string(key) + "\":") == std::string::npos) lacking.insert(event + ": " + key);
  }
  for (const char* kind : {"connect", "hello", "progress", "result", "summary"})
    EXPECT_TRUE(kinds.count(kind)) << "no " << kind << " line:\n" << out;
  std::string told;
  for (const auto& x : lacking) told += "\n  " + x;
  EXPECT_TRUE(lacking.empty()) << "lines without a field docs/ota-tool.md promises:" << told << "\n" << out;
}

// A modem redials just as the serve reaches --devices: its device's HELLO is half way through
// the line when the serve closes and drops the connection. The serve dropped it, because it is
// done: the line must not tell the operator that the device is on "a link at another baud rate"
// (the half frame is a HELLO cut short by the serve, not garble), nor that the link was lost.
TEST_F(OtaServe, AConnectionDroppedAtTheCountIsNotBlamedOnTheBaudRate) {
  auto srv = serve({"--devices", "1", "--timeout", "20"});
  // The redial: a device's HELLO, of which the first half has arrived.
  sim::Device redial(ota::kInternalLayout, 5);
  redial.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  redial.boot();
  const auto hello = redial.take_output();
  const auto frame_end = std::find(hello.begin(), hello.end(), std::uint8_t{0});  // the boot text's 0
  ASSERT_NE(frame_end, hello.end());
  const std::vector<std::uint8_t> half(frame_end + 1, frame_end + 1 + 20);
  ASSERT_EQ(std::count(half.begin(), half.end(), std::uint8_t{0}), 0);
  const int fd = dial(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(next_event(*srv, "connect")) << srv->output();
  ASSERT_EQ(::send(fd, half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));
  auto done = device(6, "internal", 2);  // up to date: the one device asked for ends at once
  EXPECT_EQ(srv->wait(30s), 0) << srv->output();
  ::close(fd);
  const std::string out = srv->output();
  std::string dropped;
  for (const auto& l : lines_of(out, "disconnect"))
    if (field(l, "conn") == "1") dropped = l;
  ASSERT_FALSE(dropped.empty()) << out;
  EXPECT_EQ(dropped.find("baud rate"), std::string::npos)
      << "a connection the serve closed itself is blamed on the link's rate: " << dropped;
  EXPECT_EQ(dropped.find("link lost"), std::string::npos)
      << "the serve closed the connection; no link was lost: " << dropped;
}

// A simulated device on a connection of its own, run by a thread of the test until the server
// closes the connection; every DATA frame for packet 0 has one byte of its chunk changed (and a
// valid frame CRC), so that only the image's total CRC-32 fails: "checksum-failed", every time.
void device_with_a_bad_link(sim::Device& dev, const std::string& port) {
  const int fd = dial(port);
  ASSERT_GE(fd, 0);
  ota::FrameDecoderBuffer<ota::kMaxChunk + 8> dec;
  auto flush = [&] {
    const auto out = dev.take_output();
    return out.empty() || ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size());
  };
  for (bool up = flush(); up; up = flush()) {
    std::uint8_t b[512];
    const ssize_t n = ::recv(fd, b, sizeof b, 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (dec.feed(b[i]) != ota::FrameDecoder::Event::frame) continue;
      const ota::Frame& f = dec.frame();
      std::vector<std::uint8_t> payload(f.payload, f.payload + f.len);
      if (f.type == static_cast<std::uint8_t>(ota::MsgType::data) && payload.size() > 10 && payload[0] == 0 &&
          payload[1] == 0)
        payload[10] ^= 0x5A;
      std::vector<std::uint8_t> frame(ota::encoded_size_max(payload.size()) + 1);
      const std::size_t len = ota::encode_frame(f.type, payload.data(), payload.size(), frame.data(), frame.size());
      dev.receive(frame.data(), len);
    }
  }
  ::close(fd);
}

// docs/ota-tool.md, `ota serve`: "The redials find the device up to date, and the text output
// leaves them out, as it leaves out the redials of a device that end as its last result did (a
// device the image is refused to, say); `--json` shows each". A device whose download fails its checksum dials again
// and fails again: the text output leaves out that redial's events, its result, and its progress
// (it used to print ten progress lines for a connection the output otherwise never names).
TEST_F(OtaServe, TheTextOutputLeavesOutTheProgressOfARedialThatEndsAsBefore) {
  auto served = serve_text({"--idle", "2"});
  ASSERT_FALSE(port.empty()) << served->output();
  Process& srv = *served;
  sim::Device dev(ota::kInternalLayout, 17);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  device_with_a_bad_link(dev, port);  // connection #1: checksum-failed
  device_with_a_bad_link(dev, port);  // #2, its redial: checksum-failed again
  EXPECT_EQ(srv.wait(60s), 4) << srv.output();
  const std::string out = srv.output();
  ASSERT_EQ(test::count_in(out, "\ndevice "), 1u) << "the redial's result is shown: " << out;
  ASSERT_EQ(test::count_in(out, "#2   done"), 0u) << "the redial's events are shown: " << out;
  EXPECT_EQ(test::count_in(out, "#2   progress"), 0u)
      << "the text output shows the progress of a redial it otherwise leaves out:\n" << out;
}

// A simulated device on a connection of its own: it takes the image, says RESULT ok, and its
// modem's connection drops with the reset that installs it (the connection is closed right after
// the RESULT). Returns once closed.
void device_that_drops_at_its_install(sim::Device& dev, const std::string& port) {
  const int fd = dial(port);
  ASSERT_GE(fd, 0);
  ota::FrameDecoderBuffer<ota::kMaxChunk + 8> dec;
  for (;;) {
    const auto out = dev.take_output();
    std::size_t upto = out.size();
    bool result = false;
    for (std::size_t i = 0; i < out.size() && !result; ++i)
      if (dec.feed(out[i]) == ota::FrameDecoder::Event::frame &&
          dec.frame().type == static_cast<std::uint8_t>(ota::MsgType::result)) {
        result = true;
        upto = i + 1;
      }
    if (upto && ::send(fd, out.data(), upto, MSG_NOSIGNAL) != static_cast<ssize_t>(upto)) break;
    if (result) break;
    std::uint8_t b[512];
    const ssize_t n = ::recv(fd, b, sizeof b, 0);
    if (n <= 0) break;
    dev.receive(b, static_cast<std::size_t>(n));
  }
  ::close(fd);
}

// docs/ota-tool.md, `ota serve`: it stops "after `--idle S` seconds in which no device had an update under
// way". A device that has just taken the whole image (RESULT ok) and is installing it has its
// update under way, and its modem's connection drops with that reset: the serve waits -t for it
// to dial again, not --idle (it used to report it lost, exit 6, while the device came back a
// moment later running the new image, to no server).
TEST_F(OtaServe, IdleDoesNotGiveUpOnADeviceInstallingTheImageItWasGiven) {
  auto srv = serve({"--idle", "1", "--timeout", "30"});
  sim::Device dev(ota::kInternalLayout, 18);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  device_that_drops_at_its_install(dev, port);
  std::this_thread::sleep_for(2500ms);  // the board installs, its modem dials again
  const int fd = dial(port);
  bool served = fd >= 0;
  if (served) {
    const auto out = dev.take_output();
    served = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size());
    std::uint8_t b[512];
    for (ssize_t n; served && (n = ::recv(fd, b, sizeof b, 0)) > 0;) {
      dev.receive(b, static_cast<std::size_t>(n));
      const auto more = dev.take_output();
      if (!more.empty()) ::send(fd, more.data(), more.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  }
  EXPECT_EQ(dev.running_version(), std::optional<std::uint32_t>(2)) << "the device did install the image";
  const int rc = srv->wait(30s);
  const std::string out = srv->output();
  EXPECT_TRUE(served) << "the serve was gone when the installing device dialled again:\n" << out;
  EXPECT_EQ(rc, 0) << out;
  for (const auto& r : lines_of(out, "result")) EXPECT_NE(field(r, "outcome"), "link-lost") << r;
}

// `ota push --listen`: the device takes the whole image (RESULT ok, "downloaded") and its modem's
// connection drops with the reset that installs it; it does not dial again within -t. The result
// says that the device holds the whole image and installs it, not only "link lost and the
// device did not reconnect", as for a link lost mid-download.
TEST_F(OtaCli, APushWhoseDeviceDropsAtItsInstallSaysTheImageWasDelivered) {
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 2, 12000).string(), "--listen", "127.0.0.1:0",
                "--json", "--timeout", "1"});
  const auto line = push.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(line) << push.output();
  sim::Device dev(ota::kInternalLayout, 19);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  device_that_drops_at_its_install(dev, field(*line, "port"));
  EXPECT_EQ(push.wait(30s), 6) << push.output();
  const std::string out = push.output();
  ASSERT_EQ(lines_of(out, "downloaded").size(), 1u) << out;
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 1u) << out;
  const std::string detail = field(results[0], "detail");
  EXPECT_TRUE(detail.find("download") != std::string::npos || detail.find("install") != std::string::npos)
      << "the result does not say the device got the whole image: " << detail;
}

// A simulated device on a connection of its own that takes `packets` DATA frames of a download
// (ACKs sent back), then its connection drops (a modem that loses its carrier). Returns once closed.
void device_that_drops_mid_download(sim::Device& dev, const std::string& port, int packets) {
  const int fd = dial(port);
  ASSERT_GE(fd, 0);
  ota::FrameDecoderBuffer<ota::kMaxChunk + 8> dec;
  int data = 0;
  for (bool up = true; up && data < packets;) {
    const auto out = dev.take_output();
    if (!out.empty() && ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) break;
    std::uint8_t b[512];
    const ssize_t n = ::recv(fd, b, sizeof b, 0);
    up = n > 0;
    for (ssize_t i = 0; up && i < n && data < packets; ++i) {
      dev.receive(&b[i], 1);
      if (dec.feed(b[i]) == ota::FrameDecoder::Event::frame &&
          dec.frame().type == static_cast<std::uint8_t>(ota::MsgType::data))
        ++data;
    }
  }
  const auto out = dev.take_output();  // the last ACKs
  if (!out.empty()) ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(200ms);
  ::close(fd);
}

// `ota push --listen`: the device takes the whole image (RESULT ok) and its modem's connection
// drops with the reset. It dials again, but its bootloader refused the staged image (a cell of
// staging that faded after the client's check: the install checks the CRC-32 again), so it runs v1
// with nothing staged, and the push starts the download over; that connection drops after a few
// packets and the device does not dial again within -t. (A device of the same uid in that state
// stands for it: the simulated one installs at once.) The result must not say that the device
// "holds the whole image, verified, and installs it": it holds a few packets of it.
TEST_F(OtaCli, APushWhoseLastLossWasMidDownloadDoesNotSayTheDeviceHoldsTheImage) {
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 2, 12000).string(), "--listen", "127.0.0.1:0",
                "--json", "--timeout", "2"});
  const auto line = push.wait_for("{\"t_ms\":", 10s);
  ASSERT_TRUE(line) << push.output();
  const std::string port = field(*line, "port");
  sim::Device dev(ota::kInternalLayout, 21);
  dev.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  dev.boot();
  device_that_drops_at_its_install(dev, port);
  ASSERT_EQ(dev.running_version(), std::optional<std::uint32_t>(2));
  bool waiting = false;  // the push has seen that connection go: the next one is a redial
  for (auto l = push.read_line(10s); l && !waiting; l = waiting ? l : push.read_line(10s))
    waiting = l->find("waiting for the device to dial again") != std::string::npos;
  ASSERT_TRUE(waiting) << push.output();
  sim::Device refused(ota::kInternalLayout, 21);  // the same uid, back on v1, nothing staged
  refused.factory_install(sim::make_app_image(ota::kInternalLayout, 1, 12 * 1024));
  refused.boot();
  device_that_drops_mid_download(refused, port, 3);
  EXPECT_EQ(push.wait(30s), 6) << push.output();
  const std::string out = push.output();
  ASSERT_EQ(lines_of(out, "connect").size(), 2u) << out;
  const auto results = lines_of(out, "result");
  ASSERT_EQ(results.size(), 1u) << out;
  const std::string detail = field(results[0], "detail");
  EXPECT_EQ(detail.find("holds the whole image"), std::string::npos)
      << "the device holds a few packets of a new download, not the whole image: " << detail << "\n" << out;
}

// `ota status --recover` (docs/ota-tool.md: "`--recover` asks the bootloader instead"; its help: "reset the device
// if its application answers") on a device whose application answers: as `ota push --recover`,
// status in text mode says at once "the application answers: reset the device so that its
// bootloader hears RECOVER" (on stderr), not only in the timeout's line once the wait is over.
TEST_F(OtaCli, StatusRecoverAsksForTheResetWhileItWaits) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_NO_FATAL_FAILURE(open_raw_pty(master, slave, name));
  Process status({OTA_TOOL, "status", "--port", name, "--recover", "--timeout", "30"});
  // Its first RECOVER frame: the port is open (and flushed); the application answers with HELLO.
  pollfd pfd{master, POLLIN, 0};
  ASSERT_GT(::poll(&pfd, 1, 10000), 0);
  std::uint8_t b[256];
  ASSERT_GT(::read(master, b, sizeof b), 0);
  say_hello(master, 1);
  bool asked = false;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!asked && std::chrono::steady_clock::now() < until) {
    if (const auto l = status.read_line(200ms)) asked = l->find("reset") != std::string::npos;
    while (::poll(&pfd, 1, 0) > 0 && ::read(master, b, sizeof b) > 0) {
    }
  }
  status.signal(SIGINT);
  EXPECT_EQ(status.wait(20s), 130) << status.output();
  ::close(master);
  ::close(slave);
  EXPECT_TRUE(asked) << "5 s after the application answered, nothing asked for a reset:\n" << status.output();
}
}  // namespace

// Intel HEX whose record fails its checksum (a byte changed in a copy or a transfer) is refused,
// not built into an image with the changed byte.
TEST_F(OtaCli, IntelHexWithARecordThatFailsItsChecksumIsRefused) {
  const fs::path fw = fs::path(OTA_FIRMWARE_DIR) / "internal";
  std::vector<std::uint8_t> hex;
  ASSERT_FALSE(ota::host::load_file(fw / "app-v2.hex", hex)) << "firmware not built";
  std::string text(hex.begin(), hex.end());
  const std::size_t line2 = text.find('\n') + 1, line3 = text.find('\n', line2) + 1;
  ASSERT_EQ(text[line3], ':');
  char& digit = text[line3 + 9];  // the record's first data byte
  digit = digit == '0' ? '1' : '0';
  const auto file = write("changed.hex", std::vector<std::uint8_t>(text.begin(), text.end()));
  std::vector<std::uint8_t> out;
  const ota::host::Error e = ota::host::read_firmware(file, ota::kInternalLayout.app.base, out);
  EXPECT_NE(e.text.find("line 3: checksum error"), std::string::npos) << e.text;
}

// An Intel HEX record whose length field disagrees with the bytes it holds (its checksum right) is
// refused, not read as far as the length field says.
TEST_F(OtaCli, IntelHexWithARecordLongerThanItsLengthFieldIsRefused) {
  std::ofstream(dir / "long.hex") << ":020000040800F2\n:01200000AABB7A\n:00000001FF\n";
  std::vector<std::uint8_t> out;
  const ota::host::Error e = ota::host::read_firmware(dir / "long.hex", ota::kInternalLayout.app.base, out);
  EXPECT_NE(e.text.find("line 2: length field does not match"), std::string::npos) << e.text;
}

// Intel HEX cut before its end-of-file record (a copy that stopped) is refused: its last records
// may be missing.
TEST_F(OtaCli, IntelHexWithoutItsEndOfFileRecordIsRefused) {
  const fs::path fw = fs::path(OTA_FIRMWARE_DIR) / "internal";
  std::vector<std::uint8_t> hex;
  ASSERT_FALSE(ota::host::load_file(fw / "app-v2.hex", hex)) << "firmware not built";
  std::string text(hex.begin(), hex.end());
  const std::size_t eof = text.find(":00000001FF");
  ASSERT_NE(eof, std::string::npos);
  text.erase(eof);
  const auto file = write("cut.hex", std::vector<std::uint8_t>(text.begin(), text.end()));
  std::vector<std::uint8_t> out;
  const ota::host::Error e = ota::host::read_firmware(file, ota::kInternalLayout.app.base, out);
  EXPECT_NE(e.text.find("no end-of-file record"), std::string::npos) << e.text;
}

// An .ota whose header was changed (any of its 28 bytes before the header's CRC) is refused as
// corrupted, even where the change leaves every field plausible.
TEST(OtaFile, AChangedHeaderIsRefusedAsCorrupted) {
  auto file = ota::host::encode_ota_file({ota::LayoutId::internal, 2, 0x08002000, sim::make_app_image(ota::kInternalLayout, 2, 4000)});
  ota::host::Image img;
  ASSERT_FALSE(ota::host::decode_ota_file(file, img));
  file[24] ^= 0x01;  // a byte no field reads
  const ota::host::Error e = ota::host::decode_ota_file(file, img);
  EXPECT_NE(e.text.find("image header is corrupted"), std::string::npos) << e.text;
}

// An image too short to hold the vector table's two words is unusable, and says so.
TEST(OtaFile, AnImageShorterThanAVectorTableIsUnusable) {
  const ota::host::Error e = ota::host::check_image(ota::kInternalLayout, std::vector<std::uint8_t>(7, 0x20));
  EXPECT_NE(e.text.find("image of 7 bytes holds no vector table"), std::string::npos) << e.text;
}

// An .ota of a format version this tool does not know (a later one's, its header CRC right) is
// refused, not read as if it were version 1.
TEST(OtaFile, AnUnknownFormatVersionIsRefused) {
  auto file = ota::host::encode_ota_file({ota::LayoutId::internal, 2, 0x08002000, sim::make_app_image(ota::kInternalLayout, 2, 4000)});
  file[4] = 2;
  ota::put_u32(&file[28], ota::crc32(file.data(), 28));
  ota::host::Image img;
  const ota::host::Error e = ota::host::decode_ota_file(file, img);
  EXPECT_NE(e.text.find("image format 2 is not supported"), std::string::npos) << e.text;
}

// A device that speaks a protocol this tool does not know is a protocol error: exit 8, which a
// script tells from a refusal (3) or a timeout (5).
TEST_F(OtaCli, ADeviceOfAnUnknownProtocolIsAProtocolErrorWithExitCode8) {
  int master = -1, slave = -1;
  char name[256];
  ASSERT_NO_FATAL_FAILURE(open_raw_pty(master, slave, name));
  Process push({OTA_TOOL, "push", make_ota(dir, ota::kInternalLayout, 2, 9000).string(), "--port", name, "--json",
                "--timeout", "20"});
  ASSERT_TRUE(next_event(push, "open")) << push.output();
  ASSERT_NO_FATAL_FAILURE(say_hello(master, 1, ota::kProtocolVersion + 1));
  EXPECT_EQ(push.wait(10s), 8) << push.output();
  const auto results = lines_of(push.output(), "result");
  ASSERT_EQ(results.size(), 1u) << push.output();
  EXPECT_EQ(field(results[0], "outcome"), "protocol-error") << results[0];
  ::close(master);
  ::close(slave);
}

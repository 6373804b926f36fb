// The device's update client through raw frames: every refusal leaves the application as it was,
// and the download rules (order, duplicates, gaps, corrupted frames, resume) hold.
#include <gtest/gtest.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "ota/app_info.hpp"
#include "ota/bytes.hpp"
#include "ota/crc.hpp"
#include "sim/device.hpp"
#include "sim/wire.hpp"
#include "support.hpp"

namespace {

using ota::Status;

// The client keeps a reference to its flash map: one made in the call itself would dangle.
static_assert(!std::is_constructible_v<ota::UpdateClient, ota::FlashMap&&, ota::Link&, const ota::DeviceInfo&>);
static_assert(!std::is_constructible_v<ota::UpdateClient, const ota::FlashMap&&, ota::Link&, const ota::DeviceInfo&>);
static_assert(!std::is_constructible_v<ota::FlagStore, const ota::FlashMap&&>);
static_assert(!std::is_constructible_v<ota::Journal, const ota::FlashMap&&>);
static_assert(!std::is_constructible_v<ota::Installer, const ota::FlashMap&&>);
static_assert(std::is_constructible_v<ota::Installer, const ota::FlashMap&>);
static_assert(std::is_constructible_v<ota::UpdateClient, const ota::FlashMap&, ota::Link&, const ota::DeviceInfo&>);
// Its frame decoder points into its own buffer: a copy or a move would decode into the original's.
static_assert(!std::is_copy_constructible_v<ota::UpdateClient> && !std::is_move_constructible_v<ota::UpdateClient>);
static_assert(!std::is_copy_assignable_v<ota::UpdateClient> && !std::is_move_assignable_v<ota::UpdateClient>);
static_assert(!std::is_copy_constructible_v<ota::FrameDecoderBuffer<64>> &&
              !std::is_move_constructible_v<ota::FrameDecoderBuffer<64>>);

// A scripted server: sends frames to the device and decodes what comes back.
struct Raw {
  explicit Raw(sim::Device& d) : dev(d) {}
  sim::Device& dev;
  ota::FrameDecoderBuffer<64> dec;
  std::vector<std::vector<std::uint8_t>> payloads;
  std::vector<std::uint8_t> types;

  void send(ota::MsgType t, const std::uint8_t* p, std::size_t n) {
    std::uint8_t buf[600];
    const std::size_t len = ota::encode_frame(static_cast<std::uint8_t>(t), p, n, buf, sizeof buf);
    dev.receive(buf, len);
  }
  void send_bytes(const std::vector<std::uint8_t>& b) { dev.receive(b.data(), b.size()); }
  // Collects the device's frames since the last call.
  void pump() {
    payloads.clear();
    types.clear();
    for (std::uint8_t b : dev.take_output())
      if (dec.feed(b) == ota::FrameDecoder::Event::frame) {
        const auto f = dec.frame();
        types.push_back(f.type);
        payloads.emplace_back(f.payload, f.payload + f.len);
      }
  }
  ota::Frame last() const {
    return ota::Frame{types.back(), payloads.back().data(), payloads.back().size()};
  }
  ota::StartReply start(const ota::Start& s) {
    std::uint8_t p[ota::Start::kSize];
    ota::encode(s, p);
    send(ota::MsgType::start, p, sizeof p);
    pump();
    ota::StartReply r{Status::unknown_message, 0};
    EXPECT_FALSE(types.empty());
    if (!types.empty()) {
      EXPECT_TRUE(ota::decode(last(), r));
    }
    return r;
  }
  void data(std::uint16_t index, const std::uint8_t* bytes, std::size_t n) {
    std::vector<std::uint8_t> p(2 + n);
    ota::put_u16(p.data(), index);
    std::copy_n(bytes, n, p.data() + 2);
    send(ota::MsgType::data, p.data(), p.size());
    pump();
  }
  ota::Hello hello() {
    send(ota::MsgType::hello_request, nullptr, 0);
    pump();
    ota::Hello h;
    EXPECT_TRUE(!types.empty() && ota::decode(last(), h));
    return h;
  }
};

using test::start_for;

class ClientTest : public ::testing::TestWithParam<const ota::Layout*> {
 protected:
  const ota::Layout& L = *GetParam();
  sim::Device dev{L};
  Raw raw{dev};
  std::vector<std::uint8_t> v1 = sim::make_app_image(L, 1, 12 * 1024);
  std::vector<std::uint8_t> before;

  void SetUp() override {
    dev.factory_install(v1);
    dev.boot();
    raw.pump();
    before.assign(dev.app_region().begin(), dev.app_region().end());
  }
  void expect_app_untouched() {
    EXPECT_TRUE(std::equal(before.begin(), before.end(), dev.app_region().begin()));
    EXPECT_EQ(dev.violations(), 0u) << dev.last_violation();
  }
  void expect_staging_untouched() {
    // Nothing was erased or written in the staging area (it is blank on a fresh device).
    for (std::uint8_t b : dev.region(L.staging)) ASSERT_EQ(b, 0xFF);
  }
  void send_image(const std::vector<std::uint8_t>& img, std::uint16_t from = 0, std::uint16_t psize = 256) {
    const auto n = ota::packet_count_for(static_cast<std::uint32_t>(img.size()), psize);
    for (std::uint32_t i = from; i < n; ++i) {
      const std::size_t off = i * psize;
      raw.data(static_cast<std::uint16_t>(i), img.data() + off, std::min<std::size_t>(psize, img.size() - off));
    }
  }
};

TEST_P(ClientTest, BootSaysHelloWithIdentity) {
  const ota::Hello h = raw.hello();
  EXPECT_EQ(h.protocol, ota::kProtocolVersion);
  EXPECT_EQ(h.layout, L.id);
  EXPECT_EQ(h.role, ota::Role::application);
  EXPECT_EQ(h.app_version, 1u);
  EXPECT_EQ(h.staging_capacity, L.image_limit);
  EXPECT_EQ(h.report, ota::Report::none);
  EXPECT_EQ(h.session_next, ota::kNoSession);
}

// The UART is the application's console too: a line it prints without the terminating 0x00 must
// not take the next frame down with it. Each frame starts with a 0x00 of its own.
TEST_P(ClientTest, TextWithoutItsZeroBeforeAFrameCostsNoFrame) {
  raw.send(ota::MsgType::hello_request, nullptr, 0);
  std::vector<std::uint8_t> wire{'t', 'i', 'c', 'k', ' ', '4', '2', '\r', '\n'};  // no 0x00
  const std::vector<std::uint8_t> out = dev.take_output();
  ASSERT_FALSE(out.empty());
  wire.insert(wire.end(), out.begin(), out.end());
  ota::FrameDecoderBuffer<64> dec;
  std::vector<std::uint8_t> types;
  for (std::uint8_t b : wire)
    if (dec.feed(b) == ota::FrameDecoder::Event::frame) types.push_back(dec.frame().type);
  EXPECT_EQ(types, std::vector<std::uint8_t>{static_cast<std::uint8_t>(ota::MsgType::hello)});
}

TEST_P(ClientTest, ImageOneByteOverTheLimitIsRefused) {
  const auto big = sim::make_app_image(L, 2, L.image_limit + 1);
  EXPECT_EQ(raw.start(start_for(big, 2)).status, Status::too_large);
  expect_app_untouched();
  expect_staging_untouched();
  // Exactly at the limit is accepted.
  const auto edge = sim::make_app_image(L, 2, L.image_limit);
  EXPECT_EQ(raw.start(start_for(edge, 2)).status, Status::ok);
}

TEST_P(ClientTest, InconsistentParametersAreRefused) {
  const auto img = sim::make_app_image(L, 2, 5000);
  ota::Start s = start_for(img, 2);
  s.packet_count = static_cast<std::uint16_t>(s.packet_count + 1);
  EXPECT_EQ(raw.start(s).status, Status::bad_params);
  s = start_for(img, 2);
  s.packet_count = static_cast<std::uint16_t>(s.packet_count - 1);
  EXPECT_EQ(raw.start(s).status, Status::bad_params);
  s = start_for(img, 2, 300);  // does not divide the staging unit, and above the max chunk
  EXPECT_EQ(raw.start(s).status, Status::bad_params);
  s = start_for(img, 2, 0);
  EXPECT_EQ(raw.start(s).status, Status::bad_params);
  expect_app_untouched();
  expect_staging_untouched();
}

TEST_P(ClientTest, InvalidVectorTableIsRefusedBeforeAnythingIsErased) {
  auto img = sim::make_app_image(L, 2, 5000);
  ota::put_u32(img.data(), 0x08001000);  // stack pointer in flash
  EXPECT_EQ(raw.start(start_for(img, 2)).status, Status::invalid_image);
  img = sim::make_app_image(L, 2, 5000);
  ota::put_u32(img.data() + 4, L.bootloader.base + 0x101);  // reset handler in the bootloader
  EXPECT_EQ(raw.start(start_for(img, 2)).status, Status::invalid_image);
  expect_app_untouched();
  expect_staging_untouched();
}

TEST_P(ClientTest, StartThatLiesAboutTheVectorTableIsCaughtAtPacketZero) {
  auto img = sim::make_app_image(L, 2, 5000);
  const ota::Start s = start_for(img, 2);
  ota::put_u32(img.data() + 4, 0xFFFFFFFF);
  ASSERT_EQ(raw.start(s).status, Status::ok);
  raw.data(0, img.data(), 256);
  ota::Nak k;
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::invalid_image);
  expect_app_untouched();
}

TEST_P(ClientTest, WrongTotalChecksumFailsWithoutOtaStart) {
  const auto img = sim::make_app_image(L, 2, 3000);
  ota::Start s = start_for(img, 2);
  s.image_crc ^= 1;
  ASSERT_EQ(raw.start(s).status, Status::ok);
  send_image(img);
  ota::Result r;
  ASSERT_TRUE(ota::decode(raw.last(), r));
  EXPECT_EQ(r.status, Status::crc_mismatch);
  EXPECT_EQ(r.crc, ota::crc32(img.data(), img.size()));
  EXPECT_FALSE(dev.boots() > 1);  // no reset
  EXPECT_EQ(raw.hello().report, ota::Report::none);  // no OTA-START
  dev.boot();
  EXPECT_EQ(dev.last_install(), ota::Installer::Result::nothing);
  EXPECT_EQ(dev.running_version(), 1u);
  expect_app_untouched();
}

// A packet size within the limits and a multiple of the write size, but not a divisor of the
// staging unit: packets would straddle units, whose erase and marker rules assume they do not.
TEST_P(ClientTest, PacketSizeThatDoesNotDivideTheStagingUnitIsRefused) {
  const auto img = sim::make_app_image(L, 2, 5000);
  EXPECT_EQ(raw.start(start_for(img, 2, 200)).status, Status::bad_params);
  expect_app_untouched();
  expect_staging_untouched();
}

// A download whose stored image fails the CRC-32 (a packet stored wrong) is forgotten: offering
// the same image again starts over at packet 0 instead of resuming after the last packet into the
// same mismatch forever.
TEST_P(ClientTest, AfterAChecksumMismatchTheSameImageStartsOver) {
  const auto img = sim::make_app_image(L, 2, 3000);
  ASSERT_EQ(raw.start(start_for(img, 2)).status, Status::ok);
  auto bad = img;
  bad[600] ^= 0x01;  // packet 2 arrives intact as a frame but carries a wrong byte
  send_image(bad);
  ota::Result r;
  ASSERT_TRUE(ota::decode(raw.last(), r));
  ASSERT_EQ(r.status, Status::crc_mismatch);
  const ota::StartReply again = raw.start(start_for(img, 2));
  ASSERT_EQ(again.status, Status::ok);
  EXPECT_EQ(again.next, 0u);
  send_image(img, again.next);
  EXPECT_EQ(dev.last_install(), ota::Installer::Result::installed);
  EXPECT_EQ(dev.running_version(), 2u);
}

// A client that has just verified a download, written "OTA-START" and asked for the reset (the
// state between RESULT and the reset): the simulated device resets at once, so a bare client.
struct PendingReset {
  explicit PendingReset(const ota::Layout& l) : parts(l), img(sim::make_app_image(l, 2, 3000)) {
    test::FrameWire::start(client, start_for(img, 2));
    for (std::uint16_t i = 0; i < 12; ++i) test::FrameWire::data(client, img, i);
    EXPECT_EQ(wire.reply<ota::Result>().status, Status::ok);
    EXPECT_TRUE(client.reset_requested());
  }
  test::Parts parts;
  std::vector<std::uint8_t> img;
  test::FrameWire wire;
  ota::UpdateClient client{parts.map, wire, ota::DeviceInfo{}};
};

// A window nobody set is 1: the server then waits for each ACK, which no receive buffer that
// holds one frame can be overrun by (a larger default overran the small rings of ports that
// forgot it).
TEST_P(ClientTest, ADeviceInfoLeftAtItsDefaultsAsksForOneFrameInFlight) {
  test::Parts parts(L);
  test::FrameWire wire;
  ota::UpdateClient client{parts.map, wire, ota::DeviceInfo{}};
  client.boot();
  EXPECT_EQ(wire.reply<ota::Hello>().window, 1);
}

// A running client fed RECOVERs, counting the HELLOs it answers with.
struct RecoverRun {
  explicit RecoverRun(const ota::Layout& l) : parts(l) {}
  test::Parts parts;
  test::FrameWire wire;
  ota::UpdateClient client{parts.map, wire, ota::DeviceInfo{}};
  void recovers(int n) {
    for (int i = 0; i < n; ++i) test::FrameWire::send_to(client, ota::MsgType::recover, nullptr, 0);
  }
  int hellos() {  // since the last call
    ota::FrameDecoderBuffer<64> dec;
    int n = 0;
    for (std::uint8_t b : std::exchange(wire.out, {}))
      n += dec.feed(b) == ota::FrameDecoder::Event::frame && dec.frame().type == static_cast<std::uint8_t>(ota::MsgType::hello);
    return n;
  }
};

// A server asking for recovery sends RECOVER every 10 ms until someone presses reset: a running
// client answers the first of the run, then one in 32, and a frame of another type starts a new
// run (a HELLO_REQ is always answered).
TEST_P(ClientTest, ARunOfRecoversIsAnsweredOnceAndThenOneInThirtyTwo) {
  RecoverRun r(L);
  r.recovers(1);
  EXPECT_EQ(r.hellos(), 1) << "the first RECOVER is answered at once";
  r.recovers(31);
  EXPECT_EQ(r.hellos(), 0);
  r.recovers(1);
  EXPECT_EQ(r.hellos(), 1) << "the 33rd";
  r.recovers(300);  // past the count's wrap at 256
  EXPECT_EQ(r.hellos(), 9);  // the 64th, 96th, ... 320th
  test::FrameWire::send_to(r.client, ota::MsgType::hello_request, nullptr, 0);
  EXPECT_EQ(r.hellos(), 1);
  r.recovers(2);
  EXPECT_EQ(r.hellos(), 1) << "a new run after the HELLO_REQ";
}

// A server that stops while it sends RECOVER (`ota status --recover` given up, a modem that
// dials again) sends nothing else, and the client, which keeps no clock, cannot tell the next
// server's RECOVERs from the old run: the next answer comes within 32 of them (320 ms at the
// server's 10 ms period), well inside any server's wait for a HELLO.
TEST_P(ClientTest, ARunAServerLeftIsContinuedByTheNextAndAnsweredWithin32) {
  RecoverRun r(L);
  r.recovers(2);  // server 1: the first answered, the second in flight when it stopped
  ASSERT_EQ(r.hellos(), 1);
  r.recovers(1);  // server 2's first RECOVER
  int waited = 0;
  while (r.hellos() == 0 && waited < 64) r.recovers(1), ++waited;
  EXPECT_EQ(waited, 30) << "the next server's first answer came after " << waited << " more RECOVERs";
}

// REPORT_ACK acknowledges an OTA-SUCCESS report only: a stray or late one must not erase an
// OTA-START that waits for its reset.
TEST_P(ClientTest, ReportAckDoesNotClearAPendingInstall) {
  PendingReset p(L);
  test::FrameWire::send_to(p.client, ota::MsgType::report_ack, nullptr, 0);
  EXPECT_EQ(p.wire.reply<ota::Hello>().report, ota::Report::download_ok);
  EXPECT_EQ(ota::FlagStore(p.parts.map).read(), ota::Flag::start);
}

TEST_P(ClientTest, StartWhileAnotherUpdateIsInProgressIsRefused) {
  const auto a = sim::make_app_image(L, 2, 5000);
  const auto b = sim::make_app_image(L, 3, 6000);
  ASSERT_EQ(raw.start(start_for(a, 2)).status, Status::ok);
  raw.data(0, a.data(), 256);
  EXPECT_EQ(raw.start(start_for(b, 3)).status, Status::busy);
  // The same image again is a re-synchronisation, not a conflict.
  EXPECT_EQ(raw.start(start_for(a, 2)).status, Status::ok);
  // ABORT frees the device for another image.
  raw.send(ota::MsgType::abort, nullptr, 0);
  raw.pump();
  EXPECT_EQ(raw.start(start_for(b, 3)).status, Status::ok);
  expect_app_untouched();
}

TEST_P(ClientTest, StartWhileAnInstallIsPendingIsRefused) {
  PendingReset p(L);
  test::FrameWire::send_to(p.client, ota::MsgType::hello_request, nullptr, 0);
  EXPECT_EQ(p.wire.reply<ota::Hello>().report, ota::Report::download_ok);
  const auto other = sim::make_app_image(L, 3, 5000);
  test::FrameWire::start(p.client, start_for(other, 3));
  EXPECT_EQ(p.wire.reply<ota::StartReply>().status, Status::busy);
  EXPECT_TRUE(std::equal(p.img.begin(), p.img.end(), p.parts.region(L.staging).begin())) << "staging kept";
}

// "OTA-START" that the application did not write itself: the bootloader could not install the
// staged image and started the application it kept (a flash fault, a supply too low to write).
// The application says so, and takes an image again instead of answering "busy" for ever.
TEST_P(ClientTest, AnInstallTheBootloaderCouldNotDoIsReportedAndTheImageTakenAgain) {
  ota::W25qFlash ext(dev.chip(), ota::kW25qUsed, 100);
  ota::FlashMap map{L, dev.internal(), &ext};
  ASSERT_TRUE(ota::FlagStore(map).set(ota::Flag::start));
  EXPECT_EQ(raw.hello().report, ota::Report::install_failed);
  const auto a = sim::make_app_image(L, 2, 3000);
  ASSERT_EQ(raw.start(start_for(a, 2)).status, Status::ok);
  send_image(a);  // the simulated device resets at once after RESULT ok, and installs
  EXPECT_EQ(dev.last_install(), ota::Installer::Result::installed);
  EXPECT_EQ(dev.running_version(), 2u);
}

TEST_P(ClientTest, CompletedDownloadResetsIntoTheNewApplicationWithReport) {
  const auto a = sim::make_app_image(L, 2, 3000);
  ASSERT_EQ(raw.start(start_for(a, 2)).status, Status::ok);
  send_image(a);  // the simulated device resets at once after RESULT ok
  EXPECT_EQ(dev.boots(), 2u);
  EXPECT_EQ(dev.last_install(), ota::Installer::Result::installed);
  EXPECT_EQ(dev.running_version(), 2u);
  ota::Hello h = raw.hello();
  EXPECT_EQ(h.report, ota::Report::upgrade_ok);
  EXPECT_EQ(h.app_version, 2u);
  raw.send(ota::MsgType::report_ack, nullptr, 0);
  raw.pump();
  ASSERT_TRUE(ota::decode(raw.last(), h));
  EXPECT_EQ(h.report, ota::Report::none);  // cleared once acknowledged
  EXPECT_EQ(dev.violations(), 0u) << dev.last_violation();
}

TEST_P(ClientTest, OutOfOrderDuplicateAndCorruptedFramesAreHandled) {
  const auto img = sim::make_app_image(L, 2, 2048);
  ASSERT_EQ(raw.start(start_for(img, 2)).status, Status::ok);
  raw.data(0, img.data(), 256);
  EXPECT_EQ(ota::get_u16(raw.payloads.back().data()), 1);  // ACK next = 1
  raw.data(2, img.data() + 512, 256);                       // gap: packet 1 lost
  ota::Nak k;
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::out_of_order);
  EXPECT_EQ(k.next, 1);
  raw.data(3, img.data() + 768, 256);  // still in the gap: silence, one NAK per gap
  EXPECT_TRUE(raw.types.empty());
  raw.data(0, img.data(), 256);  // duplicate: re-ACK
  EXPECT_EQ(raw.types.back(), static_cast<std::uint8_t>(ota::MsgType::data_ack));
  EXPECT_EQ(ota::get_u16(raw.payloads.back().data()), 1);
  raw.data(1, img.data() + 256, 256);  // the gap is filled: NAKs are possible again
  EXPECT_EQ(ota::get_u16(raw.payloads.back().data()), 2);
  // A corrupted frame: NAK bad_frame with the index wanted.
  std::uint8_t p[258];
  ota::put_u16(p, 2);
  std::copy_n(img.data() + 512, 256, p + 2);
  std::uint8_t buf[600];
  const std::size_t n = ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::data), p, sizeof p, buf, sizeof buf);
  buf[100] ^= 0x10;
  dev.receive(buf, n);
  raw.pump();
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::bad_frame);
  EXPECT_EQ(k.next, 2);
  // A packet of the wrong length.
  raw.data(2, img.data() + 512, 100);
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::bad_length);
  send_image(img, 2);
  EXPECT_EQ(dev.running_version(), 2u);
  EXPECT_EQ(dev.violations(), 0u) << dev.last_violation();
}

TEST_P(ClientTest, DataWithoutStartIsRefused) {
  raw.data(0, v1.data(), 256);
  ota::Nak k;
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::no_session);
  expect_app_untouched();
}

TEST_P(ClientTest, InterruptedDownloadResumesAfterReset) {
  const auto img = sim::make_app_image(L, 2, 20 * 1024);
  ASSERT_EQ(raw.start(start_for(img, 2)).status, Status::ok);
  const std::uint32_t packets_per_unit = L.staging_unit / 256;
  // Send 2.5 units, then the device resets (power cycle).
  for (std::uint32_t i = 0; i < packets_per_unit * 5 / 2; ++i)
    raw.data(static_cast<std::uint16_t>(i), img.data() + i * 256, 256);
  dev.power().cut();
  dev.power_cycle();
  raw.pump();
  const ota::Hello h = raw.hello();
  EXPECT_EQ(h.session_crc, ota::crc32(img.data(), img.size()));
  EXPECT_EQ(h.session_next, packets_per_unit * 2);
  const ota::StartReply r = raw.start(start_for(img, 2));
  ASSERT_EQ(r.status, Status::ok);
  EXPECT_EQ(r.next, packets_per_unit * 2);  // whole units only: the half unit is redone
  send_image(img, r.next);
  EXPECT_EQ(dev.running_version(), 2u);
  EXPECT_TRUE(std::equal(img.begin(), img.end(), dev.app_region().begin()));
  EXPECT_EQ(dev.violations(), 0u) << dev.last_violation();
  // A different image is not resumed from that journal.
}

// A gap's NAK is said once, until the gap is filled; a START begins the download anew, and the
// first gap after it is NAKed again (the server that re-synchronised needs to hear where to go on).
TEST_P(ClientTest, TheFirstGapAfterANewStartIsNakedAgain) {
  const auto img = sim::make_app_image(L, 2, 2048);
  ASSERT_EQ(raw.start(start_for(img, 2)).status, Status::ok);
  raw.data(1, img.data() + 256, 256);  // gap: packet 0 lost
  ota::Nak k;
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::out_of_order);
  ASSERT_EQ(raw.start(start_for(img, 2)).status, Status::ok);
  raw.data(1, img.data() + 256, 256);  // the same gap, after the new START
  ASSERT_FALSE(raw.types.empty()) << "the gap after START got no NAK";
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::out_of_order);
  EXPECT_EQ(k.next, 0);
}

// An image built for the other layout is refused once downloaded, and forgotten: HELLO says no
// download to resume, and the same image offered again starts at packet 0 (it is not resumed
// into the same refusal).
TEST_P(ClientTest, AnImageForTheOtherLayoutIsForgottenAfterItsRefusal) {
  auto img = sim::make_app_image(L, 2, 3000);
  const ota::LayoutId other = L.id == ota::LayoutId::internal ? ota::LayoutId::external : ota::LayoutId::internal;
  const auto info = ota::AppInfo::make(other, 2);
  std::memcpy(img.data() + 0xEC, &info, sizeof info);
  ASSERT_EQ(raw.start(start_for(img, 2)).status, Status::ok);
  send_image(img);
  ota::Result r;
  ASSERT_TRUE(ota::decode(raw.last(), r));
  ASSERT_EQ(r.status, Status::invalid_image);
  const ota::Hello h = raw.hello();
  EXPECT_EQ(h.session_next, ota::kNoSession);
  EXPECT_EQ(h.session_crc, 0u);
  const ota::StartReply again = raw.start(start_for(img, 2));
  EXPECT_EQ(again.status, Status::ok);
  EXPECT_EQ(again.next, 0u);
  expect_app_untouched();
}

// The bootloader in recovery takes an image of any product, whatever product the application it
// holds names (`ota push --recover` puts another product on the board): only an application
// refuses another product's image.
TEST_P(ClientTest, RecoveryTakesAnImageOfAnotherProduct) {
  test::Parts parts(L);
  test::FrameWire wire;
  ota::DeviceInfo info;
  info.role = ota::Role::recovery;
  info.product = ota::AppInfo::product_id("weather-station");
  ota::UpdateClient client{parts.map, wire, info};
  auto img = sim::make_app_image(L, 2, 3000);
  const auto other = ota::AppInfo::make(L.id, 2, "door-lock");
  std::memcpy(img.data() + 0xEC, &other, sizeof other);
  test::FrameWire::start(client, start_for(img, 2));
  ASSERT_EQ(wire.reply<ota::StartReply>().status, Status::ok);
  for (std::uint16_t i = 0; i < 12; ++i) test::FrameWire::data(client, img, i);
  EXPECT_EQ(wire.reply<ota::Result>().status, Status::ok);
  EXPECT_TRUE(client.reset_requested());
}

// A flag area that holds neither text (a write a power cut tore) is no report: HELLO says none,
// not that an install failed.
TEST_P(ClientTest, ATornFlagIsReportedAsNoReport) {
  test::Parts parts(L);
  const char torn[] = "OTA-ST\xff\xff\xff\xff\xff";
  ASSERT_TRUE(parts.map.device(L.flags).write(L.flags.base, torn, 8));
  ASSERT_EQ(ota::FlagStore(parts.map).read(), ota::Flag::torn);
  test::FrameWire wire;
  ota::UpdateClient client{parts.map, wire, ota::DeviceInfo{}};
  client.boot();
  EXPECT_EQ(wire.reply<ota::Hello>().report, ota::Report::none);
}

// A journal whose image was installed (its clear after the install did not take) is no download:
// HELLO offers nothing to resume, and the same image offered again is downloaded from packet 0,
// not taken as already received.
TEST_P(ClientTest, AJournalOfAnInstalledImageIsNotResumed) {
  test::Parts parts(L);
  const auto img = sim::make_app_image(L, 2, 3000);
  test::stage(parts, img);
  ASSERT_TRUE(ota::Journal(parts.map).mark_installed());
  ASSERT_TRUE(ota::FlagStore(parts.map).set(ota::Flag::success));
  test::FrameWire wire;
  ota::UpdateClient client{parts.map, wire, ota::DeviceInfo{}};
  client.boot();
  const ota::Hello h = wire.reply<ota::Hello>();
  EXPECT_EQ(h.session_next, ota::kNoSession);
  EXPECT_EQ(h.session_crc, 0u);
  test::FrameWire::start(client, start_for(img, 2));
  const ota::StartReply r = wire.reply<ota::StartReply>();
  EXPECT_EQ(r.status, Status::ok);
  EXPECT_EQ(r.next, 0u);
  EXPECT_FALSE(client.reset_requested());
}

TEST_P(ClientTest, UnknownMessageIsNaked) {
  raw.send(static_cast<ota::MsgType>(0x42), nullptr, 0);
  raw.pump();
  ota::Nak k;
  ASSERT_TRUE(ota::decode(raw.last(), k));
  EXPECT_EQ(k.status, Status::unknown_message);
}

// A map for the external layout made without its W25Q (a host build, where the layout is chosen
// at run time; a firmware image's map cannot be made so: tests/compile_check): the client says
// HELLO and refuses START with flash_error, as with a W25Q that does not answer; it does not
// follow a null pointer.
TEST(ClientWithoutItsW25q, SaysHelloAndRefusesStartWithAFlashError) {
  sim::PowerSupply power;
  sim::InternalFlash internal(power);
  const ota::FlashMap map{ota::kExternalLayout, internal, nullptr};
  test::FrameWire wire;
  ota::UpdateClient client(map, wire, ota::DeviceInfo{});
  client.boot();
  const ota::Hello h = wire.reply<ota::Hello>();
  EXPECT_EQ(h.layout, ota::LayoutId::external);
  const auto img = sim::make_app_image(ota::kExternalLayout, 2, 4096);
  test::FrameWire::start(client, start_for(img, 2));
  EXPECT_EQ(wire.reply<ota::StartReply>().status, Status::flash_error);
  EXPECT_EQ(internal.violations(), 0u);
}

// A line that echoes (half-duplex or RS-485 with the receiver left on, a modem with echo on)
// hands the device its own frames back. A frame of the device's direction is not answered: a
// NAK to its own HELLO would come back and be answered again, for ever, and send every server back
// to `next`. Nor is it a frame from a server (the bootloader's idle reset counts those).
TEST_P(ClientTest, ItsOwnFramesEchoedBackAreNotAnswered) {
  test::Parts parts(L);
  test::FrameWire wire;
  ota::UpdateClient client(parts.map, wire, ota::DeviceInfo{});
  client.boot();
  ASSERT_FALSE(wire.out.empty());  // HELLO
  const std::vector<std::uint8_t> echo = std::exchange(wire.out, {});
  client.receive(echo.data(), echo.size());
  EXPECT_TRUE(wire.out.empty()) << "the device answered its own HELLO";
  for (const ota::MsgType t : {ota::MsgType::hello, ota::MsgType::start_reply, ota::MsgType::data_ack,
                               ota::MsgType::data_nak, ota::MsgType::result, static_cast<ota::MsgType>(0xFF)}) {
    const std::uint8_t payload[3] = {};
    test::FrameWire::send_to(client, t, payload, sizeof payload);
    EXPECT_TRUE(wire.out.empty()) << "answered a frame of type 0x" << std::hex << int(t);
    wire.out.clear();
  }
  EXPECT_EQ(client.frames_received(), 0u) << "an echo counted as a frame from a server";
}

// A whole update over a line that echoes the device: what it sends reaches the server and also
// comes back to it ahead of the server's next bytes.
TEST_P(ClientTest, AnUpdateSucceedsOverALineThatEchoesTheDevice) {
  sim::Device d{L};
  d.factory_install(sim::make_app_image(L, 1, 8 * 1024));
  d.boot();
  const auto v2 = sim::make_app_image(L, 2, 12 * 1024);
  auto heard = std::make_shared<std::vector<std::uint8_t>>();
  sim::WireOptions w;
  w.max_ms = 120'000;
  w.to_server = [heard](std::vector<std::uint8_t>& up) { heard->insert(heard->end(), up.begin(), up.end()); };
  w.to_device = [heard](std::vector<std::uint8_t>& down) {
    down.insert(down.begin(), heard->begin(), heard->end());
    heard->clear();
  };
  ota::host::Session s(v2, 2);
  sim::run_session(d, s, w);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  EXPECT_EQ(d.running_version(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ClientTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

}  // namespace

// Bootloaders are never updated over the air, so every device in the field keeps the reader of
// the release it left the factory with. This is the reader before the link rate (the 24-byte
// "INFO" record and the first release's 20 bytes). Given an
// application built now, it must still find the record: otherwise such a bootloader in recovery
// says kProductHeld ("an application whose product it cannot tell"), and `ota serve --recover`, or
// any push without --recover to a bootloader in recovery, refuses every device of the fleet.
namespace previous_release {
constexpr std::uint32_t kMagic0 = 0x2D41544F, kMagic1 = 0x4F464E49;
constexpr std::uint32_t check_of(std::uint32_t version, std::uint32_t layout, std::uint32_t product) {
  return ~(version ^ (layout * 0x9E3779B9u) ^ (product * 0x85EBCA6Bu) ^ kMagic1);
}
bool finds_app_info(const std::uint8_t* image, std::size_t len, std::uint32_t& product_out) {
  for (std::size_t off = 0; off + 20 <= len; off += 4) {
    const std::uint8_t* p = image + off;
    if (ota::get_u32(p) != kMagic0 || ota::get_u32(p + 4) != kMagic1) continue;
    const std::uint32_t version = ota::get_u32(p + 8), layout = ota::get_u32(p + 12), fifth = ota::get_u32(p + 16);
    std::uint32_t product = 0;
    if (off + 24 <= len && ota::get_u32(p + 20) == check_of(version, layout, fifth)) product = fifth;
    else if (fifth != check_of(version, layout, 0)) continue;
    product_out = product;
    return true;
  }
  return false;
}
}  // namespace previous_release

TEST(AppInfoCompatibility, ABootloaderOfThePreviousReleaseFindsTheRecordOfAnApplicationBuiltNow) {
  for (const std::uint32_t baud : {115200u, 0u}) {
    SCOPED_TRACE(baud);
    const auto info = ota::AppInfo::make(ota::LayoutId::internal, 3, "thermo").at_link_baud(baud);
    std::vector<std::uint8_t> image(512, 0xFF);
    std::memcpy(image.data() + 0x130, &info, sizeof info);
    std::uint32_t product = 0;
    EXPECT_TRUE(previous_release::finds_app_info(image.data(), image.size(), product))
        << "such a bootloader holding it says kProductHeld in recovery";
    EXPECT_EQ(product, ota::AppInfo::product_id("thermo"));
  }
}

// Each whole frame from a server counts in frames_received() (the bootloader's recovery idle timer
// watches it: while a server talks, the bootloader stays), whatever it asks; a corrupted frame
// does not.
TEST(ClientFrameCount, EachWholeFrameOfAServerIsCounted) {
  test::Parts parts(ota::kInternalLayout);
  test::FrameWire wire;
  ota::UpdateClient client{parts.map, wire, ota::DeviceInfo{}};
  client.boot();
  EXPECT_EQ(client.frames_received(), 0u);
  test::FrameWire::send_to(client, ota::MsgType::hello_request, nullptr, 0);
  test::FrameWire::send_to(client, ota::MsgType::report_ack, nullptr, 0);
  test::FrameWire::send_to(client, ota::MsgType::data, nullptr, 0);  // refused, but a frame
  EXPECT_EQ(client.frames_received(), 3u);
  std::uint8_t frame[16];
  const std::size_t n = ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::hello_request), nullptr, 0, frame, sizeof frame);
  frame[1] ^= 0x01;
  client.receive(frame, n);
  EXPECT_EQ(client.frames_received(), 3u);
}

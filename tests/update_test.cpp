// Whole updates between the host session and a simulated device, through the in-process wire:
// both layouts, a lossy link, a link lost and restored, refusals seen from the server's side.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "ota/app_info.hpp"
#include "ota/crc.hpp"
#include "ota/flags.hpp"
#include "ota/bytes.hpp"
#include "ota/frame.hpp"
#include "ota/protocol.hpp"
#include "sim/wire.hpp"
#include "support.hpp"

namespace {

using ota::host::Outcome;
using ota::host::Session;

// `img` with the app info record `info` written at `at` (0xEC: right after a synthetic image's
// vector table).
std::vector<std::uint8_t> with_app_info(std::vector<std::uint8_t> img, const ota::AppInfo& info, std::size_t at = 0xEC) {
  std::memcpy(img.data() + at, &info, sizeof info);
  return img;
}

// A link that goes dead (nothing reaches the device) once `frames` frames have passed.
sim::WireOptions link_dead_after(std::size_t frames) {
  sim::WireOptions w;
  w.to_device = [frames, seen = std::size_t{0}](std::vector<std::uint8_t>& b) mutable {
    if (seen > frames) b.clear();
    seen += static_cast<std::size_t>(std::count(b.begin(), b.end(), 0));
  };
  return w;
}

class UpdateTest : public ::testing::TestWithParam<const ota::Layout*> {
 protected:
  const ota::Layout& L = *GetParam();
  sim::Device dev{L};
  std::vector<std::uint8_t> v1 = sim::make_app_image(L, 1, 10 * 1024);
  std::vector<std::uint8_t> v2 = sim::make_app_image(L, 2, L.image_limit);

  void SetUp() override {
    dev.factory_install(v1);
    dev.boot();
  }
  // A session whose link goes dead after `frames` frames (its server gives up quickly: 2 retries
  // of 100 ms), in packets of `packet` bytes: the device keeps part of `img`.
  void abandoned_download(const std::vector<std::uint8_t>& img, std::uint32_t version, std::size_t frames,
                          std::uint16_t packet = ota::kMaxChunk) {
    ota::host::SessionOptions o;
    o.max_retries = 2;
    o.reply_timeout_ms = 100;
    o.packet_size = packet;
    Session s(img, version, o);
    sim::run_session(dev, s, link_dead_after(frames));
    ASSERT_EQ(s.outcome(), Outcome::timeout);
  }
  // v2 offered again (256-byte packets) resumes, sending at least `saved` packets fewer than all,
  // and ends upgraded.
  void expect_v2_resumes(std::uint32_t saved) {
    Session s(v2, 2);
    sim::run_session(dev, s);
    EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
    bool resumed = false;
    for (const auto& e : s.take_events()) resumed |= e.kind == "resume";
    EXPECT_TRUE(resumed);
    EXPECT_LT(s.frames_sent(), ota::packet_count_for(static_cast<std::uint32_t>(v2.size()), 256) - saved);
    expect_runs(v2, 2);
  }
  // The session ended refused by the device after its download ("not a valid application"),
  // before "OTA-START": after a power cycle v1 still runs.
  void expect_refused_after_download(const Session& s) {
    EXPECT_EQ(s.outcome(), Outcome::refused) << s.detail();
    EXPECT_NE(s.detail().find("not a valid application"), std::string::npos) << s.detail();
    const auto flag = dev.region(L.flags);
    EXPECT_NE(std::string(flag.begin(), flag.begin() + 9), "OTA-START");
    dev.power_cycle();
    EXPECT_EQ(dev.running_version(), 1u);
  }
  void expect_runs(const std::vector<std::uint8_t>& img, std::uint32_t version) {
    EXPECT_EQ(dev.running_version(), version);
    EXPECT_TRUE(std::equal(img.begin(), img.end(), dev.app_region().begin()));
    EXPECT_EQ(dev.violations(), 0u) << dev.last_violation();
  }
};

TEST_P(UpdateTest, LargestImageUpgradesWithReport) {
  Session s(v2, 2);
  sim::run_session(dev, s);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  EXPECT_EQ(s.resends(), 0u);
  expect_runs(v2, 2);
  // Offered again: nothing to do.
  Session again(v2, 2);
  sim::run_session(dev, again);
  EXPECT_EQ(again.outcome(), Outcome::up_to_date);
}

// Watches both directions of the wire and keeps the largest number of DATA frames the server had
// sent beyond the device's last cumulative ACK.
struct InFlight {
  ota::FrameDecoderBuffer<300> down, up;
  std::uint32_t acked = 0, most = 0;
  sim::WireOptions wire() {
    sim::WireOptions w;
    w.to_device = [this](std::vector<std::uint8_t>& b) {
      for (auto byte : b)
        if (down.feed(byte) == ota::FrameDecoder::Event::frame && down.frame().type == std::uint8_t(ota::MsgType::data))
          most = std::max(most, ota::get_u16(down.frame().payload) + 1u - acked);
    };
    w.to_server = [this](std::vector<std::uint8_t>& b) {
      for (auto byte : b)
        if (up.feed(byte) == ota::FrameDecoder::Event::frame && up.frame().type == std::uint8_t(ota::MsgType::data_ack))
          acked = ota::get_u16(up.frame().payload);
    };
    return w;
  }
};

TEST_P(UpdateTest, StopAndWaitAlsoWorks) {
  ota::host::SessionOptions o;
  o.window = 1;
  o.packet_size = 64;
  Session s(v2, 2, o);
  InFlight seen;
  sim::run_session(dev, s, seen.wire());
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  EXPECT_EQ(seen.most, 1u);  // never a second frame before the first one's ACK
  expect_runs(v2, 2);
  // The device's own window, for contrast: several frames in flight.
  dev.factory_install(v1);
  dev.boot();
  Session wide(v2, 2);
  InFlight wide_seen;
  sim::run_session(dev, wide, wide_seen.wire());
  EXPECT_EQ(wide.outcome(), Outcome::upgraded) << wide.detail();
  EXPECT_GT(wide_seen.most, 1u);
}

// An older image than the device runs is refused before START (most likely the wrong file; on a
// fleet it would roll every device back); --force installs it.
TEST_P(UpdateTest, AnOlderImageIsRefusedUnlessForced) {
  Session up(v2, 2);
  sim::run_session(dev, up);
  ASSERT_EQ(up.outcome(), Outcome::upgraded) << up.detail();
  Session down(v1, 1);
  sim::run_session(dev, down);
  EXPECT_EQ(down.outcome(), Outcome::refused);
  EXPECT_EQ(down.detail(), "device runs v2, newer than the image's v1 (--force to downgrade)");
  EXPECT_EQ(down.frames_sent(), 0u);
  expect_runs(v2, 2);
  ota::host::SessionOptions o;
  o.force = true;
  Session forced(v1, 1, o);
  sim::run_session(dev, forced);
  EXPECT_EQ(forced.outcome(), Outcome::upgraded) << forced.detail();
  expect_runs(v1, 1);
}

TEST_P(UpdateTest, TooLargeIsRefusedAndV1KeepsRunning) {
  const auto big = sim::make_app_image(L, 2, L.image_limit + 1);
  Session s(big, 2);
  sim::run_session(dev, s);
  EXPECT_EQ(s.outcome(), Outcome::refused);
  EXPECT_NE(s.detail().find("too large"), std::string::npos) << s.detail();
  expect_runs(v1, 1);
}

TEST_P(UpdateTest, LossyLinkStillEndsInV2) {
  // Every burst in both directions may lose a byte, flip a bit or duplicate a byte.
  std::mt19937 rng(1234);
  auto damage = [&rng](std::vector<std::uint8_t>& b) {
    if (b.empty()) return;
    std::uniform_int_distribution<std::size_t> at(0, b.size() - 1);
    switch (rng() % 8) {
      case 0: b.erase(b.begin() + static_cast<std::ptrdiff_t>(at(rng))); break;
      case 1: b[at(rng)] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
      case 2: { const auto i = at(rng); b.insert(b.begin() + static_cast<std::ptrdiff_t>(i), b[i]); } break;
      default: break;
    }
  };
  sim::WireOptions w;
  w.to_device = damage;
  w.to_server = damage;
  Session s(v2, 2);
  sim::run_session(dev, s, w);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  EXPECT_GT(s.resends(), 0u);  // the damage did cost re-sends
  expect_runs(v2, 2);
}

TEST_P(UpdateTest, LinkLostMidDownloadResumesWhenOfferedAgain) {
  ASSERT_NO_FATAL_FAILURE(abandoned_download(v2, 2, 40));
  EXPECT_EQ(dev.running_version(), 1u);
  expect_v2_resumes(10);
}

// A download interrupted at 64-byte packets resumes at 256-byte ones: the journal counts staging
// units (bytes), not packets.
TEST_P(UpdateTest, AnotherPacketSizeResumes) {
  ASSERT_NO_FATAL_FAILURE(abandoned_download(v2, 2, 200, 64));  // 12.8 KB: whole units on both layouts
  expect_v2_resumes(8);
}

// The device holds an unfinished download of another image (v3, its server went away) and the
// ABORT that should drop it is lost on the link: the session sends it again, and v2 goes in.
TEST_P(UpdateTest, ALostAbortIsSentAgain) {
  ASSERT_NO_FATAL_FAILURE(abandoned_download(sim::make_app_image(L, 3, 12 * 1024), 3, 20));

  std::uint8_t abort[8];
  const std::size_t n = ota::encode_frame(static_cast<std::uint8_t>(ota::MsgType::abort), nullptr, 0, abort, sizeof abort);
  int lost = 0;
  sim::WireOptions w;
  w.to_device = [&](std::vector<std::uint8_t>& b) {
    const auto at = std::search(b.begin(), b.end(), abort, abort + n);
    if (at != b.end() && lost++ == 0) *(at + 1) ^= 0x40;  // the first ABORT arrives damaged
  };
  Session s(v2, 2);
  sim::run_session(dev, s, w);
  EXPECT_EQ(lost, 2) << "a second ABORT was sent";
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  expect_runs(v2, 2);
}

// Ctrl-C after the device said it runs v2 with "upgrade OK", while its report is being cleared:
// the upgrade is known, so the push ends "upgraded", not "interrupted".
TEST_P(UpdateTest, StoppedWhileTheReportIsClearedIsStillUpgraded) {
  Session s(v2, 2);
  sim::WireOptions w;
  w.to_device = [&s](std::vector<std::uint8_t>& b) {
    if (s.phase() == ota::host::Phase::report_ack) {
      b.clear();  // the REPORT_ACK is not through yet
      s.interrupt(0);
    }
  };
  sim::run_session(dev, s, w);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  EXPECT_NE(s.detail().find("stopped before the device cleared its report"), std::string::npos) << s.detail();
  expect_runs(v2, 2);
}

// The link drops in the same instant (a modem losing its carrier, the board's USB adapter
// pulled): the device runs v2 and said so; a fleet script must not count it as failed or lost
// and push to it again.
TEST_P(UpdateTest, ALinkLostWhileTheReportIsClearedIsStillUpgraded) {
  Session s(v2, 2);
  sim::WireOptions w;
  w.to_device = [&s](std::vector<std::uint8_t>& b) {
    if (s.phase() == ota::host::Phase::report_ack) {
      b.clear();
      s.on_link_lost(0);
    }
  };
  sim::run_session(dev, s, w);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  EXPECT_NE(s.detail().find("link lost before the device cleared its report"), std::string::npos) << s.detail();
  expect_runs(v2, 2);
}

// An image whose app info (OTA_APP_INFO, right after the vector table) names the other layout:
// its vector table fits this device (the application starts at 0x08002000 in both), so only the
// record tells. Installed, it would run on the other layout's flash map and never take an update
// or report again. The device refuses it after the download, before "OTA-START"; in any packet
// size (the record then spans two packets). An image that names this layout goes in.
TEST_P(UpdateTest, AnImageBuiltForTheOtherLayoutIsNotInstalled) {
  const ota::LayoutId other = L.id == ota::LayoutId::internal ? ota::LayoutId::external : ota::LayoutId::internal;
  auto with_info = [&](ota::LayoutId layout, std::size_t at) { return with_app_info(v2, ota::AppInfo::make(layout, 2), at); };
  for (const std::uint16_t packet : {std::uint16_t{256}, std::uint16_t{16}}) {
    ota::host::SessionOptions o;
    o.packet_size = packet;
    Session s(with_info(other, 0xEC), 2, o);
    sim::run_session(dev, s);
    EXPECT_EQ(s.outcome(), Outcome::refused) << packet << ": " << s.detail();
    EXPECT_NE(s.detail().find("not a valid application"), std::string::npos) << s.detail();
    const auto flag = dev.region(L.flags);
    EXPECT_NE(std::string(flag.begin(), flag.begin() + 9), "OTA-START");
    dev.power_cycle();
    expect_runs(v1, 1);
  }
  // Far into the first 512 bytes, and across a 64-byte step of the scan.
  Session late(with_info(other, 0x1F8), 2);
  sim::run_session(dev, late);
  EXPECT_EQ(late.outcome(), Outcome::refused) << late.detail();
  const auto own = with_info(L.id, 0xEC);
  Session s(own, 2);
  sim::run_session(dev, s);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  expect_runs(own, 2);
}

// An application that names its product refuses, once downloaded, an image of another product
// (a server that did not check: the session here is told no product), before "OTA-START"; an
// image of its own product, or of none, goes in. (`ota push` refuses it before sending, from
// HELLO's product: protocol_test.)
TEST_P(UpdateTest, AnImageOfAnotherProductIsNotInstalled) {
  auto with_info = [&](const std::vector<std::uint8_t>& base, std::uint32_t version, const char* product) {
    return with_app_info(base, ota::AppInfo::make(L.id, version, product));
  };
  dev.factory_install(with_info(v1, 1, "weather-station"));
  dev.power_cycle();
  Session other(with_info(v2, 2, "door-lock"), 2);
  sim::run_session(dev, other);
  expect_refused_after_download(other);
  const auto own = with_info(v2, 2, "weather-station");
  Session s(own, 2);
  sim::run_session(dev, s);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  expect_runs(own, 2);
}

// A device whose link runs at 115200 refuses, once downloaded, an image whose app info names
// another rate (built with another OTA_USART1_BAUD: installed, it would talk at a rate its modem
// does not), before "OTA-START", in its application and in recovery alike; an image of its own
// rate, or naming none, goes in. (`ota push` over a serial port refuses it before sending, from
// the port's rate: protocol_test.)
TEST_P(UpdateTest, AnImageForAnotherLinkRateIsNotInstalled) {
  auto with_rate = [&](const std::vector<std::uint8_t>& base, std::uint32_t version, std::uint32_t baud) {
    return with_app_info(base, ota::AppInfo::make(L.id, version).at_link_baud(baud));
  };
  dev.set_link_baud(115200);
  dev.factory_install(with_rate(v1, 1, 115200));
  dev.power_cycle();
  Session slow(with_rate(v2, 2, 9600), 2);
  sim::run_session(dev, slow);
  expect_refused_after_download(slow);
  // Nor from the bootloader: without a valid application, in recovery.
  std::vector<std::uint8_t> blank(L.app.size, 0xFF);
  dev.factory_install(blank);
  dev.power_cycle();
  ASSERT_TRUE(dev.in_recovery());
  Session again(with_rate(v2, 2, 9600), 2);
  sim::run_session(dev, again);
  EXPECT_EQ(again.outcome(), Outcome::refused) << again.detail();
  ASSERT_TRUE(dev.in_recovery());
  for (const std::uint32_t baud : {115200u, 0u}) {
    SCOPED_TRACE(baud);
    const auto own = with_rate(v2, 2 + (baud == 0), baud);
    Session s(own, 2 + (baud == 0));
    sim::run_session(dev, s);
    EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
    expect_runs(own, 2 + (baud == 0));
  }
}

// The device's answers are lost for a while (a slow device, a link that stalls): the server's
// reply timeout re-sends only the oldest unacknowledged packet, not its whole window, which the
// device may still hold unread (a slow main loop: a window of re-sends would overrun its ring)
// and which a metered link pays for. The duplicate's answer (the device acknowledges all it has)
// moves the window on.
TEST_P(UpdateTest, AReplyTimeoutResendsOnePacketNotAWindow) {
  Session s(v2, 2);
  bool dropping = false, dropped = false;
  sim::WireOptions w;
  w.to_server = [&](std::vector<std::uint8_t>& b) {
    if (!dropped && s.packets_acked() >= 10) dropping = dropped = true;
    if (dropping && s.resends() > 0) dropping = false;  // the server has timed out and re-sent
    if (dropping) b.clear();
  };
  sim::run_session(dev, s, w);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  ASSERT_TRUE(dropped);
  EXPECT_EQ(s.resends(), 1u);
  expect_runs(v2, 2);
}

// The simulated device reports a real application's version from its app info record (what the
// firmware's HELLO says), a synthetic image's from its "APPV" marker.
TEST(SimDevice, TheVersionOfARealApplicationIsItsAppInfos) {
  auto img = sim::make_app_image(ota::kInternalLayout, 3, 4096);
  EXPECT_EQ(sim::app_image_version(img), 3u);
  img = with_app_info(img, ota::AppInfo::make(ota::LayoutId::internal, 7));
  EXPECT_EQ(sim::app_image_version(img), 7u);
  std::fill(img.begin() + sim::kVersionOffset, img.begin() + sim::kVersionOffset + 4, 0xFF);
  EXPECT_EQ(sim::app_image_version(img), 7u);
  img[0xEC + 16] ^= 1;  // the check word no longer matches: no record, no marker
  EXPECT_EQ(sim::app_image_version(img), std::nullopt);
}

TEST_P(UpdateTest, DeviceInRecoveryTakesAnImage) {
  // The application area is blank: the bootloader's recovery client answers instead.
  sim::Device blank(L);
  blank.boot();
  EXPECT_TRUE(blank.in_recovery());
  Session s(v2, 2);
  sim::run_session(blank, s);
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << s.detail();
  EXPECT_TRUE(blank.running_application());
  EXPECT_EQ(blank.running_version(), 2u);
}

// Wear: the flag area and the journal are erased on every update, so they bound the device's
// life (STM32F103 flash: 10,000 erase cycles per page, DS5319; W25Q: 100,000 per sector). Per
// update in the steady state: flag area 2 erases (OTA-START is written over the area the last
// report cleared; the move to OTA-SUCCESS; the clear after the report), journal 2 (begin,
// clear), every other unit at most 1. docs/design.md turns this into a number of updates.
TEST_P(UpdateTest, EachUpdateErasesFlagsAndJournalTwiceAndOtherUnitsOnce) {
  auto medium_erases = [&](const ota::Region& r, std::uint32_t offset) -> std::uint32_t {
    return r.medium == ota::Medium::internal ? dev.internal().erases(r.base + offset - ota::kFlashBase)
                                             : dev.chip().erases(r.base + offset);
  };
  auto snapshot = [&](const ota::Region& r) {
    std::vector<std::uint32_t> counts;
    for (std::uint32_t off = 0; off < r.size; off += ota::unit_of(r)) counts.push_back(medium_erases(r, off));
    return counts;
  };
  // One update first, so that the next one starts from the steady state (a report cleared).
  Session first(v2, 2);
  sim::run_session(dev, first);
  ASSERT_EQ(first.outcome(), Outcome::upgraded) << first.detail();
  const auto v3 = sim::make_app_image(L, 3, L.image_limit);
  const std::vector<const ota::Region*> regions = {&L.app, &L.staging, &L.flags};
  std::vector<std::vector<std::uint32_t>> before;
  for (const ota::Region* r : regions) before.push_back(snapshot(*r));
  Session second(v3, 3);
  sim::run_session(dev, second);
  ASSERT_EQ(second.outcome(), Outcome::upgraded) << second.detail();
  const ota::Region journal = L.journal();
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const auto after = snapshot(*regions[i]);
    const std::uint32_t unit = ota::unit_of(*regions[i]);
    for (std::size_t u = 0; u < after.size(); ++u) {
      const std::uint32_t addr = regions[i]->base + static_cast<std::uint32_t>(u) * unit;
      const std::uint32_t n = after[u] - before[i][u];
      const std::uint32_t limit = regions[i] == &L.flags || addr == journal.base ? 2 : 1;
      EXPECT_LE(n, limit) << std::hex << "unit at 0x" << addr;
      if (regions[i] == &L.flags) {
        EXPECT_GE(n, 1u) << "the flag area is erased by an update";
      }
    }
  }
  expect_runs(v3, 3);
}

// Every unit of a download stored but "OTA-START" never written (a power cut between the last
// unit's marker and the flag, or a failed flag write): the next START resumes at packet_count and
// the device answers RESULT at once. If that RESULT is lost the server has no DATA left to send;
// it must still draw the RESULT out of the device (by re-sending the last packet) instead of
// timing out with the device upgraded or its checksum verdict unknown.
class ResumeAtTheEnd : public ::testing::Test {
 protected:
  const ota::Layout& L = ota::kInternalLayout;
  sim::Device dev{L};
  std::vector<std::uint8_t> v2 = sim::make_app_image(L, 2, 8192);

  void SetUp() override {
    dev.factory_install(sim::make_app_image(L, 1, 8192));
    dev.boot();
  }
  // The journal of v2's download with every unit done, over staging that holds `staged`.
  void stored(const std::vector<std::uint8_t>& staged) {
    const ota::FlashMap map{L, dev.internal(), nullptr};
    ota::Journal journal(map);
    ASSERT_TRUE(journal.begin({8192, ota::crc32(v2.data(), v2.size()), 2, 256, 32}));
    for (std::uint32_t u = 0; u < 8; ++u) {
      ASSERT_TRUE(journal.mark_unit_done(u));
      ASSERT_TRUE(dev.internal().erase(L.staging.base + u * ota::kFlashPage));
    }
    ASSERT_TRUE(dev.internal().write(L.staging.base, staged.data(), staged.size()));
  }
  // Drops the first frame of each of `types`, in that order, on the way to the server.
  static sim::WireOptions losing(std::vector<ota::MsgType> types) {
    sim::WireOptions w;
    w.to_server = [types, next = std::size_t{0}](std::vector<std::uint8_t>& b) mutable {
      std::vector<std::uint8_t> kept, frame;
      for (std::uint8_t x : b) {
        frame.push_back(x);
        if (x != 0) continue;
        ota::FrameDecoderBuffer<64> d;
        bool drop = false;
        for (std::uint8_t y : frame)
          if (d.feed(y) == ota::FrameDecoder::Event::frame && next < types.size())
            drop = d.frame().type == static_cast<std::uint8_t>(types[next]);
        if (drop) ++next;
        else kept.insert(kept.end(), frame.begin(), frame.end());
        frame.clear();
      }
      kept.insert(kept.end(), frame.begin(), frame.end());
      b = kept;
    };
    return w;
  }
  static bool resumed_at_the_end(Session& s) {
    bool at_end = false;
    for (const auto& e : s.take_events()) at_end |= e.kind == "resume" && e.text.find("packet 32 of 32") != std::string::npos;
    return at_end;
  }
};

TEST_F(ResumeAtTheEnd, ALostChecksumVerdictIsAskedForAgain) {
  auto wrong = v2;
  wrong[3000] ^= 1;  // a unit whose marker outlived its data
  stored(wrong);
  Session s(v2, 2);
  sim::run_session(dev, s, losing({ota::MsgType::result}));
  EXPECT_TRUE(resumed_at_the_end(s));
  EXPECT_EQ(s.outcome(), Outcome::checksum_failed) << ota::host::to_string(s.outcome()) << ": " << s.detail();
  // Both CRCs in 8 hex digits, as `ota image info` and `ota status` show them.
  char want[24];
  std::snprintf(want, sizeof want, ", image has %08X", ota::crc32(v2.data(), v2.size()));
  EXPECT_NE(s.detail().find(want), std::string::npos) << s.detail();
  EXPECT_EQ(dev.running_version(), 1u);
}

TEST_F(ResumeAtTheEnd, ALostResultAndALostBootHelloStillEndUpgraded) {
  stored(v2);
  Session s(v2, 2);
  sim::run_session(dev, s, losing({ota::MsgType::result, ota::MsgType::hello}));
  EXPECT_TRUE(resumed_at_the_end(s));
  EXPECT_EQ(s.outcome(), Outcome::upgraded) << ota::host::to_string(s.outcome()) << ": " << s.detail();
  EXPECT_EQ(dev.running_version(), 2u);
}

// The device's layout_check scans 64 bytes at a time plus AppInfo::kSize of overlap: a record
// that starts 4 or 8 bytes past a 64-byte step (68, 72, 132, ...) has its first 24 bytes inside
// the earlier piece but not its rate, and is read whole from the next. An image built for another
// link rate is refused wherever its record starts in the first 512 bytes, as the host reads it.
TEST_P(UpdateTest, AnImageForAnotherLinkRateIsRefusedWhereverItsRecordStarts) {
  for (const std::uint32_t at : {0x50u, 0x44u, 0x48u, 0x84u, 0x1C8u}) {  // 0x50: whole in one chunk (refused)
    SCOPED_TRACE(at);
    sim::Device dev{L};
    dev.set_link_baud(115200);
    dev.factory_install(v1);
    dev.boot();
    const auto img = with_app_info(sim::make_app_image(L, 2, 8192), ota::AppInfo::make(L.id, 2).at_link_baud(9600), at);
    ota::AppInfo seen;
    ASSERT_TRUE(ota::find_image_app_info(img.data(), img.size(), seen));
    ASSERT_EQ(seen.link_baud, 9600u);  // as the host reads it
    Session s(img, 2);
    sim::run_session(dev, s);
    EXPECT_EQ(s.outcome(), Outcome::refused) << s.detail();
    dev.power_cycle();
    EXPECT_EQ(dev.running_version(), 1u);
  }
}

// A flag sector that no longer takes a write (worn: docs/design.md, "Wear"; the W25Q's sector 15
// here), with the journal's sector still good: the install copies and verifies v2, sets its
// "installed" marker, then cannot move the flag. v2 runs, OTA-START stays, and its HELLO says
// install_failed with no session CRC (the journal says installed: nothing is staged that is not
// installed). The push that delivered v2 ends upgraded "(installed, but the install flag could not
// be cleared ...)". A second push of that same v2 file must find the device up to date: no other
// image is armed (the one armed is v2 itself, already installed), so there is nothing to disarm.
TEST(UpdateExternal, APushOfTheVersionAnInstallWhoseFlagStuckInstalledIsUpToDate) {
  const ota::Layout& L = ota::kExternalLayout;
  sim::Device dev(L);
  const auto v1 = sim::make_app_image(L, 1, 10 * 1024);
  const auto v2 = sim::make_app_image(L, 2, 12 * 1024);
  dev.factory_install(v1);
  // v2 staged as a download leaves it (test::stage), through the device's own parts.
  ota::W25qFlash ext(dev.chip(), ota::kW25qUsed, 1000);
  const ota::FlashMap map{L, dev.internal(), &ext};
  std::copy(v2.begin(), v2.end(), dev.chip().bytes().begin() + L.staging.base);
  const auto n = static_cast<std::uint32_t>(v2.size());
  ota::Journal j{map};
  ASSERT_TRUE(j.begin({n, ota::crc32(v2.data(), n), 2, 256, static_cast<std::uint16_t>(ota::packet_count_for(n, 256))}));
  for (std::uint32_t u = 0; u < j.units_for(n); ++u) ASSERT_TRUE(j.mark_unit_done(u));
  ASSERT_TRUE(ota::FlagStore(map).set(ota::Flag::start));
  dev.chip().protect(L.flags.base, L.flags.end());  // the flag sector only
  dev.boot();
  ASSERT_EQ(dev.last_install(), ota::Installer::Result::failed);
  ASSERT_EQ(dev.running_version(), 2u);
  ASSERT_TRUE(j.installed()) << "the journal says the install was done";

  Session again(v2, 2);
  sim::run_session(dev, again);
  std::string start;
  for (const auto& e : again.take_events())
    if (e.kind == "start") start = e.text;
  EXPECT_EQ(again.outcome(), Outcome::up_to_date)
      << ota::host::to_string(again.outcome()) << ": " << again.detail() << "\nstart: " << start;
  EXPECT_EQ(start.find("another image is armed"), std::string::npos)
      << "the push says another image is armed; the one armed is v2, installed and running: " << start;
  EXPECT_EQ(dev.running_version(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, UpdateTest,
                         ::testing::Values(&ota::kInternalLayout, &ota::kExternalLayout),
                         test::LayoutName());

}  // namespace

// The server's session ends, whatever a broken or hostile device does: one that fails at the same
// packet again and again, one that restarts on every DATA, one that asks for chunks no image can
// be cut into. (A session that never ends holds `ota push` and a connection of `ota serve` for
// ever, and fills its log.)
#include <gtest/gtest.h>

#include <functional>
#include <utility>

#include "ota/bytes.hpp"
#include "ota/client.hpp"
#include "ota/frame.hpp"
#include "ota/host/session.hpp"
#include "ota/protocol.hpp"
#include "sim/device.hpp"
#include "support.hpp"

namespace {

using ota::MsgType;
using ota::Status;
using ota::host::Outcome;
using ota::host::Session;

constexpr std::uint64_t kTenMinutes = 10ull * 60 * 1000;

// The internal flash of test::Parts, whose program operations fail at one address (a worn cell).
struct WornFlash final : ota::Flash {
  WornFlash(ota::Flash& f, std::uint32_t worn) : ota::Flash(f.geometry()), inner(f), worn(worn) {}
  bool read(std::uint32_t a, void* d, std::size_t n) override { return inner.read(a, d, n); }
  bool write(std::uint32_t a, const void* s, std::size_t n) override {
    if (a <= worn && worn < a + n) return false;
    return inner.write(a, s, n);
  }
  bool erase(std::uint32_t a) override { return inner.erase(a); }
  ota::Flash& inner;
  std::uint32_t worn;
};

// Runs `s` against the real client, 1 ms per step, until it ends or `limit` ms have passed.
void drive(Session& s, ota::UpdateClient& c, test::FrameWire& w, std::uint64_t limit) {
  std::uint64_t t = 0;
  s.begin(t);
  while (!s.done() && t < limit) {
    const auto to_device = s.take_output();
    c.receive(to_device.data(), to_device.size());
    const auto to_server = std::exchange(w.out, {});
    s.on_bytes(to_server.data(), to_server.size(), t);
    s.on_tick(t++);
  }
}

// A device of our own whose staging page fails to program at its third packet: it NAKs back to
// the unit's start, ACKs the first two packets again, fails again. Those ACKs are not progress.
TEST(SessionLimits, AStagingPageThatAlwaysFailsMidUnitEndsTheSession) {
  const ota::Layout& L = ota::kInternalLayout;
  test::Parts parts(L);
  WornFlash worn(parts.internal, L.staging.base + 2 * ota::kMaxChunk);
  const ota::FlashMap map{L, worn, nullptr};
  test::FrameWire wire;
  ota::DeviceInfo info;
  info.app_version = 1;
  ota::UpdateClient client(map, wire, info);
  client.boot();
  wire.out.clear();
  Session s(sim::make_app_image(L, 2, 4 * 1024), 2);
  drive(s, client, wire, kTenMinutes);
  ASSERT_TRUE(s.done()) << "still in " << ota::host::to_string(s.phase()) << " after " << s.frames_sent()
                        << " DATA frames";
  EXPECT_EQ(s.outcome(), Outcome::timeout);
  EXPECT_NE(s.detail().find("keeps refusing: flash error"), std::string::npos) << s.detail();
  EXPECT_LT(s.frames_sent(), 200u);
}

// A device scripted frame by frame: it says HELLO (v1, `window`) when asked, accepts START at
// packet 0, and answers each DATA with `on_data(index, reply)`.
using Reply = std::function<void(MsgType, const std::uint8_t*, std::size_t)>;
struct Scripted {
  ota::Hello hello;
  std::function<void(std::uint16_t, const Reply&)> on_data;
  std::uint16_t next = 0;  // where START_REPLY says the download resumes
  std::uint32_t starts = 0;
  std::uint16_t packet_size = 0;  // of the last START
  bool restarted = false;

  void run(Session& s) {
    ota::FrameDecoderBuffer<300> dec;
    std::uint64_t now = 0;
    const Reply reply = [&](MsgType t, const std::uint8_t* p, std::size_t n) {
      std::uint8_t b[300];
      s.on_bytes(b, ota::encode_frame(static_cast<std::uint8_t>(t), p, n, b, sizeof b), now);
    };
    s.begin(now);
    for (; !s.done() && now < kTenMinutes; ++now) {
      restarted = false;
      for (const std::uint8_t byte : s.take_output()) {
        if (dec.feed(byte) != ota::FrameDecoder::Event::frame) continue;
        const ota::Frame f = dec.frame();
        std::uint8_t p[64];
        if (f.type == static_cast<std::uint8_t>(MsgType::hello_request)) {
          say_hello(reply);
        } else if (ota::Start st; f.type == static_cast<std::uint8_t>(MsgType::start) && ota::decode(f, st)) {
          ++starts;
          packet_size = st.packet_size;
          ota::encode(ota::StartReply{Status::ok, next}, p);
          reply(MsgType::start_reply, p, ota::StartReply::kSize);
        } else if (f.type == static_cast<std::uint8_t>(MsgType::data)) {
          on_data(ota::get_u16(f.payload), reply);
          if (restarted) break;  // what else the burst held is lost with the device's RAM
        }
      }
      s.on_tick(now);
    }
  }
  // Its boot HELLO, also its answer to HELLO_REQ.
  void say_hello(const Reply& reply) {
    restarted = true;
    std::uint8_t p[ota::Hello::kSize];
    ota::encode(hello, p);
    reply(MsgType::hello, p, sizeof p);
  }
  Scripted() {
    hello.layout = ota::LayoutId::internal;
    hello.app_version = 1;
    hello.window = 4;
  }
};

Session v2_session(const ota::host::SessionOptions& o = {}) {
  return Session(sim::make_app_image(ota::kInternalLayout, 2, 8 * 1024), 2, o);  // 32 packets
}

// A supply that sags on the first erase: the device restarts (its boot HELLO) on every DATA.
TEST(SessionLimits, ADeviceThatRestartsOnEveryDataEndsTheSession) {
  Scripted dev;
  dev.on_data = [&](std::uint16_t, const Reply& reply) { dev.say_hello(reply); };
  Session s = v2_session();
  dev.run(s);
  ASSERT_TRUE(s.done()) << dev.starts << " STARTs accepted";
  EXPECT_EQ(s.outcome(), Outcome::timeout);
  EXPECT_NE(s.detail().find("restarts during the download"), std::string::npos) << s.detail();
  EXPECT_LE(dev.starts, 14u);
}

// The same through NAK no_session (the device lost the download without saying HELLO first).
TEST(SessionLimits, ADeviceThatLosesTheDownloadOnEveryDataEndsTheSession) {
  Scripted dev;
  dev.on_data = [](std::uint16_t, const Reply& reply) {
    std::uint8_t p[ota::Nak::kSize];
    ota::encode(ota::Nak{Status::no_session, 0}, p);
    reply(MsgType::data_nak, p, sizeof p);
  };
  Session s = v2_session();
  dev.run(s);
  ASSERT_TRUE(s.done()) << dev.starts << " STARTs accepted";
  EXPECT_EQ(s.outcome(), Outcome::timeout);
  EXPECT_NE(s.detail().find("restarts during the download"), std::string::npos) << s.detail();
}

// ACK of packet 0, then a NAK back to 0 for every later packet, for ever.
TEST(SessionLimits, AckThenNakBackToTheStartEndsTheSession) {
  Scripted dev;
  dev.hello.window = 1;
  dev.on_data = [](std::uint16_t index, const Reply& reply) {
    std::uint8_t p[ota::Nak::kSize];
    if (index == 0) {
      ota::put_u16(p, 1);
      reply(MsgType::data_ack, p, 2);
    } else {
      ota::encode(ota::Nak{Status::flash_error, 0}, p);
      reply(MsgType::data_nak, p, sizeof p);
    }
  };
  Session s = v2_session();
  dev.run(s);
  ASSERT_TRUE(s.done());
  EXPECT_EQ(s.outcome(), Outcome::timeout);
  EXPECT_LT(s.frames_sent(), 100u);
}

// A device that gets further each time it restarts is not given up: the retries count from the
// furthest packet it has held. (It restarts after every fourth packet and resumes where it was:
// 7 restarts, with 3 retries allowed.)
TEST(SessionLimits, ADeviceThatRestartsButGetsFurtherEachTimeIsServedToTheEnd) {
  Scripted dev;
  std::uint16_t held = 0;
  dev.on_data = [&](std::uint16_t index, const Reply& reply) {
    if (index == held) ++held;
    if (held % 4 == 0 && index + 1u == held && held < 32) {
      dev.next = held;
      dev.say_hello(reply);  // restarts; its START_REPLY resumes at `held`
      return;
    }
    if (held == 32) {  // the whole image: the checksum verdict
      std::uint8_t p[ota::Result::kSize];
      ota::encode(ota::Result{Status::ok, 0}, p);
      reply(MsgType::result, p, sizeof p);
      return;
    }
    std::uint8_t p[2];
    ota::put_u16(p, held);
    reply(MsgType::data_ack, p, sizeof p);
  };
  ota::host::SessionOptions o;
  o.max_retries = 3;
  Session s = v2_session(o);
  dev.run(s);
  EXPECT_EQ(held, 32u) << s.detail();
  EXPECT_EQ(dev.starts, 8u) << s.detail();
  bool downloaded = false;
  for (const auto& e : s.take_events()) downloaded |= e.kind == "downloaded";
  EXPECT_TRUE(downloaded) << s.detail();
}

// A HELLO that allows chunks below the protocol's minimum is an error; one that allows a size that
// does not divide the staging unit gets the largest power of two under it.
TEST(SessionLimits, TheChunkSizeIsAPowerOfTwoWithinTheDevicesLimit) {
  {
    Scripted dev;
    dev.hello.max_chunk = 0;
    Session s = v2_session();
    dev.run(s);
    EXPECT_EQ(s.outcome(), Outcome::protocol_error);
    EXPECT_NE(s.detail().find("chunks of 0 bytes"), std::string::npos) << s.detail();
    EXPECT_EQ(dev.starts, 0u);
  }
  Scripted dev;
  dev.hello.max_chunk = 200;
  dev.on_data = [](std::uint16_t, const Reply&) {};
  Session s = v2_session();
  dev.run(s);
  EXPECT_EQ(dev.packet_size, 128u) << s.detail();
}

}  // namespace

namespace {

// A device that used most of its retries (flash errors at its last unit), then took the last
// packet: its RESULT ok is lost and it resets. Its HELLO after the reset is its answer, not a
// restart that uses a retry: running v2 with an upgrade-OK report, the push is `upgraded`; in
// recovery mode reporting that the install failed, with the whole image staged, `upgrade_failed`
// (after the image is offered again and the install fails again), not a timeout.
Outcome lost_result_then(bool install_fails) {
  Session s = v2_session();  // 32 packets, 12 retries
  ota::FrameDecoderBuffer<300> dec;
  std::uint64_t now = 0;
  const Reply reply = [&](MsgType t, const std::uint8_t* p, std::size_t n) {
    std::uint8_t b[300];
    s.on_bytes(b, ota::encode_frame(static_cast<std::uint8_t>(t), p, n, b, sizeof b), now);
  };
  ota::Hello hello;
  hello.window = 1;
  hello.app_version = 1;
  const auto say_hello = [&] {
    std::uint8_t p[ota::Hello::kSize];
    ota::encode(hello, p);
    reply(MsgType::hello, p, sizeof p);
  };
  const auto reset = [&] {  // the bootloader installs v2, or fails to and stays in recovery
    if (install_fails) {
      hello.role = ota::Role::recovery;
      hello.app_version = 0;
      hello.report = ota::Report::install_failed;
      hello.session_crc = s.image_crc();
      hello.session_next = 32;
    } else {
      hello.app_version = 2;
      hello.report = ota::Report::upgrade_ok;
    }
    say_hello();
  };
  int naks = 0;
  std::uint64_t reset_at = 0;
  s.begin(now);
  for (; !s.done() && now < kTenMinutes; ++now) {
    if (reset_at != 0 && now == reset_at + 2000) reset();
    for (const std::uint8_t byte : s.take_output()) {
      if (dec.feed(byte) != ota::FrameDecoder::Event::frame) continue;
      const ota::Frame f = dec.frame();
      std::uint8_t p[ota::Result::kSize];
      const auto type = static_cast<MsgType>(f.type);
      if (type == MsgType::hello_request) {
        say_hello();
      } else if (type == MsgType::report_ack) {
        hello.report = ota::Report::none;
        say_hello();
      } else if (type == MsgType::start && reset_at == 0) {
        ota::encode(ota::StartReply{Status::ok, 0}, p);
        reply(MsgType::start_reply, p, ota::StartReply::kSize);
      } else if (type == MsgType::start) {  // offered again: every packet is there
        ota::encode(ota::StartReply{Status::ok, 32}, p);
        reply(MsgType::start_reply, p, ota::StartReply::kSize);
        ota::encode(ota::Result{Status::ok, 0}, p);
        reply(MsgType::result, p, ota::Result::kSize);
        reset_at = now;
      } else if (type == MsgType::data && reset_at == 0) {
        const std::uint16_t index = ota::get_u16(f.payload);
        if (index == 31 && naks < 11) {  // the last unit fails to program, 11 times
          ++naks;
          ota::encode(ota::Nak{Status::flash_error, 28}, p);
          reply(MsgType::data_nak, p, ota::Nak::kSize);
        } else if (index == 31) {
          reset_at = now;  // verified, RESULT ok lost on the link, reset
        } else {
          ota::put_u16(p, static_cast<std::uint16_t>(index + 1));
          reply(MsgType::data_ack, p, 2);
        }
      }
    }
    s.on_tick(now);
  }
  return s.outcome();
}

TEST(SessionLimits, AnAnswerAfterALostResultUsesNoRetry) {
  EXPECT_EQ(lost_result_then(false), Outcome::upgraded);
  EXPECT_EQ(lost_result_then(true), Outcome::upgrade_failed);
}

}  // namespace

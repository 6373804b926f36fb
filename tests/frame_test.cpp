// The frame codec (ota/frame.hpp): COBS + 0x00 delimiter + CRC-16/CCITT-FALSE over type+payload.
// Round trips, the wire format checked with an independent COBS decoder, and every kind of bad
// input rejected with the right FrameError while the decoder stays in step for the next frame.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "ota/crc.hpp"
#include "ota/frame.hpp"

namespace {

using ota::FrameDecoder;
using ota::FrameError;
using Bytes = std::vector<std::uint8_t>;

// What the decoder reported at one delimiter.
struct Got {
  bool frame = false;
  FrameError error = FrameError::none;
  std::uint8_t type = 0;
  Bytes payload;
};

Bytes encode(std::uint8_t type, const Bytes& payload) {
  Bytes out(ota::encoded_size_max(payload.size()));
  const std::size_t n = ota::encode_frame(type, payload.data(), payload.size(), out.data(), out.size());
  EXPECT_NE(n, 0u);
  out.resize(n);
  return out;
}

std::vector<Got> feed(FrameDecoder& d, const Bytes& wire) {
  std::vector<Got> got;
  for (std::uint8_t b : wire) {
    switch (d.feed(b)) {
      case FrameDecoder::Event::frame: {
        const ota::Frame f = d.frame();
        got.push_back(Got{true, FrameError::none, f.type, Bytes(f.payload, f.payload + f.len)});
        break;
      }
      case FrameDecoder::Event::error: got.push_back(Got{false, d.error(), 0, {}}); break;
      case FrameDecoder::Event::none: break;
    }
  }
  return got;
}

// A decoder large enough for every test here unless a test says otherwise.
struct BigDecoder : ota::FrameDecoderBuffer<2000> {};

Bytes random_bytes(std::mt19937& rng, std::size_t n, int zero_percent = 0) {
  Bytes v(n);
  for (auto& b : v) {
    if (static_cast<int>(rng() % 100) < zero_percent) b = 0;
    else b = static_cast<std::uint8_t>(rng());
  }
  return v;
}

Bytes nonzero_bytes(std::mt19937& rng, std::size_t n) {
  Bytes v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(1 + rng() % 255);
  return v;
}

// Independent reference: plain COBS decoding of one delimited frame (without its 0x00).
bool cobs_decode(const Bytes& in, Bytes& out) {
  out.clear();
  std::size_t i = 0;
  while (i < in.size()) {
    const std::uint8_t code = in[i++];
    if (code == 0) return false;
    for (int k = 1; k < code; ++k) {
      if (i >= in.size()) return false;
      out.push_back(in[i++]);
    }
    if (code != 0xFF && i < in.size()) out.push_back(0);
  }
  return true;
}

Bytes raw_frame(std::uint8_t type, const Bytes& payload) {
  Bytes raw{type};
  raw.insert(raw.end(), payload.begin(), payload.end());
  const std::uint16_t crc = ota::crc16_ccitt(raw.data(), raw.size());
  raw.push_back(static_cast<std::uint8_t>(crc));
  raw.push_back(static_cast<std::uint8_t>(crc >> 8));
  return raw;
}

// Independent reference: plain COBS encoding of any byte string, with the delimiter. `lean`: a
// frame that ends with a full 254-byte block gets no extra empty block (some encoders do that).
Bytes cobs_encode(const Bytes& raw, bool lean = false) {
  Bytes out{0};
  std::size_t code_at = 0;
  std::uint8_t code = 1;
  for (std::uint8_t b : raw) {
    if (b == 0) {
      out[code_at] = code;
      code_at = out.size();
      out.push_back(0);
      code = 1;
      continue;
    }
    out.push_back(b);
    if (++code == 0xFF) {
      out[code_at] = code;
      code_at = out.size();
      out.push_back(0);
      code = 1;
    }
  }
  if (lean && code == 1 && code_at + 1 == out.size() && code_at > 0 && out[code_at - 255] == 0xFF &&
      raw.back() != 0) {
    out.pop_back();  // the empty block after a full one at the very end
  } else {
    out[code_at] = code;
  }
  out.push_back(0);
  return out;
}

void expect_round_trip(std::uint8_t type, const Bytes& payload) {
  const Bytes wire = encode(type, payload);
  ASSERT_FALSE(wire.empty());
  EXPECT_LE(wire.size(), ota::encoded_size_max(payload.size()));
  EXPECT_EQ(wire.back(), 0x00);
  EXPECT_EQ(std::count(wire.begin(), wire.end(), 0x00), 1) << "a 0x00 inside the frame";
  // The wire format, checked without the decoder under test.
  Bytes raw;
  ASSERT_TRUE(cobs_decode(Bytes(wire.begin(), wire.end() - 1), raw));
  EXPECT_EQ(raw, raw_frame(type, payload));

  BigDecoder d;
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].frame) << "error " << static_cast<int>(got[0].error);
  EXPECT_EQ(got[0].type, type);
  EXPECT_EQ(got[0].payload, payload);
}

// ---- round trips ---------------------------------------------------------------------------

TEST(FrameRoundTrip, EmptyPayload) {
  expect_round_trip(0x01, {});
  expect_round_trip(0x00, {});  // type 0 is a zero byte too
  expect_round_trip(0xFF, {});
}

TEST(FrameRoundTrip, KnownWireBytes) {
  // HELLO_REQ of docs/protocol.md: CRC-16 of 01 is 0xF1D1, one COBS block of 3 bytes.
  EXPECT_EQ(encode(0x01, {}), (Bytes{0x04, 0x01, 0xD1, 0xF1, 0x00}));
  // Zeros in the payload become code bytes.
  const Bytes p{0x00, 0x00, 0x00};
  const Bytes raw = raw_frame(0x82, p);
  EXPECT_EQ(encode(0x82, p), (Bytes{0x02, 0x82, 0x01, 0x01, 0x03, raw[4], raw[5], 0x00}));
}

TEST(FrameRoundTrip, PayloadsWithZeros) {
  expect_round_trip(0x03, {0x00});
  expect_round_trip(0x03, {0x00, 0x01, 0x00, 0x00, 0x02, 0x00});
  expect_round_trip(0x03, {0x01, 0x02, 0x03, 0x00});
  expect_round_trip(0x03, {0x00, 0xFF, 0x00, 0xFF});
}

TEST(FrameRoundTrip, AllZeroAndAllFfPayloads) {
  for (std::size_t n : {1u, 2u, 3u, 100u, 253u, 254u, 255u, 256u, 258u, 500u, 1000u}) {
    SCOPED_TRACE(n);
    expect_round_trip(0x03, Bytes(n, 0x00));
    expect_round_trip(0x03, Bytes(n, 0xFF));
  }
}

TEST(FrameRoundTrip, SizesAroundTheCobsBlockBoundary) {
  // Type + payload + CRC crosses 254 bytes, the longest COBS block, for payloads of 251..
  std::mt19937 rng(254);
  for (std::size_t n = 240; n <= 270; ++n) {
    SCOPED_TRACE(n);
    expect_round_trip(0xA5, Bytes(n, 0xFF));
    expect_round_trip(0xA5, nonzero_bytes(rng, n));
    expect_round_trip(0xA5, random_bytes(rng, n, 2));
    Bytes zero_at_end = nonzero_bytes(rng, n);
    zero_at_end.back() = 0;
    expect_round_trip(0xA5, zero_at_end);
  }
  // Two full blocks and more.
  for (std::size_t n = 500; n <= 515; ++n) expect_round_trip(0x5A, nonzero_bytes(rng, n));
}

TEST(FrameRoundTrip, RandomPayloads) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    const std::size_t n = rng() % 600;
    const int zeros = static_cast<int>(rng() % 4) * 10;
    expect_round_trip(static_cast<std::uint8_t>(rng()), random_bytes(rng, n, zeros));
    if (HasFailure()) return;
  }
}

TEST(FrameRoundTrip, ManyFramesBackToBack) {
  std::mt19937 rng(99);
  Bytes wire;
  std::vector<std::pair<std::uint8_t, Bytes>> sent;
  for (int i = 0; i < 200; ++i) {
    sent.emplace_back(static_cast<std::uint8_t>(rng()), random_bytes(rng, rng() % 300, 5));
    const Bytes w = encode(sent.back().first, sent.back().second);
    wire.insert(wire.end(), w.begin(), w.end());
  }
  BigDecoder d;
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].frame) << i;
    EXPECT_EQ(got[i].type, sent[i].first);
    EXPECT_EQ(got[i].payload, sent[i].second);
  }
}

TEST(FrameRoundTrip, TheReferenceEncoderIsDecodedToo) {
  // A peer whose COBS encoder ends a frame of exactly 254 non-zero bytes with or without an
  // extra empty block is understood either way.
  std::mt19937 rng(7);
  int lean_differs = 0;
  for (int i = 0; i < 200; ++i) {
    const std::size_t n = 245 + i % 20;
    const Bytes payload = nonzero_bytes(rng, n);
    const Bytes raw = raw_frame(0x33, payload);
    for (bool lean : {false, true}) {
      const Bytes wire = cobs_encode(raw, lean);
      if (lean && wire != cobs_encode(raw)) ++lean_differs;
      BigDecoder d;
      const auto got = feed(d, wire);
      ASSERT_EQ(got.size(), 1u);
      ASSERT_TRUE(got[0].frame) << n << (lean ? " lean" : "");
      EXPECT_EQ(got[0].payload, payload);
    }
  }
  EXPECT_GT(lean_differs, 0) << "no frame of exactly 254 non-zero bytes was tried";
}

TEST(FrameRoundTrip, LargestPayloadTheDecoderAccepts) {
  // FrameDecoderBuffer<N> takes payloads up to N bytes; N + 1 is too long.
  constexpr std::size_t kN = 258;  // the device's: DATA index + kMaxChunk
  ota::FrameDecoderBuffer<kN> d;
  std::mt19937 rng(258);
  for (int zeros : {0, 3, 50}) {
    const Bytes max = random_bytes(rng, kN, zeros);
    auto got = feed(d, encode(0x03, max));
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(got[0].frame);
    EXPECT_EQ(got[0].payload, max);

    got = feed(d, encode(0x03, random_bytes(rng, kN + 1, zeros)));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_FALSE(got[0].frame);
    EXPECT_EQ(got[0].error, FrameError::too_long);
  }
  // And the next frame is fine.
  const auto got = feed(d, encode(0x03, Bytes{1, 2, 3}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].frame);
}

TEST(FrameRoundTrip, SmallDecoderCapacities) {
  // Capacity 3 holds type + CRC only: an empty payload decodes, one byte more does not.
  ota::FrameDecoderBuffer<0> d;
  auto got = feed(d, encode(0x05, {}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].frame);
  EXPECT_EQ(got[0].payload.size(), 0u);
  got = feed(d, encode(0x05, {0x00}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, FrameError::too_long);
}

// ---- encoder limits -------------------------------------------------------------------------

TEST(FrameEncode, ReturnsZeroWhenTheBufferIsTooSmallAndNeverWritesPastIt) {
  std::mt19937 rng(5);
  for (std::size_t n : {0u, 1u, 10u, 251u, 252u, 253u, 254u, 300u}) {
    const Bytes payload = random_bytes(rng, n, 10);
    const Bytes good = encode(0x03, payload);
    for (std::size_t cap = 0; cap < good.size(); ++cap) {
      Bytes out(cap + 16, 0xEE);
      EXPECT_EQ(ota::encode_frame(0x03, payload.data(), payload.size(), out.data(), cap), 0u)
          << "payload " << n << ", cap " << cap;
      for (std::size_t i = cap; i < out.size(); ++i)
        ASSERT_EQ(out[i], 0xEE) << "wrote past cap " << cap << " at " << i;
    }
    Bytes exact(good.size());
    EXPECT_EQ(ota::encode_frame(0x03, payload.data(), payload.size(), exact.data(), exact.size()),
              good.size());
    EXPECT_EQ(exact, good);
  }
}

TEST(FrameEncode, EncodedSizeMaxIsEnoughForEveryLength) {
  // The worst case is a frame without zeros (one extra code byte per 254 bytes).
  std::mt19937 rng(6);
  for (std::size_t n = 0; n <= 1100; ++n) {
    for (const Bytes& payload : {Bytes(n, 0xFF), nonzero_bytes(rng, n), random_bytes(rng, n, 5)}) {
      Bytes out(ota::encoded_size_max(n));
      const std::size_t w = ota::encode_frame(0x7E, payload.data(), n, out.data(), out.size());
      ASSERT_NE(w, 0u) << "payload " << n;
      ASSERT_LE(w, out.size());
    }
  }
}

// ---- bad frames ------------------------------------------------------------------------------

// Re-encodes a raw frame after changing it, without fixing its CRC.
Bytes corrupt_raw(std::uint8_t type, const Bytes& payload, std::size_t bit) {
  Bytes raw = raw_frame(type, payload);
  raw[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  return cobs_encode(raw);
}

TEST(FrameReject, OneBitFlippedAnywhereIsABadCrc) {
  std::mt19937 rng(11);
  for (std::size_t n : {0u, 1u, 2u, 24u, 34u, 100u, 258u}) {
    const Bytes payload = random_bytes(rng, n, 10);
    const Bytes next = encode(0x42, {0x10, 0x00, 0x20});
    BigDecoder d;
    for (std::size_t bit = 0; bit < (n + 3) * 8; ++bit) {
      Bytes wire = corrupt_raw(0x03, payload, bit);
      wire.insert(wire.end(), next.begin(), next.end());
      const auto got = feed(d, wire);
      ASSERT_EQ(got.size(), 2u) << "payload " << n << " bit " << bit;
      EXPECT_FALSE(got[0].frame);
      EXPECT_EQ(got[0].error, FrameError::bad_crc) << "payload " << n << " bit " << bit;
      ASSERT_TRUE(got[1].frame);
      EXPECT_EQ(got[1].type, 0x42);
    }
  }
}

TEST(FrameReject, ABitFlippedOnTheWireIsNeverAFrame) {
  // Flipping wire bits can also break the COBS structure; a flip that makes a 0x00 splits the
  // frame in two. Whatever happens, nothing is delivered and the next frame is.
  std::mt19937 rng(12);
  const Bytes payload = random_bytes(rng, 40, 10);
  const Bytes good = encode(0x03, payload);
  const Bytes next = encode(0x42, {0x01});
  for (std::size_t bit = 0; bit < (good.size() - 1) * 8; ++bit) {
    Bytes wire = good;
    wire[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    wire.insert(wire.end(), next.begin(), next.end());
    BigDecoder d;
    const auto got = feed(d, wire);
    ASSERT_GE(got.size(), 2u);
    for (std::size_t i = 0; i + 1 < got.size(); ++i) {
      EXPECT_FALSE(got[i].frame) << "bit " << bit;
      EXPECT_NE(got[i].error, FrameError::none);
    }
    EXPECT_TRUE(got.back().frame) << "bit " << bit;
    EXPECT_EQ(got.back().type, 0x42);
  }
}

TEST(FrameReject, AByteLostFromTheMiddleIsBadCobsOrBadCrc) {
  std::mt19937 rng(13);
  int cobs = 0;
  int crc = 0;
  for (std::size_t n : {5u, 24u, 34u, 100u, 258u}) {
    for (int zeros : {0, 10, 50}) {
      const Bytes good = encode(0x03, random_bytes(rng, n, zeros));
      const Bytes next = encode(0x42, {0x07});
      for (std::size_t lost = 0; lost + 1 < good.size(); ++lost) {  // not the delimiter
        Bytes wire = good;
        wire.erase(wire.begin() + static_cast<std::ptrdiff_t>(lost));
        wire.insert(wire.end(), next.begin(), next.end());
        BigDecoder d;
        const auto got = feed(d, wire);
        ASSERT_EQ(got.size(), 2u) << "payload " << n << " lost byte " << lost;
        EXPECT_FALSE(got[0].frame);
        EXPECT_TRUE(got[0].error == FrameError::bad_cobs || got[0].error == FrameError::bad_crc)
            << "payload " << n << " lost byte " << lost << ": " << static_cast<int>(got[0].error);
        (got[0].error == FrameError::bad_cobs ? cobs : crc)++;
        ASSERT_TRUE(got[1].frame);
        EXPECT_EQ(got[1].payload, Bytes{0x07});
      }
    }
  }
  // Both kinds occur: a lost code byte or a lost data byte of a long block breaks COBS, a lost
  // byte just before a block ends only shifts data.
  EXPECT_GT(cobs, 0);
  EXPECT_GT(crc, 0);
}

TEST(FrameReject, ABlockCutByTheDelimiterIsBadCobs) {
  BigDecoder d;
  auto got = feed(d, Bytes{0x05, 0xAA, 0xBB, 0x00});  // the code promises 4 bytes, 2 came
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, FrameError::bad_cobs);
  // A frame cut short by a lost tail (link dropped), then the link comes back.
  Bytes wire = encode(0x03, Bytes(30, 0x11));
  wire.resize(wire.size() / 2);
  const Bytes next = encode(0x44, {});
  wire.push_back(0x00);
  wire.insert(wire.end(), next.begin(), next.end());
  got = feed(d, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error, FrameError::bad_cobs);
  EXPECT_TRUE(got[1].frame);
}

TEST(FrameReject, OversizedFrameIsTooLongAndTheDecoderRecovers) {
  ota::FrameDecoderBuffer<16> d;
  std::mt19937 rng(14);
  for (std::size_t n : {17u, 18u, 100u, 5000u}) {
    for (int zeros : {0, 20}) {
      Bytes wire = encode(0x03, random_bytes(rng, n, zeros));
      const Bytes next = encode(0x09, Bytes(16, 0x00));
      wire.insert(wire.end(), next.begin(), next.end());
      const auto got = feed(d, wire);
      ASSERT_EQ(got.size(), 2u) << n;
      EXPECT_EQ(got[0].error, FrameError::too_long) << n;
      ASSERT_TRUE(got[1].frame) << n;
      EXPECT_EQ(got[1].type, 0x09);
      EXPECT_EQ(got[1].payload, Bytes(16, 0x00));
    }
  }
  // A long run of non-zero garbage, as a modem banner or line noise would give.
  Bytes wire(10000, 0x41);
  wire.push_back(0x00);
  const Bytes next = encode(0x01, {});
  wire.insert(wire.end(), next.begin(), next.end());
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error, FrameError::too_long);
  EXPECT_TRUE(got[1].frame);
}

TEST(FrameReject, FewerThanTypeAndCrcIsTooShort) {
  BigDecoder d;
  const Bytes cases[] = {
      {0x01, 0x00},              // one empty block
      {0x02, 0x05, 0x00},        // 1 byte
      {0x03, 0x05, 0x06, 0x00},  // 2 bytes
      {0x01, 0x01, 0x00},        // 1 byte: a zero
      {0x02, 0x05, 0x01, 0x00},  // 2 bytes: 05 00
  };
  for (const Bytes& c : cases) {
    const auto got = feed(d, c);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_FALSE(got[0].frame);
    EXPECT_EQ(got[0].error, FrameError::too_short);
  }
  // Three bytes are enough to be checked: a wrong CRC, then the right one.
  auto got = feed(d, Bytes{0x04, 0x01, 0xD1, 0xF2, 0x00});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, FrameError::bad_crc);
  got = feed(d, Bytes{0x04, 0x01, 0xD1, 0xF1, 0x00});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].frame);
  EXPECT_EQ(got[0].type, 0x01);
}

TEST(FrameReject, GarbageBetweenFramesCostsNoValidFrameAfterADelimiter) {
  std::mt19937 rng(15);
  for (int i = 0; i < 500; ++i) {
    const Bytes first = encode(0x10, random_bytes(rng, rng() % 50, 10));
    const Bytes garbage = random_bytes(rng, 1 + rng() % 300, static_cast<int>(rng() % 3));
    const Bytes payload = random_bytes(rng, rng() % 50, 10);
    const Bytes valid = encode(0x20, payload);
    Bytes wire = first;
    wire.insert(wire.end(), garbage.begin(), garbage.end());
    wire.push_back(0x00);  // what a sender puts in front of a frame to flush the receiver
    wire.insert(wire.end(), valid.begin(), valid.end());
    BigDecoder d;
    const auto got = feed(d, wire);
    ASSERT_GE(got.size(), 2u);
    ASSERT_TRUE(got.front().frame);
    EXPECT_EQ(got.front().type, 0x10);
    ASSERT_TRUE(got.back().frame) << "iteration " << i;
    EXPECT_EQ(got.back().type, 0x20);
    EXPECT_EQ(got.back().payload, payload);
    // Everything in between is garbage: reported as errors, never as frames (barring a CRC-16
    // collision, which these fixed seeds do not produce).
    for (std::size_t k = 1; k + 1 < got.size(); ++k) EXPECT_FALSE(got[k].frame) << "iteration " << i;
  }
}

TEST(FrameReject, GarbageRunningIntoAFrameCostsThatFrameOnly) {
  // Without a delimiter before it the frame is glued to the garbage and lost; the next is not.
  std::mt19937 rng(16);
  const Bytes garbage = nonzero_bytes(rng, 37);
  const Bytes lost = encode(0x20, {1, 2, 3});
  const Bytes next = encode(0x21, {4, 5, 6});
  Bytes wire = garbage;
  wire.insert(wire.end(), lost.begin(), lost.end());
  wire.insert(wire.end(), next.begin(), next.end());
  BigDecoder d;
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].frame);
  ASSERT_TRUE(got[1].frame);
  EXPECT_EQ(got[1].type, 0x21);
}

TEST(FrameReject, ALostDelimiterCostsTheTwoFramesItJoined) {
  const Bytes a = encode(0x01, {0x11, 0x00, 0x22});
  const Bytes b = encode(0x02, {0x33});
  const Bytes c = encode(0x03, {0x44});
  Bytes wire(a.begin(), a.end() - 1);  // a's delimiter lost
  wire.insert(wire.end(), b.begin(), b.end());
  wire.insert(wire.end(), c.begin(), c.end());
  BigDecoder d;
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].frame);
  ASSERT_TRUE(got[1].frame);
  EXPECT_EQ(got[1].type, 0x03);
}

TEST(FrameReject, TextLinesAreDroppedAsOneBadFrame) {
  // The firmware's boot banner ends in "\r\n\0": the receiver sees one bad frame, then frames.
  const char banner[] = "app v1 uid 37ffd8054e50343621571143\r\n";
  Bytes wire(banner, banner + sizeof banner);  // with its terminating 0x00
  const Bytes hello = encode(0x81, Bytes(34, 0x01));
  wire.insert(wire.end(), hello.begin(), hello.end());
  BigDecoder d;
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].frame);
  ASSERT_TRUE(got[1].frame);
  EXPECT_EQ(got[1].type, 0x81);
}

TEST(FrameDecode, IdleDelimitersAreIgnored) {
  BigDecoder d;
  EXPECT_TRUE(feed(d, Bytes(100, 0x00)).empty());
  const Bytes a = encode(0x01, {});
  const Bytes b = encode(0x02, {0x00});
  Bytes wire(5, 0x00);
  wire.insert(wire.end(), a.begin(), a.end());
  wire.insert(wire.end(), 7, 0x00);
  wire.insert(wire.end(), b.begin(), b.end());
  wire.insert(wire.end(), 3, 0x00);
  const auto got = feed(d, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].frame);
  EXPECT_EQ(got[0].type, 0x01);
  EXPECT_TRUE(got[1].frame);
  EXPECT_EQ(got[1].payload, Bytes{0x00});
}

TEST(FrameDecode, ResetDropsAPartialFrame) {
  BigDecoder d;
  const Bytes a = encode(0x01, {9, 9, 9, 9});
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(d.feed(a[i]), FrameDecoder::Event::none);
  d.reset();
  const auto got = feed(d, encode(0x02, {1}));
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].frame);
  EXPECT_EQ(got[0].type, 0x02);
}

TEST(FrameDecode, AnErrorThenAFrameReportsTheFrameCleanly) {
  BigDecoder d;
  ASSERT_EQ(feed(d, Bytes{0x07, 0x01, 0x00}).at(0).error, FrameError::bad_cobs);
  const auto got = feed(d, encode(0x02, {1, 0, 2}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].frame);
  EXPECT_EQ(d.error(), FrameError::none);
}

}  // namespace

// The two checksums of the protocol (ota/crc.hpp): CRC-16/CCITT-FALSE on every frame, CRC-32
// (IEEE 802.3 / zlib) as the image's total checksum. Checked against the catalogue's check values
// and against straightforward bit-by-bit implementations written from the definitions.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "ota/crc.hpp"

namespace {

// Bitwise reference: CRC-32, reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF.
std::uint32_t ref_crc32(const std::vector<std::uint8_t>& d) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t b : d) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}

// Bitwise reference: CRC-16/CCITT-FALSE, polynomial 0x1021, init 0xFFFF, MSB first, no xor out.
std::uint16_t ref_crc16(const std::vector<std::uint8_t>& d) {
  std::uint16_t c = 0xFFFF;
  for (std::uint8_t b : d) {
    c = static_cast<std::uint16_t>(c ^ (b << 8));
    for (int k = 0; k < 8; ++k)
      c = static_cast<std::uint16_t>((c & 0x8000u) ? (c << 1) ^ 0x1021u : c << 1);
  }
  return c;
}

std::vector<std::uint8_t> bytes_of(const char* s) {
  return std::vector<std::uint8_t>(s, s + std::strlen(s));
}

std::vector<std::uint8_t> random_bytes(std::mt19937& rng, std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

TEST(Crc32, CheckValue) {
  const auto d = bytes_of("123456789");
  EXPECT_EQ(ota::crc32(d.data(), d.size()), 0xCBF43926u);
}

TEST(Crc32, KnownValues) {
  const auto fox = bytes_of("The quick brown fox jumps over the lazy dog");
  EXPECT_EQ(ota::crc32(fox.data(), fox.size()), 0x414FA339u);
  const std::uint8_t zero = 0;
  EXPECT_EQ(ota::crc32(&zero, 1), 0xD202EF8Du);
  const auto a = bytes_of("a");
  EXPECT_EQ(ota::crc32(a.data(), a.size()), 0xE8B7BE43u);
}

TEST(Crc32, EmptyInputIsZeroAndLeavesARunningValueAlone) {
  EXPECT_EQ(ota::crc32(nullptr, 0), 0u);
  EXPECT_EQ(ota::crc32("", 0), 0u);
  EXPECT_EQ(ota::crc32(nullptr, 0, 0xCBF43926u), 0xCBF43926u);
}

TEST(Crc32, IncrementalEqualsOneShotAtEverySplit) {
  std::mt19937 rng(32);
  const auto d = random_bytes(rng, 300);
  const std::uint32_t whole = ota::crc32(d.data(), d.size());
  for (std::size_t split = 0; split <= d.size(); ++split) {
    const std::uint32_t first = ota::crc32(d.data(), split);
    EXPECT_EQ(ota::crc32(d.data() + split, d.size() - split, first), whole) << "split " << split;
  }
}

TEST(Crc32, ByteByByteEqualsOneShot) {
  std::mt19937 rng(33);
  const auto d = random_bytes(rng, 1000);
  std::uint32_t c = 0;
  for (std::uint8_t b : d) c = ota::crc32(&b, 1, c);
  EXPECT_EQ(c, ota::crc32(d.data(), d.size()));
}

TEST(Crc32, MatchesBitwiseReference) {
  std::mt19937 rng(34);
  for (std::size_t n = 0; n < 600; n += 7) {
    const auto d = random_bytes(rng, n);
    EXPECT_EQ(ota::crc32(d.data(), d.size()), ref_crc32(d)) << "length " << n;
  }
}

TEST(Crc32, DetectsEverySingleBitFlip) {
  std::mt19937 rng(35);
  auto d = random_bytes(rng, 64);
  const std::uint32_t good = ota::crc32(d.data(), d.size());
  for (std::size_t bit = 0; bit < d.size() * 8; ++bit) {
    d[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_NE(ota::crc32(d.data(), d.size()), good) << "bit " << bit;
    d[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
}

TEST(Crc16Ccitt, CheckValue) {
  const auto d = bytes_of("123456789");
  EXPECT_EQ(ota::crc16_ccitt(d.data(), d.size()), 0x29B1u);
}

TEST(Crc16Ccitt, EmptyInputIsTheInitialValue) {
  EXPECT_EQ(ota::crc16_ccitt(nullptr, 0), 0xFFFFu);
  EXPECT_EQ(ota::crc16_ccitt(nullptr, 0, 0x1234), 0x1234u);
}

TEST(Crc16Ccitt, SingleBytesOfTheProtocol) {
  // Values that appear in docs/protocol.md: the CRC of a bare HELLO_REQ (type 01) and REPORT_ACK.
  const std::uint8_t hello_req = 0x01;
  EXPECT_EQ(ota::crc16_ccitt(&hello_req, 1), 0xF1D1u);
  const std::uint8_t report_ack = 0x05;
  EXPECT_EQ(ota::crc16_ccitt(&report_ack, 1), 0xB155u);
}

TEST(Crc16Ccitt, IncrementalEqualsOneShotAtEverySplit) {
  std::mt19937 rng(16);
  const auto d = random_bytes(rng, 300);
  const std::uint16_t whole = ota::crc16_ccitt(d.data(), d.size());
  for (std::size_t split = 0; split <= d.size(); ++split) {
    const std::uint16_t first = ota::crc16_ccitt(d.data(), split);
    EXPECT_EQ(ota::crc16_ccitt(d.data() + split, d.size() - split, first), whole) << "split " << split;
  }
}

TEST(Crc16Ccitt, MatchesBitwiseReference) {
  std::mt19937 rng(17);
  for (std::size_t n = 0; n < 600; n += 7) {
    const auto d = random_bytes(rng, n);
    EXPECT_EQ(ota::crc16_ccitt(d.data(), d.size()), ref_crc16(d)) << "length " << n;
  }
}

TEST(Crc16Ccitt, AppendingTheCrcBigEndianLeavesZero) {
  // A property of a non-reflected CRC without final xor: the residue of data ++ CRC is 0.
  std::mt19937 rng(18);
  for (int i = 0; i < 50; ++i) {
    auto d = random_bytes(rng, 1 + rng() % 100);
    const std::uint16_t c = ota::crc16_ccitt(d.data(), d.size());
    d.push_back(static_cast<std::uint8_t>(c >> 8));
    d.push_back(static_cast<std::uint8_t>(c));
    EXPECT_EQ(ota::crc16_ccitt(d.data(), d.size()), 0u);
  }
}

TEST(Crc16Ccitt, DetectsEverySingleAndDoubleBitFlipInAFrame) {
  // 40 bytes: the size of the largest device message (HELLO, 34 + type + CRC + some).
  std::mt19937 rng(19);
  auto d = random_bytes(rng, 40);
  const std::uint16_t good = ota::crc16_ccitt(d.data(), d.size());
  const std::size_t bits = d.size() * 8;
  auto flip = [&](std::size_t bit) { d[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8)); };
  for (std::size_t a = 0; a < bits; ++a) {
    flip(a);
    EXPECT_NE(ota::crc16_ccitt(d.data(), d.size()), good) << "bit " << a;
    for (std::size_t b = a + 1; b < bits; ++b) {
      flip(b);
      if (ota::crc16_ccitt(d.data(), d.size()) == good) ADD_FAILURE() << "bits " << a << ", " << b;
      flip(b);
    }
    flip(a);
  }
}

}  // namespace

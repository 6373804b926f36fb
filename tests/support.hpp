// Shared by the host tests: a board's flash parts on one power supply, raw frames to an update
// client, and naming of layout-parameterised tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ota/bytes.hpp"
#include "ota/client.hpp"
#include "ota/crc.hpp"
#include "ota/flags.hpp"
#include "ota/flash_map.hpp"
#include "ota/frame.hpp"
#include "ota/protocol.hpp"
#include "ota/w25q.hpp"
#include "sim/internal_flash.hpp"
#include "sim/w25q_chip.hpp"

namespace test {

struct Parts {
  explicit Parts(const ota::Layout& l)
      : layout(l), internal(power), chip(power), external(chip, ota::kW25qUsed, 100),
        map{l, internal, &external} {}
  const ota::Layout& layout;
  sim::PowerSupply power;
  sim::InternalFlash internal;
  sim::W25qChip chip;
  ota::W25qFlash external;
  ota::FlashMap map;

  std::span<std::uint8_t> region(const ota::Region& r) {
    if (r.medium == ota::Medium::internal)
      return internal.bytes().subspan(r.base - sim::InternalFlash::kBase, r.size);
    return chip.bytes().subspan(r.base, r.size);
  }
  std::uint64_t violations() const { return internal.violations() + chip.violations(); }
};

// An image in staging with a complete journal and "OTA-START", as the client leaves it after a
// download (`crc`: the journal's CRC-32, the image's own unless given).
inline void stage(Parts& p, const std::vector<std::uint8_t>& img, std::uint32_t crc = 0) {
  std::copy(img.begin(), img.end(), p.region(p.layout.staging).begin());
  const auto n = static_cast<std::uint32_t>(img.size());
  ota::Journal j{p.map};
  ASSERT_TRUE(j.begin({n, crc ? crc : ota::crc32(img.data(), n), 2, 256,
                       static_cast<std::uint16_t>(ota::packet_count_for(n, 256))}));
  for (std::uint32_t u = 0; u < j.units_for(n); ++u) ASSERT_TRUE(j.mark_unit_done(u));
  ASSERT_TRUE(ota::FlagStore(p.map).set(ota::Flag::start));
}

// START for an image, as a server would send it.
inline ota::Start start_for(const std::vector<std::uint8_t>& img, std::uint32_t version, std::uint16_t psize = 256) {
  ota::Start s;
  s.image_size = static_cast<std::uint32_t>(img.size());
  s.image_crc = ota::crc32(img.data(), img.size());
  s.image_version = version;
  s.packet_size = psize;
  s.packet_count = static_cast<std::uint16_t>(ota::packet_count_for(s.image_size, psize));
  s.initial_sp = ota::get_u32(img.data());
  s.reset_vector = ota::get_u32(img.data() + 4);
  return s;
}

// Raw frames to and from an update client, for tests that drive one without a server.
struct FrameWire final : ota::Link {
  std::vector<std::uint8_t> out;
  void send(const std::uint8_t* b, std::size_t n) override { out.insert(out.end(), b, b + n); }
  // The last reply of type Msg since the previous call (a test failure if there is none).
  template <class Msg>
  Msg reply() {
    ota::FrameDecoderBuffer<64> dec;
    Msg m{};
    bool found = false;
    for (std::uint8_t b : std::exchange(out, {}))
      if (dec.feed(b) == ota::FrameDecoder::Event::frame) found = ota::decode(dec.frame(), m) || found;
    EXPECT_TRUE(found);
    return m;
  }
  static void send_to(ota::UpdateClient& c, ota::MsgType t, const std::uint8_t* p, std::size_t n) {
    std::uint8_t frame[300];
    c.receive(frame, ota::encode_frame(static_cast<std::uint8_t>(t), p, n, frame, sizeof frame));
  }
  static void start(ota::UpdateClient& c, const ota::Start& s) {
    std::uint8_t p[ota::Start::kSize];
    ota::encode(s, p);
    send_to(c, ota::MsgType::start, p, sizeof p);
  }
  // DATA `index` of `img` in packets of `psize`.
  static void data(ota::UpdateClient& c, const std::vector<std::uint8_t>& img, std::uint16_t index,
                   std::uint16_t psize = 256) {
    std::uint8_t d[2 + 256];
    const std::size_t off = std::size_t{index} * psize;
    const std::size_t n = img.size() - off < psize ? img.size() - off : psize;
    ota::put_u16(d, index);
    std::copy_n(img.begin() + static_cast<std::ptrdiff_t>(off), n, d + 2);
    send_to(c, ota::MsgType::data, d, 2 + n);
  }
};

struct LayoutName {
  template <class Info>
  std::string operator()(const Info& i) const { return i.param->name; }
};

}  // namespace test

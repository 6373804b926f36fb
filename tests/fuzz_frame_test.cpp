// Deterministic randomized tests (fixed seeds) of the two parsers that face the link:
//   - ota::FrameDecoder against an independent reference decoder, on random and mutated streams;
//   - ota::UpdateClient on a simulated device (sim::Device, both layouts), fed random bytes,
//     mutated recordings of a real update and random well-formed frames. After every burst: no
//     flash rule broken, the device runs a valid application, and the application area is either
//     untouched or holds, exactly, an image that was completely and correctly sent. At the end of
//     each episode a real server session must still be able to update the device.
// Run under -fsanitize=address,undefined to also catch out-of-bounds accesses.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <optional>
#include <random>
#include <vector>

#include "ota/bytes.hpp"
#include "ota/crc.hpp"
#include "ota/frame.hpp"
#include "ota/host/session.hpp"
#include "ota/protocol.hpp"
#include "sim/device.hpp"
#include "sim/wire.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using ota::FrameDecoder;
using ota::FrameError;

Bytes frame_bytes(std::uint8_t type, const Bytes& payload) {
  Bytes out(ota::encoded_size_max(payload.size()));
  out.resize(ota::encode_frame(type, payload.data(), payload.size(), out.data(), out.size()));
  return out;
}

Bytes random_bytes(std::mt19937_64& rng, std::size_t n, int zero_percent) {
  Bytes v(n);
  for (auto& b : v)
    b = static_cast<int>(rng() % 100) < zero_percent ? 0 : static_cast<std::uint8_t>(rng());
  return v;
}

std::size_t pick(std::mt19937_64& rng, std::size_t n) {
  return n ? static_cast<std::size_t>(rng() % n) : 0;
}

// Damage a byte stream as a bad link would.
void mutate(std::mt19937_64& rng, Bytes& s, int ops) {
  for (int i = 0; i < ops && !s.empty(); ++i) {
    const std::size_t at = pick(rng, s.size());
    switch (rng() % 8) {
      case 0:  // bit flips
        for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k)
          s[pick(rng, s.size())] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1: {  // lost bytes
        const std::size_t n = std::min<std::size_t>(1 + rng() % 40, s.size() - at);
        s.erase(s.begin() + static_cast<std::ptrdiff_t>(at),
                s.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 2: {  // noise
        const Bytes noise = random_bytes(rng, 1 + rng() % 40, 3);
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), noise.begin(), noise.end());
        break;
      }
      case 3: {  // replayed range
        const std::size_t n = std::min<std::size_t>(1 + rng() % 700, s.size() - at);
        const Bytes copy(s.begin() + static_cast<std::ptrdiff_t>(at),
                         s.begin() + static_cast<std::ptrdiff_t>(at + n));
        const std::size_t to = pick(rng, s.size() + 1);
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(to), copy.begin(), copy.end());
        break;
      }
      case 4: {  // moved range (reordering)
        const std::size_t n = std::min<std::size_t>(1 + rng() % 600, s.size() - at);
        const Bytes copy(s.begin() + static_cast<std::ptrdiff_t>(at),
                         s.begin() + static_cast<std::ptrdiff_t>(at + n));
        s.erase(s.begin() + static_cast<std::ptrdiff_t>(at),
                s.begin() + static_cast<std::ptrdiff_t>(at + n));
        const std::size_t to = pick(rng, s.size() + 1);
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(to), copy.begin(), copy.end());
        break;
      }
      case 5:  // a byte becomes a delimiter
        s[at] = 0;
        break;
      case 6:  // a delimiter is lost
        for (std::size_t k = at; k < s.size(); ++k) {
          if (s[k] == 0) {
            s.erase(s.begin() + static_cast<std::ptrdiff_t>(k));
            break;
          }
        }
        break;
      case 7:  // the link drops: the rest is lost
        s.resize(at);
        break;
    }
  }
}

// ---- FrameDecoder against a reference ---------------------------------------------------------

struct Event {
  bool frame = false;
  FrameError error = FrameError::none;
  Bytes raw;  // type + payload of a frame
  bool operator==(const Event&) const = default;
};

// The reference: split at 0x00, plain COBS decoding, then the checks in the documented order.
class RefDecoder {
 public:
  explicit RefDecoder(std::size_t cap) : cap_(cap) {}
  std::optional<Event> feed(std::uint8_t b) {
    if (b != 0) {
      seg_.push_back(b);
      return std::nullopt;
    }
    Bytes seg;
    seg.swap(seg_);
    if (seg.empty()) return std::nullopt;
    Bytes out;
    bool truncated = false;
    std::size_t i = 0;
    while (i < seg.size()) {
      const std::uint8_t code = seg[i++];
      for (int k = 1; k < code; ++k) {
        if (i >= seg.size()) {
          truncated = true;
          break;
        }
        out.push_back(seg[i++]);
      }
      if (code != 0xFF && i < seg.size()) out.push_back(0);
    }
    Event e;
    if (out.size() > cap_) e.error = FrameError::too_long;
    else if (truncated) e.error = FrameError::bad_cobs;
    else if (out.size() < 3) e.error = FrameError::too_short;
    else if (ota::crc16_ccitt(out.data(), out.size() - 2) != ota::get_u16(out.data() + out.size() - 2))
      e.error = FrameError::bad_crc;
    else {
      e.frame = true;
      e.raw.assign(out.begin(), out.end() - 2);
    }
    return e;
  }

 private:
  std::size_t cap_;
  Bytes seg_;
};

TEST(FuzzFrame, DecoderAgreesWithTheReferenceOnRandomAndMutatedStreams) {
  std::mt19937_64 rng(0xF4A3E);
  std::array<std::uint64_t, 5> errors{};
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const std::size_t caps[] = {3, 4, 16, 37, 67, 261, 300};
    const std::size_t cap = caps[pick(rng, std::size(caps))];
    Bytes stream;
    switch (iter % 4) {
      case 0: stream = random_bytes(rng, pick(rng, 3000), 0); break;  // noise, rare zeros
      case 1: stream = random_bytes(rng, pick(rng, 3000), 8); break;  // noise, many zeros
      default: {  // valid frames sized for this decoder, damaged
        for (int f = static_cast<int>(1 + rng() % 20); f > 0; --f) {
          const std::size_t max_payload = cap - ota::kFrameOverhead + 2;  // a few too long
          const Bytes fb =
              frame_bytes(static_cast<std::uint8_t>(rng()),
                          random_bytes(rng, pick(rng, max_payload + 1), static_cast<int>(rng() % 20)));
          if (rng() % 4 == 0) stream.push_back(0);
          stream.insert(stream.end(), fb.begin(), fb.end());
        }
        if (iter % 4 == 3) mutate(rng, stream, static_cast<int>(1 + rng() % 5));
        break;
      }
    }
    bytes += stream.size();

    std::vector<std::uint8_t> storage(cap + 8, 0xA5);  // guard bytes after the buffer
    FrameDecoder d(storage.data(), cap);
    RefDecoder ref(cap);
    for (std::size_t i = 0; i < stream.size(); ++i) {
      const auto ev = d.feed(stream[i]);
      const auto want = ref.feed(stream[i]);
      ASSERT_EQ(ev != FrameDecoder::Event::none, want.has_value())
          << "iteration " << iter << " byte " << i;
      if (!want) continue;
      Event got;
      if (ev == FrameDecoder::Event::frame) {
        const ota::Frame f = d.frame();
        ASSERT_LE(f.len + ota::kFrameOverhead, cap);
        ASSERT_EQ(f.payload, storage.data() + 1);
        got.frame = true;
        got.raw.push_back(f.type);
        got.raw.insert(got.raw.end(), f.payload, f.payload + f.len);
        ++frames;
      } else {
        got.error = d.error();
        ++errors[static_cast<std::size_t>(got.error)];
      }
      ASSERT_EQ(got.frame, want->frame) << "iteration " << iter << " byte " << i;
      ASSERT_EQ(got.error, want->error) << "iteration " << iter << " byte " << i;
      ASSERT_EQ(got.raw, want->raw) << "iteration " << iter << " byte " << i;
    }
    for (std::size_t k = cap; k < storage.size(); ++k)
      ASSERT_EQ(storage[k], 0xA5) << "wrote past the buffer";
  }
  // The streams reached every outcome.
  EXPECT_GT(frames, 1000u);
  EXPECT_GT(errors[static_cast<std::size_t>(FrameError::bad_crc)], 100u);
  EXPECT_GT(errors[static_cast<std::size_t>(FrameError::too_long)], 100u);
  EXPECT_GT(errors[static_cast<std::size_t>(FrameError::too_short)], 50u);
  EXPECT_GT(errors[static_cast<std::size_t>(FrameError::bad_cobs)], 100u);
  std::printf(
      "[fuzz] decoder: %llu bytes, %llu frames, errors crc %llu long %llu short %llu cobs %llu\n",
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(frames),
      static_cast<unsigned long long>(errors[1]), static_cast<unsigned long long>(errors[2]),
      static_cast<unsigned long long>(errors[3]), static_cast<unsigned long long>(errors[4]));
}

TEST(FuzzFrame, EncodeDecodeRoundTripsForEveryDecoderCapacity) {
  std::mt19937_64 rng(77);
  for (int iter = 0; iter < 5000; ++iter) {
    const std::size_t cap = 3 + pick(rng, 600);
    const Bytes payload = random_bytes(rng, pick(rng, cap - 2), static_cast<int>(rng() % 30));
    const auto type = static_cast<std::uint8_t>(rng());
    const Bytes wire = frame_bytes(type, payload);
    ASSERT_FALSE(wire.empty());
    std::vector<std::uint8_t> storage(cap);
    FrameDecoder d(storage.data(), cap);
    std::size_t events = 0;
    for (std::uint8_t b : wire) {
      const auto ev = d.feed(b);
      if (ev == FrameDecoder::Event::none) continue;
      ++events;
      ASSERT_EQ(ev, FrameDecoder::Event::frame);
      ASSERT_EQ(d.frame().type, type);
      ASSERT_EQ(Bytes(d.frame().payload, d.frame().payload + d.frame().len), payload);
    }
    ASSERT_EQ(events, 1u);
  }
}

// ---- UpdateClient on a simulated device ------------------------------------------------------------

// The application area after the installer copied `img` over `prev`: whole pages, the staged
// bytes after the image are erased (0xFF).
Bytes installed(const Bytes& prev, const Bytes& img) {
  Bytes r = prev;
  const std::size_t span = (img.size() + ota::kFlashPage - 1) / ota::kFlashPage * ota::kFlashPage;
  std::fill(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(span), 0xFF);
  std::copy(img.begin(), img.end(), r.begin());
  return r;
}

Bytes app_region(const sim::Device& dev) {
  const auto s = dev.app_region();
  return Bytes(s.begin(), s.end());
}

// What the server sends during a clean update of `img` to a device like `dev`, as one stream.
Bytes record_clean_update(const ota::Layout& layout, const Bytes& v1, const Bytes& img,
                          std::uint32_t version) {
  sim::Device dev(layout, 999);
  if (!v1.empty()) dev.factory_install(v1);
  dev.boot();
  ota::host::Session s(img, version);
  Bytes stream;
  sim::WireOptions o;
  o.to_device = [&](Bytes& b) { stream.insert(stream.end(), b.begin(), b.end()); };
  sim::run_session(dev, s, o);
  EXPECT_EQ(s.outcome(), ota::host::Outcome::upgraded) << s.detail();
  return stream;
}

// Well-formed frames with random contents, and now and then a complete, correct offer of a
// random image over a lossy link (which is the only way the application may change).
class FrameGen {
 public:
  FrameGen(const ota::Layout& l, std::mt19937_64& rng) : layout_(l), rng_(rng) {}

  // Appends random frames to `out`; returns the image offered completely, if one was.
  std::optional<Bytes> burst(Bytes& out) {
    std::optional<Bytes> offered;
    const int n = static_cast<int>(1 + rng_() % 30);
    for (int i = 0; i < n; ++i) {
      const Bytes f = random_frame();
      out.insert(out.end(), f.begin(), f.end());
    }
    if (rng_() % 3 == 0) {
      offered = campaign(out);
      for (int i = static_cast<int>(rng_() % 5); i > 0; --i) {
        const Bytes f = random_frame();
        out.insert(out.end(), f.begin(), f.end());
      }
    }
    return offered;
  }

  std::uint32_t last_version() const { return version_; }

 private:
  std::uint16_t packet_size() {
    static constexpr std::uint16_t kSizes[] = {8, 16, 64, 128, 256, 256, 256};
    return kSizes[pick(rng_, std::size(kSizes))];
  }

  ota::Start start_for(const Bytes& img, std::uint16_t ps) const {
    return ota::Start{
        static_cast<std::uint32_t>(img.size()),
        ota::crc32(img.data(), img.size()),
        version_,
        ps,
        static_cast<std::uint16_t>(ota::packet_count_for(static_cast<std::uint32_t>(img.size()), ps)),
        ota::get_u32(img.data()),
        ota::get_u32(img.data() + 4)};
  }

  Bytes data_frame(const Bytes& img, std::uint32_t index, std::uint16_t ps) const {
    Bytes p(2);
    ota::put_u16(p.data(), static_cast<std::uint16_t>(index));
    const std::size_t off = std::size_t{index} * ps;
    const std::size_t len = std::min<std::size_t>(ps, img.size() - off);
    p.insert(p.end(), img.begin() + static_cast<std::ptrdiff_t>(off),
             img.begin() + static_cast<std::ptrdiff_t>(off + len));
    return frame_bytes(0x03, p);
  }

  // START and every DATA of a fresh image, with losses, duplicates and corruption on the way;
  // then every packet once more in order, so that the offer is complete.
  Bytes campaign(Bytes& out) {
    version_ = 100 + static_cast<std::uint32_t>(rng_() % 1000);
    const std::uint32_t size = 8 + static_cast<std::uint32_t>(rng_() % 5000);
    const Bytes img = sim::make_app_image(layout_, version_, size);
    const std::uint16_t ps = packet_size();
    const ota::Start s = start_for(img, ps);
    Bytes sp(ota::Start::kSize);
    ota::encode(s, sp.data());
    out.push_back(0);
    const Bytes sf = frame_bytes(0x02, sp);
    out.insert(out.end(), sf.begin(), sf.end());
    for (std::uint32_t i = 0; i < s.packet_count; ++i) {
      if (rng_() % 10 == 0) continue;  // lost
      Bytes f = data_frame(img, i, ps);
      if (rng_() % 20 == 0) f[pick(rng_, f.size() - 1)] ^= 0x40;  // corrupted
      out.insert(out.end(), f.begin(), f.end());
      if (rng_() % 15 == 0) out.insert(out.end(), f.begin(), f.end());  // duplicated
    }
    // The server's go-back: START again (resumes), then everything from the start.
    out.push_back(0);
    out.insert(out.end(), sf.begin(), sf.end());
    for (std::uint32_t i = 0; i < s.packet_count; ++i) {
      const Bytes f = data_frame(img, i, ps);
      out.insert(out.end(), f.begin(), f.end());
    }
    return img;
  }

  Bytes random_frame() {
    static constexpr std::uint8_t kTypes[] = {0x01, 0x02, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03,
                                              0x04, 0x05, 0x81, 0x85, 0x00, 0x7F, 0xFF};
    const std::uint8_t type = kTypes[pick(rng_, std::size(kTypes))];
    Bytes p;
    if (type == 0x02) {  // START: plausible or not
      const Bytes img = sim::make_app_image(layout_, 7, 8 + static_cast<std::uint32_t>(rng_() % 3000));
      ota::Start s = start_for(img, packet_size());
      switch (rng_() % 8) {
        case 0: s.image_size = static_cast<std::uint32_t>(rng_()); break;
        case 1: s.image_size = layout_.image_limit + static_cast<std::uint32_t>(rng_() % 3); break;
        case 2: s.packet_size = static_cast<std::uint16_t>(rng_()); break;
        case 3: s.packet_count = static_cast<std::uint16_t>(s.packet_count + 1 - rng_() % 3); break;
        case 4: s.initial_sp = static_cast<std::uint32_t>(rng_()); break;
        case 5: s.reset_vector = static_cast<std::uint32_t>(rng_()); break;
        default: break;  // valid parameters of an image that will not be sent whole
      }
      p.resize(ota::Start::kSize);
      ota::encode(s, p.data());
      if (rng_() % 10 == 0) p.resize(pick(rng_, 30));
    } else if (type == 0x03) {  // DATA: an index near the beginning, a plausible length
      p.resize(2);
      ota::put_u16(p.data(), static_cast<std::uint16_t>(rng_() % 8 == 0 ? rng_() : rng_() % 24));
      const std::size_t len = rng_() % 2 ? packet_size() : pick(rng_, 258);
      const Bytes body = random_bytes(rng_, len, 5);
      p.insert(p.end(), body.begin(), body.end());
    } else {
      p = random_bytes(rng_, rng_() % 4 == 0 ? pick(rng_, 40) : 0, 10);
    }
    Bytes f = frame_bytes(type, p);
    if (rng_() % 4 == 0) f.insert(f.begin(), 0);
    return f;
  }

  const ota::Layout& layout_;
  std::mt19937_64& rng_;
  std::uint32_t version_ = 0;
};

struct Totals {
  std::uint64_t bursts = 0, bytes = 0, installs = 0, episodes = 0, caught = 0;
};

void fuzz_client(const ota::Layout& layout, std::uint64_t seed, int episodes, Totals& t) {
  std::mt19937_64 rng(seed);
  const Bytes v1 = sim::make_app_image(layout, 1, 3000);
  const Bytes v2 = sim::make_app_image(layout, 2, 2500);
  const Bytes clean = record_clean_update(layout, v1, v2, 2);
  const Bytes clean_blank = record_clean_update(layout, {}, v2, 2);
  ASSERT_FALSE(clean.empty());

  for (int ep = 0; ep < episodes; ++ep) {
    SCOPED_TRACE(testing::Message() << layout.name << " seed " << seed << " episode " << ep);
    bool blank = ep % 5 == 4;  // a device with no application: the bootloader's recovery
    sim::Device dev(layout, seed * 1000 + static_cast<std::uint64_t>(ep));
    if (!blank) dev.factory_install(v1);
    dev.boot();
    dev.take_output();
    ASSERT_EQ(dev.running_application(), !blank);
    FrameGen gen(layout, rng);

    for (int b = static_cast<int>(1 + rng() % 6); b > 0; --b) {
      Bytes stream;
      std::optional<Bytes> offered;
      std::uint32_t offered_version = 0;
      switch (rng() % 4) {
        case 0: stream = random_bytes(rng, pick(rng, 4000), static_cast<int>(rng() % 10)); break;
        case 1:
        case 2:
          stream = blank ? clean_blank : clean;
          if (rng() % 8 != 0) mutate(rng, stream, static_cast<int>(1 + rng() % 6));
          offered = v2;
          offered_version = 2;
          break;
        default:
          offered = gen.burst(stream);
          offered_version = gen.last_version();
          break;
      }
      const Bytes before = app_region(dev);
      const std::uint32_t boots = dev.boots();
      dev.receive(stream.data(), stream.size());
      dev.take_output();
      ++t.bursts;
      t.bytes += stream.size();

      ASSERT_EQ(dev.violations(), 0u) << dev.last_violation();
      ASSERT_FALSE(dev.dead());
      const Bytes after = app_region(dev);
      if (after == before) {  // untouched (or the same image installed again)
        ASSERT_EQ(dev.running_application(), !blank);
        ASSERT_EQ(dev.in_recovery(), blank);
        continue;
      }
      // The application changed: only by installing, completely, the image that was offered.
      ASSERT_TRUE(offered.has_value()) << "the application changed without a complete offer";
      ASSERT_TRUE(after == installed(before, *offered)) << "the application holds something else";
      ASSERT_GT(dev.boots(), boots);
      ASSERT_TRUE(dev.running_application());
      ASSERT_EQ(dev.running_version(), offered_version);
      ++t.installs;
      blank = false;
    }

    // Whatever happened, a real server can still update the device. A download of another image
    // may have been left open by the random frames; the session does not ABORT it (see
    // docs/protocol.md section 12), so the test does.
    Bytes abort = frame_bytes(0x04, {});
    abort.insert(abort.begin(), 0x00);  // ends whatever partial frame the last burst left
    dev.receive(abort.data(), abort.size());
    dev.take_output();
    // Random frames may have installed an image that says it is newer than v2: the server then
    // needs --force to go back (an older image is refused otherwise).
    ota::host::SessionOptions o;
    o.force = dev.running_version().value_or(0) > 2;
    ota::host::Session s(v2, 2, o);
    sim::run_session(dev, s);
    if (s.outcome() == ota::host::Outcome::checksum_failed) {
      // Random DATA frames (valid CRC-16, wrong contents) went into an open download of v2, which
      // the session resumed: the total CRC-32 caught it, the device forgot the download, and the
      // next offer starts over.
      ++t.caught;
      ota::host::Session again(v2, 2, o);
      sim::run_session(dev, again);
      ASSERT_EQ(again.outcome(), ota::host::Outcome::upgraded) << again.detail();
    } else {
      ASSERT_TRUE(s.outcome() == ota::host::Outcome::upgraded ||
                  s.outcome() == ota::host::Outcome::up_to_date)
          << ota::host::to_string(s.outcome()) << ": " << s.detail();
    }
    ASSERT_EQ(dev.running_version(), 2u);
    ASSERT_EQ(dev.violations(), 0u) << dev.last_violation();
    const Bytes app = app_region(dev);
    ASSERT_TRUE(std::equal(v2.begin(), v2.end(), app.begin()));
    ++t.episodes;
  }
}

TEST(FuzzFrame, UpdateClientInternalLayout) {
  Totals t;
  for (std::uint64_t seed : {1u, 2u, 3u}) fuzz_client(ota::kInternalLayout, seed, 60, t);
  std::printf(
      "[fuzz] internal: %llu episodes, %llu bursts, %llu bytes, %llu installs, %llu CRC-32 catches\n",
      static_cast<unsigned long long>(t.episodes), static_cast<unsigned long long>(t.bursts),
      static_cast<unsigned long long>(t.bytes), static_cast<unsigned long long>(t.installs),
      static_cast<unsigned long long>(t.caught));
  EXPECT_GT(t.installs, 20u) << "the generators rarely complete an update: the test lost its teeth";
}

TEST(FuzzFrame, UpdateClientExternalLayout) {
  Totals t;
  for (std::uint64_t seed : {11u, 12u, 13u}) fuzz_client(ota::kExternalLayout, seed, 60, t);
  std::printf(
      "[fuzz] external: %llu episodes, %llu bursts, %llu bytes, %llu installs, %llu CRC-32 catches\n",
      static_cast<unsigned long long>(t.episodes), static_cast<unsigned long long>(t.bursts),
      static_cast<unsigned long long>(t.bytes), static_cast<unsigned long long>(t.installs),
      static_cast<unsigned long long>(t.caught));
  EXPECT_GT(t.installs, 20u) << "the generators rarely complete an update: the test lost its teeth";
}

}  // namespace

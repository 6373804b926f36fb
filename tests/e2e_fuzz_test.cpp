// Hostile byte streams against the REAL firmware binaries on the emulated board: the example
// application's client and the bootloader's recovery client (an erased application area, or
// RECOVER in the listening window), both layouts. tests/fuzz_frame_test.cpp fuzzes the portable
// client on the host; this one checks that what the ARM build does with the same kind of input
// keeps the promises of docs/design.md and docs/protocol.md:
//   - the CPU never faults, locks up or sleeps for good (the board stops with Stop::error/idle);
//   - nothing outside the staging area, the journal and the flag area is written before a
//     complete verified image (RESULT ok, or "OTA-START" in the flag area) exists: the
//     bootloader's pages and the running application's pages stay byte-identical;
//   - after a power cycle the board runs an application: v1 (or, for a blank board, it waits in
//     recovery mode), v2 only if a complete valid v2 was delivered;
//   - a clean push of v2 afterwards still ends `upgraded` with v2 in the application area.
// Targets: the application; the bootloader in recovery with a blank application area, with a valid
// application that RECOVER kept from starting, and after an install that failed on a flash fault.
// Streams: random bytes; random frames (every type, lengths at and beyond the limits, damaged,
// overlong, the device's own direction); hostile START/DATA; a v2 session with mutations spliced
// in (drops, duplicates, swaps, wrong CRCs, wrong bytes under a good CRC, wrong lengths and
// offsets, ABORT/REPORT_ACK/RECOVER/START at odd moments), then often a clean second pass;
// sessions cut at a random byte followed by resets and power cycles; noise in the bootloader's
// RECOVER window. Now and then an overrun, a sagging supply, a staging flash that fails. After
// the stream: 32 s of silence (kRecoveryIdleMs), a power cycle, a clean push.
// Each case is a fixed seed; a failure prints the seed, the target and the kind of stream.
// E2eFuzzReplies checks, frame by frame, that the answers are those docs/protocol.md gives.
// Longer hunts: OTA_FUZZ_PER=<streams per kind> OTA_FUZZ_SEED=<first seed>; OTA_FUZZ_VERBOSE=1.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/board_wire.hpp"
#include "ota/bytes.hpp"
#include "ota/crc.hpp"
#include "ota/frame.hpp"
#include "ota/protocol.hpp"
#include "sim/internal_flash.hpp"
#include "sim/w25q_chip.hpp"
#include "support.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

// ---- frames, built with the project's own encoder --------------------------------------------

Bytes frame(std::uint8_t type, const Bytes& payload) {
  Bytes out(ota::encoded_size_max(payload.size()) + 8);
  const std::size_t n = ota::encode_frame(type, payload.data(), payload.size(), out.data(), out.size());
  if (n == 0) throw std::runtime_error("encode_frame failed");
  out.resize(n);
  return out;
}
Bytes frame(ota::MsgType t, const Bytes& payload = {}) { return frame(static_cast<std::uint8_t>(t), payload); }

Bytes start_payload(const ota::Start& s) {
  Bytes p(ota::Start::kSize);
  ota::encode(s, p.data());
  return p;
}

Bytes data_payload(std::uint16_t index, const std::uint8_t* chunk, std::size_t n) {
  Bytes p(2 + n);
  ota::put_u16(p.data(), index);
  if (n) std::memcpy(p.data() + 2, chunk, n);
  return p;
}

using test::start_for;

// ---- a stream: bytes for USART1, waits, resets and power cycles -------------------------------

struct Step {
  enum Kind { bytes, wait, reset_pin, power_cycle, enter_recovery, overrun, supply, write_protect, w25q } kind;
  Bytes data;
  double us = 0;
};

// failed_install: v2's install stopped on a flash fault (now gone): the bootloader waits in recovery
// mode with "OTA-START", a verified v2 staged and the application half copied.
enum class Target { application, recovery_blank, recovery_recover, failed_install };
const char* name(Target t) {
  switch (t) {
    case Target::application: return "application";
    case Target::recovery_blank: return "recovery(blank app area)";
    case Target::recovery_recover: return "recovery(RECOVER)";
    case Target::failed_install: return "recovery(failed install)";
  }
  return "?";
}

enum class StreamKind { random_bytes, random_frames, hostile_start, spliced_v2, truncated_with_cuts, boot_window };
const char* name(StreamKind k) {
  switch (k) {
    case StreamKind::random_bytes: return "random bytes";
    case StreamKind::random_frames: return "random frames";
    case StreamKind::hostile_start: return "hostile START/DATA";
    case StreamKind::spliced_v2: return "v2 session with mutations spliced in";
    case StreamKind::truncated_with_cuts: return "truncated sessions with resets/power cycles";
    case StreamKind::boot_window: return "noise in the bootloader's RECOVER window";
  }
  return "?";
}

class Gen {
 public:
  Gen(std::uint32_t seed, const e2e::Firmware& fw, const Bytes& v2) : rng_(seed), fw_(fw), v2_(v2) {}

  std::vector<Step> steps;
  bool poisoned = false;  // a DATA frame with v2's identity but bytes other than v2's was sent
  std::string log;        // what was generated, for a failure message

  std::uint32_t u(std::uint32_t n) { return n ? static_cast<std::uint32_t>(rng_() % n) : 0; }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <class T, std::size_t N>
  T pick(const std::array<T, N>& a) { return a[u(N)]; }

  void send(Bytes b) {
    if (!steps.empty() && steps.back().kind == Step::bytes && steps.back().data.size() < 600) {
      auto& d = steps.back().data;
      d.insert(d.end(), b.begin(), b.end());
    } else {
      steps.push_back({Step::bytes, std::move(b), 0});
    }
  }
  void wait(double us) { steps.push_back({Step::wait, {}, us}); }
  // Now and then: a received byte lost to an overrun (the firmware must clear ORE), or the supply
  // sagging below the voltage detector's threshold (flash writes refused) and coming back.
  void disturb() {
    if (chance(0.03)) {
      steps.push_back({Step::overrun, {}, 0});
      note("overrun");
    }
    if (chance(0.02)) {
      sagged_ = !sagged_;
      steps.push_back({Step::supply, {}, sagged_ ? 2.75 : 3.3});
      note(sagged_ ? "supply 2.75 V" : "supply 3.3 V");
    }
  }
  // A flash that fails now and then (flaky cases only): staging pages write-protected (internal
  // layout: the FLASH controller's WRPRTERR), 16 KB of the W25Q write-protected (external layout:
  // programs and erases silently not executed, as with the status register's BP bits).
  bool flaky = false;
  void flake() {
    if (!flaky || !chance(0.05)) return;
    broken_ = !broken_;
    if (fw_.layout->staging.medium == ota::Medium::internal) {
      // WRP bit n: pages 4n..4n+3; staging is pages 36-63 (bits 9-15)
      const double mask = broken_ ? static_cast<double>(1u << (9 + u(7))) : 0;
      steps.push_back({Step::write_protect, {}, mask});
      note(broken_ ? "staging pages write-protected" : "write protection off");
    } else {
      // (not Board::set_w25q_connected: wiring that comes back in the middle of a transfer makes
      // the chip see a dummy 0xFF as a command, which no firmware can prevent)
      const double from = static_cast<double>(u(4) * 0x4000u) + 1;  // 16 KB of staging/journal/flags
      steps.push_back({Step::w25q, {}, broken_ ? from : 0.0});
      note(broken_ ? "W25Q 16 KB write-protected" : "W25Q protection off");
    }
  }
  void finish() {
    if (sagged_) steps.push_back({Step::supply, {}, 3.3});
    sagged_ = false;
    if (broken_) steps.push_back({fw_.layout->staging.medium == ota::Medium::internal ? Step::write_protect : Step::w25q, {}, 0.0});
    broken_ = false;
  }
  void note(const std::string& s) { log += s + "; "; }

  Bytes random_bytes(std::size_t n, double zero_p = 0.05) {
    Bytes b(n);
    for (auto& c : b) c = chance(zero_p) ? 0 : static_cast<std::uint8_t>(rng_());
    return b;
  }

  // A frame damaged in one of the ways a line or a hostile sender damages it.
  Bytes damage(Bytes f) {
    switch (u(6)) {
      case 0: {  // a flipped bit: wrong CRC (or bad COBS)
        const std::size_t i = u(static_cast<std::uint32_t>(f.size() - 1));
        f[i] ^= static_cast<std::uint8_t>(1u << u(8));
        if (f[i] == 0) f[i] = 0x5A;
        break;
      }
      case 1: f.pop_back(); break;  // no delimiter: runs into the next frame
      case 2: f.resize(1 + u(static_cast<std::uint32_t>(f.size() - 1))); f.push_back(0); break;  // cut short
      case 3: f.insert(f.begin() + 1 + u(static_cast<std::uint32_t>(f.size() - 1)), 0); break;  // a 0x00 inside
      case 4: f.insert(f.begin(), {0, 0, 0}); break;  // idle delimiters in front
      default: {  // a byte lost
        f.erase(f.begin() + u(static_cast<std::uint32_t>(f.size() - 1)));
        break;
      }
    }
    return f;
  }

  // A frame the device sends (its own direction), with a plausible payload.
  Bytes own_direction_frame() {
    static constexpr std::array<std::uint8_t, 6> types{0x81, 0x82, 0x83, 0x84, 0x85, 0xFF};
    const std::uint8_t t = pick(types);
    const std::size_t len = t == 0x81 ? 40 : t == 0x82 || t == 0x84 ? 3 : t == 0x83 ? 2 : t == 0x85 ? 5 : u(64);
    return frame(t, random_bytes(len, 0.3));
  }

  Bytes random_frame() {
    std::uint8_t type;
    const auto r = u(10);
    if (r < 5) type = static_cast<std::uint8_t>(1 + u(6));
    else if (r < 7) type = static_cast<std::uint8_t>(0x07 + u(0x79));
    else if (r < 9) type = static_cast<std::uint8_t>(0x80 + u(0x80));
    else type = 0;
    static constexpr std::array<std::size_t, 12> lens{0, 1, 2, 3, 24, 25, 23, 257, 258, 259, 260, 300};
    const std::size_t len = chance(0.5) ? pick(lens) : u(280);
    Bytes f = frame(type, random_bytes(len, 0.2));
    if (chance(0.2)) f = damage(std::move(f));
    return f;
  }

  // An overlong frame: more than the device's 261-byte buffer before a delimiter, as COBS blocks
  // that would decode well, or as raw non-zero bytes.
  Bytes overlong_frame() {
    const std::size_t len = 259 + u(400);
    if (chance(0.5)) return frame(static_cast<std::uint8_t>(1 + u(6)), random_bytes(len, 0.1));
    Bytes b = random_bytes(len, 0);
    for (auto& c : b) if (c == 0) c = 1;
    b.push_back(0);
    return b;
  }

  ota::Start hostile_start() {
    ota::Start s = start_for(v2_, 2, static_cast<std::uint16_t>(16u << u(5)));
    const std::uint32_t limit = fw_.layout->image_limit;
    const std::uint32_t base = fw_.layout->app.base;
    const int fields = 1 + static_cast<int>(u(3));
    for (int i = 0; i < fields; ++i) {
      switch (u(8)) {
        case 0: {
          const std::array<std::uint32_t, 12> v{0, 1, 7, 8, 9, limit - 1, limit, limit + 1, 0xFFFFFFFFu,
                                                0x80000000u, s.image_size + 1, u(limit + 1)};
          s.image_size = pick(v);
          break;
        }
        case 1: {
          const std::array<std::uint16_t, 16> v{0, 1, 2, 3, 8, 15, 16, 17, 24, 48, 100, 255, 257, 512, 1024, 0xFFFF};
          s.packet_size = pick(v);
          break;
        }
        case 2: {
          const std::uint32_t right = ota::packet_count_for(s.image_size, s.packet_size);
          const std::array<std::uint32_t, 6> v{right + 1, right - 1, 0, 0xFFFF, right + 0x10000, u(0x10000)};
          s.packet_count = static_cast<std::uint16_t>(pick(v));
          break;
        }
        case 3: {
          const std::array<std::uint32_t, 8> v{0, 0x20000000u, 0x20005000u, 0x20005004u, 0x20004FFEu,
                                               0x20004FFCu, 0xFFFFFFFFu, static_cast<std::uint32_t>(rng_())};
          s.initial_sp = pick(v);
          break;
        }
        case 4: {
          const std::array<std::uint32_t, 9> v{base + 1, base + 9, base + 7, base + s.image_size - 1, base + s.image_size + 1,
                                               s.reset_vector & ~1u, 0xFFFFFFFFu, 0x08000101u,
                                               static_cast<std::uint32_t>(rng_()) | 1u};
          s.reset_vector = pick(v);
          break;
        }
        case 5: s.image_crc = static_cast<std::uint32_t>(rng_()); break;
        case 6: s.image_version = static_cast<std::uint32_t>(rng_()); break;
        default: break;  // left as v2's
      }
    }
    // keep packet_count consistent most of the time, so that later checks are reached
    if (chance(0.5) && s.packet_size)
      s.packet_count = static_cast<std::uint16_t>(ota::packet_count_for(s.image_size, s.packet_size));
    return s;
  }

  bool same_identity_as_v2(const ota::Start& s) const {
    const ota::Start v = start_for(v2_, 2, 256);
    return s.image_size == v.image_size && s.image_crc == v.image_crc && s.image_version == v.image_version;
  }

  // DATA for `s` at `index`: v2's bytes at that offset (or random), of the right length or not.
  Bytes data_frame(const ota::Start& s, std::uint32_t index, bool truthful_len = true, bool truthful_bytes = true) {
    const std::uint32_t ps = s.packet_size ? s.packet_size : 256;
    const std::uint64_t off = std::uint64_t{index} * ps;
    std::size_t n = off < s.image_size ? static_cast<std::size_t>(std::min<std::uint64_t>(ps, s.image_size - off)) : ps;
    if (!truthful_len) {
      const std::array<std::size_t, 8> v{0, 1, n - 1, n + 1, 256, 257, 258, 300};
      n = pick(v);
    }
    Bytes chunk(n, 0xFF);
    for (std::size_t i = 0; i < n; ++i)
      if (off + i < v2_.size()) chunk[i] = v2_[static_cast<std::size_t>(off + i)];
    if (!truthful_bytes && n) {
      chunk[u(static_cast<std::uint32_t>(n))] ^= static_cast<std::uint8_t>(1 + u(255));
      if (same_identity_as_v2(s)) poisoned = true;
    } else if (off + n > v2_.size() && same_identity_as_v2(s)) {
      poisoned = true;  // beyond v2: not v2's bytes
    }
    return frame(ota::MsgType::data, data_payload(static_cast<std::uint16_t>(index), chunk.data(), n));
  }

  Bytes odd_message() {
    switch (u(6)) {
      case 0: return frame(ota::MsgType::abort);
      case 1: return frame(ota::MsgType::report_ack);
      case 2: return frame(ota::MsgType::hello_request);
      case 3: return frame(ota::MsgType::recover);
      case 4: return own_direction_frame();
      default: return frame(ota::MsgType::start, random_bytes(u(2) ? 23 : 25 + u(10)));  // malformed START
    }
  }

  // ---- the kinds ---------------------------------------------------------------------------------

  void gen_random_bytes() {
    const int bursts = 2 + static_cast<int>(u(4));
    for (int i = 0; i < bursts; ++i) {
      send(random_bytes(100 + u(900), chance(0.5) ? 0.05 : 0.0));
      if (chance(0.5)) send({0});
      wait(1000 + u(20000));
    }
    note("random bytes x" + std::to_string(bursts));
  }

  void gen_random_frames() {
    const int n = 15 + static_cast<int>(u(30));
    for (int i = 0; i < n; ++i) {
      send(chance(0.1) ? overlong_frame() : random_frame());
      if (chance(0.2)) wait(u(5000));
      disturb();
    }
    note("random frames x" + std::to_string(n));
  }

  void gen_hostile_start() {
    const int rounds = 3 + static_cast<int>(u(5));
    for (int r = 0; r < rounds; ++r) {
      const ota::Start s = hostile_start();
      std::ostringstream o;
      o << "START{size " << s.image_size << " crc " << std::hex << s.image_crc << std::dec << " ver " << s.image_version
        << " ps " << s.packet_size << " n " << s.packet_count << " sp " << std::hex << s.initial_sp << " rv "
        << s.reset_vector << std::dec << "}";
      note(o.str());
      send(frame(ota::MsgType::start, start_payload(s)));
      wait(3000);
      const int datas = static_cast<int>(u(12));
      for (int i = 0; i < datas; ++i) {
        const std::uint32_t count = s.packet_count ? s.packet_count : 1;
        const std::array<std::uint32_t, 6> idx{0, 0, 1, u(count), count, 0xFFFF};
        send(data_frame(s, pick(idx), !chance(0.3), !chance(0.3)));
        if (chance(0.15)) send(odd_message());
        if (chance(0.1)) send(overlong_frame());
        disturb();
        flake();
      }
      if (chance(0.3)) send(frame(ota::MsgType::data, random_bytes(u(3))));  // DATA shorter than its index
      wait(5000);
    }
  }

  // A valid v2 session: START, then DATA in order, each frame maybe mutated; then (often) a clean
  // second pass: START again and every packet in order, which completes the download unless a
  // mutation poisoned it.
  void gen_spliced_v2(double p, bool second_pass) {
    const std::uint16_t ps = static_cast<std::uint16_t>(16u << u(5));
    const ota::Start s = start_for(v2_, 2, ps);
    note("v2 session, packet " + std::to_string(ps) + ", mutation odds " + std::to_string(p));
    send({0});
    send(frame(ota::MsgType::start, start_payload(s)));
    wait(3000);
    std::vector<Bytes> frames;
    for (std::uint32_t i = 0; i < s.packet_count; ++i) frames.push_back(data_frame(s, i));
    for (std::size_t i = 0; i < frames.size(); ++i) {
      if (chance(p)) disturb();
      flake();
      if (!chance(p)) {
        send(frames[i]);
        continue;
      }
      const auto m = u(14);
      note("mutation " + std::to_string(m) + " at packet " + std::to_string(i));
      switch (m) {
        case 0: break;  // dropped
        case 1: send(frames[i]); send(frames[i]); break;  // duplicated
        case 2: if (i + 1 < frames.size()) { send(frames[i + 1]); send(frames[i]); ++i; } break;  // swapped
        case 3: send(damage(frames[i])); break;
        case 4: send(data_frame(s, static_cast<std::uint32_t>(i), true, false)); break;  // wrong bytes, good CRC
        case 5: send(data_frame(s, static_cast<std::uint32_t>(i), false, true)); break;  // wrong length
        case 6: send(odd_message()); send(frames[i]); break;
        case 7: send(random_frame()); send(frames[i]); break;
        case 8: send(overlong_frame()); send(frames[i]); break;
        case 9: send(frame(ota::MsgType::start, start_payload(s))); send(frames[i]); break;  // START again
        case 10: send(frame(ota::MsgType::start, start_payload(hostile_start()))); send(frames[i]); break;
        case 11: send(data_frame(s, u(s.packet_count + 2))); send(frames[i]); break;  // a wrong offset
        case 12: send(random_bytes(1 + u(40), 0.3)); send(frames[i]); break;
        default: send({0, 0}); send(frames[i]); send({0}); break;
      }
    }
    wait(50000);
    finish();
    if (second_pass) {
      note("second pass");
      send({0});
      send(frame(ota::MsgType::start, start_payload(s)));
      wait(3000);
      const std::size_t cut = chance(0.3) ? u(static_cast<std::uint32_t>(frames.size() + 1)) : frames.size() + 1;
      for (std::size_t i = 0; i < frames.size(); ++i) {
        if (i == cut) {
          wait(u(20000));
          steps.push_back({Step::power_cycle, {}, 0});
          note("power cycle at packet " + std::to_string(i));
          wait(300000);
          send({0});
          send(frame(ota::MsgType::start, start_payload(s)));
          wait(3000);
        }
        send(frames[i]);
      }
      if (cut == frames.size()) {
        wait(u(300000));  // RESULT, then the install: cut somewhere in it
        steps.push_back({Step::power_cycle, {}, 0});
        note("power cycle after the last packet");
      }
      wait(200000);
    }
  }

  // A press of the reset button or a power cycle, one or the other at random.
  void reset_or_power_cycle() {
    const bool cut = chance(0.5);
    steps.push_back({cut ? Step::power_cycle : Step::reset_pin, {}, 0});
    note(cut ? "power cycle" : "reset");
  }

  // A reset or power cycle, then at once hostile bytes into the bootloader's 50 ms listening
  // window: damaged RECOVERs, RECOVER with a payload, other frames, garbage.
  void gen_boot_window() {
    const int rounds = 1 + static_cast<int>(u(3));
    for (int r = 0; r < rounds; ++r) {
      reset_or_power_cycle();
      const int n = 2 + static_cast<int>(u(8));
      for (int i = 0; i < n; ++i) {
        switch (u(7)) {
          case 0: send(damage(frame(ota::MsgType::recover))); break;
          case 1: send(frame(ota::MsgType::recover, random_bytes(1 + u(40), 0.2))); note("RECOVER+payload"); break;
          case 2: send(random_frame()); break;
          case 3: send(random_bytes(1 + u(60), 0.1)); break;
          case 4: send(overlong_frame()); break;
          case 5: { Bytes f = frame(ota::MsgType::recover); f.pop_back(); send(f); break; }  // no delimiter
          default: send(frame(ota::MsgType::start, start_payload(start_for(v2_, 2, 256)))); break;
        }
        if (chance(0.3)) wait(u(10000));
      }
      wait(300000);
      if (chance(0.5)) gen_random_frames();
    }
  }

  // Sessions cut at a random byte, then a reset or a power cycle; repeated.
  void gen_truncated(bool recover_after) {
    const int rounds = 1 + static_cast<int>(u(3));
    for (int r = 0; r < rounds; ++r) {
      const std::uint16_t ps = static_cast<std::uint16_t>(16u << u(5));
      const ota::Start s = start_for(v2_, 2, ps);
      Bytes all = frame(ota::MsgType::start, start_payload(s));
      const std::size_t start_len = all.size();
      for (std::uint32_t i = 0; i < s.packet_count; ++i) {
        auto f = data_frame(s, i);
        all.insert(all.end(), f.begin(), f.end());
      }
      const std::size_t cut = u(static_cast<std::uint32_t>(all.size()));
      all.resize(cut);
      note("session (packet " + std::to_string(ps) + ") cut at byte " + std::to_string(cut));
      // the START first, so that the device has answered before DATA arrives
      Bytes head(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(cut, start_len)));
      send(head);
      wait(3000);
      if (cut > start_len) send(Bytes(all.begin() + static_cast<std::ptrdiff_t>(start_len), all.end()));
      if (chance(0.3)) wait(u(30000));
      reset_or_power_cycle();
      if (recover_after && chance(0.5)) {
        steps.push_back({Step::enter_recovery, {}, 0});
        note("RECOVER");
      } else {
        wait(300000);  // boot
      }
      if (chance(0.5)) gen_random_frames();
    }
  }

 private:
  std::mt19937 rng_;
  bool sagged_ = false;
  bool broken_ = false;
  const e2e::Firmware& fw_;
  const Bytes& v2_;
};

// ---- the rig -----------------------------------------------------------------------------------

class Rig {
 public:
  // `largest`: the sessions of the stream carry v2 padded to the layout's image limit.
  Rig(const e2e::Firmware& fw, Target t, std::uint32_t seed, bool largest, bool flaky = false)
      : fw_(fw), target_(t), seed_(seed), b_(cfg(seed, t != Target::failed_install && !flaky)) {
    v1_ = fw.app_bin(1);
    v2_ = fw.app_bin(2);
    delivered_ = largest ? fw.largest_app(2, seed) : v2_;
  }
  // The board varies with the seed: flash timings, a slower core, the hardware watchdog option.
  // (Not Config::zero_over_data = false: such a clone never installs, documented in
  // docs/flashing.md and pinned by e2e_recovery_test.)
  static bluepill::Config cfg(std::uint32_t seed, bool strict = true) {
    bluepill::Config c;
    c.seed = seed;
    c.strict = strict;  // (failed_install: the WRPRTERR that makes it is reported as an error)
    c.timing = seed % 3 == 1 ? bluepill::TimingMode::random : bluepill::TimingMode::typical;
    c.cycles_per_instruction = seed % 4 == 3 ? 2 : 1;
    c.hardware_watchdog = seed % 5 == 2;
    return c;
  }
  static std::string describe(std::uint32_t seed) {
    const auto c = cfg(seed);
    return std::string(c.timing == bluepill::TimingMode::random ? "random timings" : "typical timings") +
           (c.cycles_per_instruction > 1 ? ", 2 cycles/instr" : "") + (c.hardware_watchdog ? ", hardware watchdog" : "");
  }

  bluepill::Board& board() { return b_; }
  const Bytes& v1() const { return v1_; }
  const Bytes& v2() const { return v2_; }
  const Bytes& delivered() const { return delivered_; }
  bool committed() const { return committed_; }
  std::string failure;  // first broken promise

  // The board ready for the stream: the application running, or the bootloader in recovery.
  bool prepare() {
    b_.load_image(fw_.bootloader_elf());
    if (target_ != Target::recovery_blank) b_.load_image(fw_.app_elf(1));
    b_.power_on();
    if (target_ == Target::application) {
      if (e2e::boot_to_banner(b_) != 1) return fail("v1 did not boot: " + b_.uart_output());
    } else if (target_ == Target::recovery_blank) {
      if (b_.run_until_output("recovery", 3e6).stop != bluepill::Stop::condition)
        return fail("blank board not in recovery: " + b_.uart_output());
    } else if (target_ == Target::failed_install) {
      if (e2e::boot_to_banner(b_) != 1) return fail("v1 did not boot: " + b_.uart_output());
      // Pages 8-11 protected: zeroing v1's vector table fails, v1 is whole and runs, reporting
      // install_failed. Pages 12-15: the copy fails after the table was zeroed: recovery mode.
      // (v2 padded with random bytes to 8 KB for the latter: its pages 12-15 differ from v1's, so
      // the copy needs them)
      b_.set_write_protect(seed_ % 2 ? 0b100 : 0b1000);
      Bytes staged = v2_;
      std::mt19937 pad(seed_);
      while (staged.size() < 8192) staged.push_back(static_cast<std::uint8_t>(pad()));
      ota::host::Session first(seed_ % 2 ? v2_ : staged, 2);
      e2e::run(b_, first);
      if (first.outcome() != ota::host::Outcome::upgrade_failed)
        return fail(std::string("setting up a failed install: ") + ota::host::to_string(first.outcome()));
      b_.set_write_protect(0);
      b_.diagnostics().clear();
      if (!check_run(b_.run_for_us(100e3))) return false;
      if (!flag_start() || in_app() != (seed_ % 2 == 1))
        return fail("the failed install did not leave the expected state with OTA-START: " + b_.uart_output());
      committed_ = true;  // a verified v2 is staged and OTA-START set: the next boot may install it
    } else if (!enter_recovery()) {
      return false;
    }
    snapshot_internal_ = Bytes(b_.flash().bytes().begin(), b_.flash().bytes().end());
    const auto w = b_.w25q().bytes();
    snapshot_w25q_ = Bytes(w.begin(), w.end());
    for (std::uint32_t off = 0; off < sim::InternalFlash::kSize; off += sim::InternalFlash::kPage)
      erases_internal_.push_back(b_.flash().erases(off));
    b_.on_uart_tx = [this](std::uint8_t c) { on_tx(c); };
    return true;
  }

  // RECOVER every 5 ms from power-on (or reset) until the bootloader says "recovery".
  bool enter_recovery() {
    const std::size_t from = b_.uart_output().size();
    const Bytes rec = frame(ota::MsgType::recover);
    for (int i = 0; i < 200; ++i) {
      if (b_.uart_output().find("recovery", from) != std::string::npos) return true;
      b_.uart_send(rec);
      if (!check_run(b_.run_for_us(5e3))) return false;
    }
    return fail("RECOVER did not keep the bootloader in recovery: " + b_.uart_output().substr(from));
  }

  bool run_steps(const std::vector<Step>& steps) {
    for (const auto& s : steps) {
      switch (s.kind) {
        case Step::bytes:
          b_.uart_send(s.data);
          if (!check_run(b_.run_for_us(static_cast<double>(s.data.size()) * 87.0 + 500))) return false;
          break;
        case Step::wait:
          if (!check_run(b_.run_for_us(s.us))) return false;
          break;
        case Step::reset_pin:
          b_.reset_pin();
          break;
        case Step::power_cycle:
          b_.power_cut();
          note_flag();
          if (!check_flash()) return false;
          b_.power_on();
          break;
        case Step::enter_recovery:
          if (!enter_recovery()) return false;
          break;
        case Step::overrun:
          if (b_.powered()) b_.usart_overrun();
          break;
        case Step::supply:
          b_.set_supply_volts(s.us);
          break;
        case Step::write_protect:
          b_.set_write_protect(static_cast<std::uint32_t>(s.us));
          break;
        case Step::w25q:  // write protection of part of block 0 (status register bits): writes there fail
          if (s.us > 0) b_.w25q().protect(static_cast<std::uint32_t>(s.us) - 1, static_cast<std::uint32_t>(s.us) - 1 + 0x4000);
          else b_.w25q().protect(0, 0);
          break;
      }
      note_flag();
      if (!check_flash()) return false;
    }
    return check_run(b_.run_for_us(300e3)) && (note_flag(), check_flash());
  }

  // After the stream, silence for longer than kRecoveryIdleMs: an application keeps running (no
  // reset), a blank board keeps waiting in recovery, a bootloader that RECOVER kept in recovery
  // mode (its application valid) goes back to the application (docs/protocol.md 2.11).
  bool check_silence() {
    const std::uint32_t resets = b_.resets();
    const bool was_in_app = in_app();
    const bool pending = flag_start();
    if (!check_run(b_.run_for_us((ota::kRecoveryIdleMs + 2000) * 1e3))) return false;
    if (b_.resets() != resets && !settle()) return false;  // an install may take seconds
    note_flag();
    if (!check_flash()) return false;
    const std::string& all = b_.uart_output();
    const std::string said = std::string(was_in_app ? "in the application" : "in recovery") + " at the start, resets " +
                             std::to_string(resets) + " -> " + std::to_string(b_.resets()) +
                             ", output tail: " + all.substr(all.size() > 200 ? all.size() - 200 : 0);
    if (target_ == Target::failed_install && !was_in_app) {
      // "OTA-START" still set: the bootloader resets after the silence and installs v2; cleared
      // (a new download began): nothing to install, it keeps waiting (no valid application).
      const bool whole_app = e2e::app_area_is(b_, *fw_.layout, v1_) || e2e::app_area_is(b_, *fw_.layout, v2_);
      if (pending ? !(in_app() && e2e::app_area_is(b_, *fw_.layout, v2_)) : in_app() != whole_app)
        return fail(std::string("after a failed install, silence with OTA-START ") + (pending ? "set" : "cleared") +
                    " did not end as docs/protocol.md 2.11 says (the next boot installs a pending image; a whole application is started; otherwise recovery waits): " + said);
    } else if (committed_) {  // the install of the verified image may still have been under way
      if (!in_app()) return fail("a committed verified image did not end in a running application: " + said);
    } else if (was_in_app) {  // (a RECOVER in a boot window of the stream may have left it in recovery)
      if (b_.resets() != resets || !in_app()) return fail("the application did not keep running in silence: " + said);
    } else if (target_ == Target::recovery_blank && !committed_) {
      if (b_.resets() != resets || in_app()) return fail("a blank board did not keep waiting in recovery in silence: " + said);
    } else if (b_.resets() != resets + 1 || !in_app()) {
      return fail("recovery mode with a valid application did not go back to it after " +
                  std::to_string(ota::kRecoveryIdleMs) + " ms of silence: " + said);
    }
    return true;
  }

  // Runs until the last boot has printed its outcome: an application's banner or "recovery".
  bool settle() {
    const auto from = b_.uart_output().rfind("boot ");
    if (from == std::string::npos) return true;
    const auto r = b_.run_until([&] { return booted_since(from); }, 15e6);
    if (r.stop == bluepill::Stop::condition) return true;
    if (!check_run(r)) return false;
    return fail("the board printed neither an application banner nor recovery within 15 s of a boot: " +
                b_.uart_output().substr(from));
  }

  // Since output offset `from`, the firmware printed a whole application banner, or "recovery".
  bool booted_since(std::size_t from) const {
    const std::string& out = b_.uart_output();
    const auto at = out.find("app v", from);
    return (at != std::string::npos && out.find('\n', at) != std::string::npos) ||
           out.find("recovery", from) != std::string::npos;
  }

  // The last line the firmware printed is an application's banner (not "recovery").
  bool in_app() const {
    const std::string& all = b_.uart_output();
    const auto last_app = all.rfind("app v"), last_rec = all.rfind("recovery");
    return last_app != std::string::npos && (last_rec == std::string::npos || last_app > last_rec);
  }

  // After the stream: a power cycle, and the board must run what it is entitled to.
  bool check_power_cycle() {
    b_.power_cut();
    const bool pending = flag_start();
    note_flag();
    if (!check_flash()) return false;
    b_.power_on();
    const std::size_t from = b_.uart_output().size();
    const auto r = b_.run_until([&] { return booted_since(from); }, 5e6);
    if (r.stop == bluepill::Stop::error || r.stop == bluepill::Stop::idle)
      return fail(std::string("after the power cycle: ") + bluepill::to_string(r.stop) + ": " + r.message);
    const std::string out = b_.uart_output().substr(from);
    const bool v2_in = e2e::app_area_is(b_, *fw_.layout, v2_);
    const bool delivered_in = e2e::app_area_is(b_, *fw_.layout, delivered_);
    const bool v1_in = e2e::app_area_is(b_, *fw_.layout, v1_);
    if (target_ == Target::failed_install) {
      // "OTA-START" at the cut: the install is retried (the fault is gone) and v2 runs.
      if (pending && !v2_in) return fail("OTA-START was set at the power cut but v2 was not installed: " + out);
      const char* want = v2_in ? "app v2" : v1_in ? "app v1" : "recovery";
      if (out.find(want) == std::string::npos || (!v2_in && !v1_in && out.find("app v") != std::string::npos))
        return fail(std::string("after a failed install and the stream, expected ") + want + ": " + out);
      return true;
    }
    if (committed_) {
      if (!delivered_in) return fail("a verified v2 was committed but is not installed after the power cycle: " + out);
      if (out.find("app v2") == std::string::npos) return fail("v2 installed but not running: " + out);
      return true;
    }
    if (v2_in) return fail("v2 installed although no complete verified v2 was delivered: " + out);
    if (target_ == Target::recovery_blank) {
      if (out.find("recovery") == std::string::npos || out.find("app v") != std::string::npos)
        return fail("a blank board did not wait in recovery mode: " + out);
      return true;
    }
    if (!v1_in) return fail("the application area no longer holds v1: " + out);
    if (out.find("app v1") == std::string::npos) return fail("v1 does not run after the power cycle: " + out);
    return true;
  }

  // A clean push of v2 (one retry allowed only after checksum_failed when the stream poisoned a
  // resumable v2 download with wrong bytes under valid frame CRCs).
  bool check_clean_push(bool poisoned) {
    b_.on_uart_tx = nullptr;
    for (int attempt = 0; attempt < 2; ++attempt) {
      ota::host::Session s(v2_, 2);
      const auto r = e2e::run(b_, s);
      if (r.stop == bluepill::Stop::error || r.stop == bluepill::Stop::idle)
        return fail(std::string("clean push: board ") + bluepill::to_string(r.stop) + ": " + r.message);
      const auto o = s.outcome();
      if (o == ota::host::Outcome::upgraded || (committed_ && o == ota::host::Outcome::up_to_date)) {
        if (!e2e::app_area_is(b_, *fw_.layout, v2_)) return fail("clean push ended upgraded but v2 is not in place");
        return true;
      }
      if (!(poisoned && attempt == 0 && o == ota::host::Outcome::checksum_failed))
        return fail(std::string("clean push of v2 ended ") + ota::host::to_string(o) + ": " + s.detail() +
                    (attempt ? " (second attempt)" : ""));
    }
    return fail("unreachable");
  }

  bool diagnostics_clean() {
    for (const auto& d : b_.diagnostics().all())
      if (d.severity == bluepill::Severity::error && d.text.find("write-protected (WRPRTERR)") == std::string::npos)
        return fail("board error: " + d.to_string());
    return true;
  }

  std::string device_said() const { return said_; }

 private:
  bool fail(std::string why) {
    if (failure.empty()) failure = std::move(why);
    return false;
  }

  bool check_run(const bluepill::RunResult& r) {
    if (r.stop == bluepill::Stop::error) return fail("the board stopped with an error (fault/lockup/rule): " + r.message);
    if (r.stop == bluepill::Stop::idle) return fail("the CPU sleeps and nothing can wake it");
    if (r.stop == bluepill::Stop::off) return fail("the board is off");
    for (const auto& d : b_.diagnostics().all())
      if (d.severity == bluepill::Severity::error && d.text.find("write-protected (WRPRTERR)") == std::string::npos)
        return fail("board error: " + d.to_string());
    return true;
  }

  void on_tx(std::uint8_t c) {
    if (dec_.feed(c) != ota::FrameDecoder::Event::frame) return;
    const ota::Frame f = dec_.frame();
    said_ += hex8(f.type) + " ";
    if (f.type == static_cast<std::uint8_t>(ota::MsgType::result)) {
      ota::Result res;
      if (ota::decode(f, res) && res.status == ota::Status::ok) committed_ = true;
    }
  }
  static std::string hex8(std::uint8_t v) {
    static const char* d = "0123456789ABCDEF";
    return std::string{d[v >> 4], d[v & 15]};
  }

  // "OTA-START" in the flag area: a verified image is committed (the client writes it only
  // after the whole image matched START's CRC-32).
  void note_flag() {
    if (flag_start()) committed_ = true;
  }
  bool flag_start() {
    const auto& fl = fw_.layout->flags;
    std::array<char, 9> text{};
    if (fl.medium == ota::Medium::internal) {
      std::memcpy(text.data(), b_.flash().bytes().data() + (fl.base - sim::InternalFlash::kBase), text.size());
    } else {
      std::memcpy(text.data(), b_.w25q().bytes().data() + fl.base, text.size());
    }
    return std::memcmp(text.data(), "OTA-START", 9) == 0;
  }

  bool in_update_area(ota::Medium m, std::uint32_t addr) const {
    const ota::Layout& l = *fw_.layout;
    for (const ota::Region& r : {l.staging, l.flags})
      if (r.medium == m && r.contains(addr)) return true;
    return false;  // (the journal is the last unit of staging)
  }

  bool check_flash() {
    const auto mem = b_.flash().bytes();
    const ota::Layout& l = *fw_.layout;
    constexpr std::uint32_t kPage = sim::InternalFlash::kPage;
    for (std::uint32_t off = 0; off < mem.size(); off += kPage) {
      const std::uint32_t addr = sim::InternalFlash::kBase + off;
      const bool boot = addr < l.app.base;
      if (!boot && (committed_ || in_update_area(ota::Medium::internal, addr))) continue;
      // (an install of a verified image may rewrite the application; the bootloader: never)
      if (std::memcmp(mem.data() + off, snapshot_internal_.data() + off, kPage) != 0)
        return fail(std::string(boot ? "a bootloader page" : "internal flash outside staging/journal/flags") +
                    " changed at page " + bluepill::hex32(addr) + " before a verified image existed");
      if (b_.flash().erases(off) != erases_internal_[off / kPage])
        return fail("internal page " + bluepill::hex32(addr) + " outside staging/journal/flags was erased" +
                    " before a verified image existed");
    }
    const auto w = b_.w25q().bytes();
    constexpr std::uint32_t kSector = sim::W25qChip::kSectorSize;
    for (std::uint32_t off = 0; off < w.size(); off += kSector) {
      if (in_update_area(ota::Medium::external, off)) continue;
      if (std::memcmp(w.data() + off, snapshot_w25q_.data() + off, kSector) != 0)
        return fail("W25Q outside staging/journal/flags changed at " + bluepill::hex32(off));
    }
    return true;
  }

  const e2e::Firmware& fw_;
  Target target_;
  std::uint32_t seed_;
  bluepill::Board b_;
  Bytes v1_, v2_, delivered_;
  Bytes snapshot_internal_, snapshot_w25q_;
  std::vector<std::uint32_t> erases_internal_;
  ota::FrameDecoderBuffer<300> dec_;
  bool committed_ = false;
  std::string said_;
};

// ---- the campaign ------------------------------------------------------------------------------

struct Case {
  Target target;
  StreamKind kind;
  std::uint32_t seed;
  bool largest;  // the sessions carry v2 padded to the image limit
};

std::vector<Case> cases(const std::string& layout, Target only) {
  std::vector<Case> v;
  // the external layout's W25Q erases take longer in virtual time: fewer seeds
  int per = layout == "internal" ? 4 : 2;
  // For a longer hunt (not in ctest): OTA_FUZZ_PER=<streams per kind>, OTA_FUZZ_SEED=<first seed>.
  if (const char* e = std::getenv("OTA_FUZZ_PER")) per = std::atoi(e);
  const Target targets[] = {Target::application, Target::recovery_blank, Target::recovery_recover, Target::failed_install};
  const StreamKind kinds[] = {StreamKind::random_bytes, StreamKind::random_frames, StreamKind::hostile_start,
                              StreamKind::spliced_v2, StreamKind::truncated_with_cuts, StreamKind::boot_window};
  std::uint32_t seed = layout == "internal" ? 1000 : 5000;
  if (const char* e = std::getenv("OTA_FUZZ_SEED")) seed = static_cast<std::uint32_t>(std::strtoul(e, nullptr, 10));
  for (Target t : targets)
    for (StreamKind k : kinds) {
      if (t != only) {  // (the seeds stay where they were)
        seed += static_cast<std::uint32_t>(k == StreamKind::spliced_v2 || k == StreamKind::hostile_start ? 2 * per : per);
        continue;
      }
      const int n = k == StreamKind::spliced_v2 || k == StreamKind::hostile_start ? 2 * per : per;
      const bool sessions = k == StreamKind::spliced_v2 || k == StreamKind::truncated_with_cuts;
      for (int i = 0; i < n; ++i) v.push_back({t, k, seed++, sessions && i % 3 == 2});
    }
  return v;
}

void run_case(const std::string& layout, const Case& c, int& committed_count) {
  const e2e::Firmware fw(layout);
  // a flash that fails now and then: some of the hostile START/DATA and spliced sessions
  const bool flaky = (c.kind == StreamKind::hostile_start || c.kind == StreamKind::spliced_v2) && c.seed % 3 == 1;
  Rig rig(fw, c.target, c.seed, c.largest, flaky);
  Gen g(c.seed, fw, rig.delivered());
  g.flaky = flaky;
  switch (c.kind) {
    case StreamKind::random_bytes: g.gen_random_bytes(); break;
    case StreamKind::random_frames: g.gen_random_frames(); break;
    case StreamKind::hostile_start: g.gen_hostile_start(); break;
    case StreamKind::spliced_v2: g.gen_spliced_v2(g.chance(0.5) ? 0.02 : 0.08, g.chance(0.7)); break;
    case StreamKind::truncated_with_cuts: g.gen_truncated(c.target == Target::recovery_recover); break;
    case StreamKind::boot_window: g.gen_boot_window(); break;
  }
  g.finish();
  const std::string where = "layout " + layout + ", target " + name(c.target) + ", seed " + std::to_string(c.seed) +
                            " (" + Rig::describe(c.seed) + (flaky ? ", flaky flash" : "") + ")" +
                            ", stream: " + name(c.kind) + (c.largest ? " (image at the size limit)" : "") + " [" + g.log + "]";
  SCOPED_TRACE(where);
  ASSERT_TRUE(rig.prepare()) << rig.failure;
  const bool ok = rig.run_steps(g.steps) && rig.check_silence() && rig.check_power_cycle() && rig.check_clean_push(g.poisoned) &&
                  rig.diagnostics_clean();
  EXPECT_TRUE(ok) << rig.failure << "\n  device frames (types): " << rig.device_said().substr(0, 600);
  committed_count += rig.committed() ? 1 : 0;
  if (std::getenv("OTA_FUZZ_VERBOSE"))
    std::printf("%s\n  committed %d poisoned %d, device frames: %s\n", where.c_str(), rig.committed(), g.poisoned,
                rig.device_said().substr(0, 300).c_str());
}

std::string target_suffix(Target t) {
  switch (t) {
    case Target::application: return "application";
    case Target::recovery_blank: return "blank";
    case Target::recovery_recover: return "recover";
    case Target::failed_install: return "failed_install";
  }
  return "?";
}

class E2eFuzz : public ::testing::TestWithParam<std::tuple<std::string, Target>> {};

TEST_P(E2eFuzz, HostileStreamsNeverBrickNorTouchTheApplication) {
  const std::string layout = std::get<0>(GetParam());
  int committed = 0;
  const auto all = cases(layout, std::get<1>(GetParam()));
  for (const Case& c : all) {
    run_case(layout, c, committed);
    if (HasFatalFailure()) return;
  }
  // The campaign must reach the commit path at least once, or its install checks test nothing.
  EXPECT_GE(committed, 1) << "no stream delivered a complete v2: the spliced sessions are too damaged";
  std::printf("[ fuzz ] %s, %s: %zu streams, %d delivered a verified v2\n", layout.c_str(),
              name(std::get<1>(GetParam())), all.size(), committed);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, E2eFuzz,
    ::testing::Combine(::testing::Values("internal", "external"),
                       ::testing::Values(Target::application, Target::recovery_blank, Target::recovery_recover,
                                         Target::failed_install)),
    [](const auto& i) { return std::get<0>(i.param) + "_" + target_suffix(std::get<1>(i.param)); });

// ---- directed: what the device answers, against docs/protocol.md ---------------------------------

struct Reply {
  std::uint8_t type;
  Bytes payload;
};

class Talk {
 public:
  Talk(const e2e::Firmware& fw, Target t) : fw_(fw), t_(t) {
    b_.load_image(fw.bootloader_elf());
    if (t != Target::recovery_blank) b_.load_image(fw.app_elf(1));
    b_.power_on();
    if (t == Target::application) {
      ok_ = e2e::boot_to_banner(b_) == 1;
    } else if (t == Target::recovery_blank) {
      ok_ = b_.run_until_output("recovery", 3e6).stop == bluepill::Stop::condition;
    } else {
      const Bytes rec = frame(ota::MsgType::recover);
      for (int i = 0; i < 200 && b_.uart_output().find("recovery") == std::string::npos; ++i) {
        b_.uart_send(rec);
        b_.run_for_us(5e3);
      }
      ok_ = b_.uart_output().find("recovery") != std::string::npos;
      b_.run_for_us(20e3);  // answers to the RECOVERs sent after it took
    }
    b_.run_for_us(50e3);  // the boot HELLO
    b_.on_uart_tx = [this](std::uint8_t c) {
      if (dec_.feed(c) == ota::FrameDecoder::Event::frame) {
        const ota::Frame f = dec_.frame();
        got_.push_back({f.type, Bytes(f.payload, f.payload + f.len)});
        if (got_.size() == 1) first_reply_us_ = b_.now_us();
      }
    };
  }
  bool ok() const { return ok_; }
  bluepill::Board& board() { return b_; }
  double first_reply_us() const { return first_reply_us_; }

  std::vector<Reply> say(const Bytes& bytes, double extra_us = 30e3) {
    got_.clear();
    b_.uart_send(bytes);
    const auto r = b_.run_for_us(static_cast<double>(bytes.size()) * 87.0 + extra_us);
    EXPECT_EQ(r.stop, bluepill::Stop::limit) << r.message;
    return got_;
  }

  // erase counts of every unit of both parts
  std::vector<std::uint32_t> erases() {
    std::vector<std::uint32_t> v;
    for (std::uint32_t off = 0; off < sim::InternalFlash::kSize; off += sim::InternalFlash::kPage) v.push_back(b_.flash().erases(off));
    for (std::uint32_t off = 0; off < 0x10000; off += sim::W25qChip::kSectorSize) v.push_back(b_.w25q().erases(off));
    return v;
  }

 private:
  const e2e::Firmware& fw_;
  Target t_;
  bluepill::Board b_;
  bool ok_ = false;
  ota::FrameDecoderBuffer<300> dec_;
  std::vector<Reply> got_;
  double first_reply_us_ = 0;
};

std::string show(const std::vector<Reply>& r) {
  std::string s;
  for (const auto& x : r) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02X", x.type);
    s += buf;
    if (!x.payload.empty() && x.type != 0x81) {
      std::snprintf(buf, sizeof buf, "/%u", x.payload[0]);
      s += buf;
    }
    s += " ";
  }
  return s.empty() ? "(nothing)" : s;
}

// One reply of `type` whose first payload byte (a status) is `status`.
::testing::AssertionResult one(const std::vector<Reply>& r, ota::MsgType type, ota::Status status) {
  if (r.size() == 1 && r[0].type == static_cast<std::uint8_t>(type) && !r[0].payload.empty() &&
      r[0].payload[0] == static_cast<std::uint8_t>(status))
    return ::testing::AssertionSuccess();
  char want[32];
  std::snprintf(want, sizeof want, "%02X/%u", static_cast<unsigned>(type), static_cast<unsigned>(status));
  return ::testing::AssertionFailure() << "wanted exactly " << want << ", got " << show(r);
}

class E2eFuzzReplies : public ::testing::TestWithParam<std::tuple<std::string, Target>> {};

TEST_P(E2eFuzzReplies, TheDeviceAnswersHostileFramesAsTheProtocolSays) {
  const e2e::Firmware fw(std::get<0>(GetParam()));
  Talk t(fw, std::get<1>(GetParam()));
  ASSERT_TRUE(t.ok()) << t.board().uart_output();
  const Bytes v2 = fw.app_bin(2);
  const auto before = t.erases();
  std::mt19937 rng(7);
  using ota::MsgType;
  using ota::Status;

  // No download: garbage, bad frames and the device's own direction draw nothing (1.3, 2).
  for (int i = 0; i < 20; ++i) {
    Bytes g(1 + rng() % 80);
    for (auto& c : g) c = static_cast<std::uint8_t>(rng() | 1);
    g.push_back(0);
    EXPECT_EQ(t.say(g).size(), 0u) << "garbage " << i;
  }
  for (std::uint8_t type : {0x81, 0x82, 0x83, 0x84, 0x85, 0x80, 0xC3, 0xFF})
    EXPECT_EQ(t.say(frame(type, Bytes(type == 0x81 ? 40 : 3, 0x11))).size(), 0u) << "own-direction frame " << int(type);
  Bytes overlong = frame(MsgType::start, Bytes(300, 0x22));
  EXPECT_EQ(t.say(overlong).size(), 0u) << "an overlong frame outside a download";
  // Unknown S->D types: DATA_NAK unknown_message.
  for (std::uint8_t type : {0x00, 0x07, 0x10, 0x7F})
    EXPECT_TRUE(one(t.say(frame(type, {})), MsgType::data_nak, Status::unknown_message)) << "type " << int(type);
  // DATA: shorter than 3 bytes is bad_length before no_session; otherwise no_session.
  EXPECT_TRUE(one(t.say(frame(MsgType::data, {0, 0})), MsgType::data_nak, Status::bad_length));
  EXPECT_TRUE(one(t.say(frame(MsgType::data, {})), MsgType::data_nak, Status::bad_length));
  EXPECT_TRUE(one(t.say(frame(MsgType::data, {0, 0, 1})), MsgType::data_nak, Status::no_session));
  // START: malformed, too large, bad parameters, bad vectors, in the documented order.
  for (std::size_t len : {0u, 23u, 25u, 60u})
    EXPECT_TRUE(one(t.say(frame(MsgType::start, Bytes(len, 0x33))), MsgType::start_reply, Status::bad_params)) << len;
  const std::uint32_t limit = fw.layout->image_limit;
  auto start = [&](auto&& edit) {
    ota::Start s = start_for(v2, 2, 256);
    edit(s);
    return frame(MsgType::start, start_payload(s));
  };
  EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.image_size = limit + 1; s.packet_size = 17; })), MsgType::start_reply, Status::too_large));
  EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.image_size = 0xFFFFFFFF; })), MsgType::start_reply, Status::too_large));
  EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.image_size = 7; s.packet_count = 1; })), MsgType::start_reply, Status::bad_params));
  EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.image_size = 0; s.packet_count = 0; })), MsgType::start_reply, Status::bad_params));
  for (std::uint16_t ps : {0, 8, 15, 24, 100, 257, 512, 0xFFFF})
    EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.packet_size = ps; s.packet_count = static_cast<std::uint16_t>(ota::packet_count_for(s.image_size, ps)); })),
                    MsgType::start_reply, Status::bad_params)) << "packet size " << ps;
  EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.packet_count += 1; })), MsgType::start_reply, Status::bad_params));
  EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.packet_count = 0; })), MsgType::start_reply, Status::bad_params));
  for (std::uint32_t sp : {0u, 0x20000000u, 0x20005004u, 0x20004FFEu, 0x08002000u, 0xFFFFFFFFu})
    EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.initial_sp = sp; })), MsgType::start_reply, Status::invalid_image)) << std::hex << sp;
  const std::uint32_t base = fw.layout->app.base;
  for (std::uint32_t rv : {base + 1, base + 7, base + 8, base + static_cast<std::uint32_t>(v2.size()) + 1, 0x08000101u, 0xFFFFFFFFu})
    EXPECT_TRUE(one(t.say(start([&](ota::Start& s) { s.reset_vector = rv; })), MsgType::start_reply, Status::invalid_image)) << std::hex << rv;
  // Nothing of the above erased anything.
  EXPECT_EQ(t.erases(), before) << "a refused START erased something";

  // A well-formed START whose vector words packet 0 does not carry: refused at DATA 0, nothing erased.
  {
    ota::Start s = start_for(v2, 2, 256);
    s.initial_sp -= 4;  // still sane
    EXPECT_TRUE(one(t.say(frame(MsgType::start, start_payload(s))), MsgType::start_reply, Status::ok));
    Bytes p0 = data_payload(0, v2.data(), 256);
    EXPECT_TRUE(one(t.say(frame(MsgType::data, p0)), MsgType::data_nak, Status::invalid_image));
    EXPECT_TRUE(one(t.say(frame(MsgType::data, p0)), MsgType::data_nak, Status::no_session)) << "the download was dropped";
    EXPECT_EQ(t.erases(), before) << "an image refused at packet 0 erased something";
  }

  // A download in progress: damage draws one DATA_NAK bad_frame, then silence until a packet is
  // stored; a gap one out_of_order; a duplicate DATA_ACK next; a wrong length bad_length.
  const ota::Start s = start_for(v2, 2, 256);
  EXPECT_TRUE(one(t.say(frame(MsgType::start, start_payload(s))), MsgType::start_reply, Status::ok));
  auto data = [&](std::uint16_t i) { return frame(MsgType::data, data_payload(i, v2.data() + i * 256u, std::min<std::size_t>(256, v2.size() - i * 256u))); };
  auto r0 = t.say(data(0), 300e3);
  ASSERT_EQ(r0.size(), 1u) << show(r0);
  EXPECT_EQ(r0[0].type, 0x83);
  Bytes bad = data(1);
  bad[10] ^= 0x40;
  if (bad[10] == 0) bad[10] = 1;
  EXPECT_TRUE(one(t.say(bad), MsgType::data_nak, Status::bad_frame));
  EXPECT_EQ(t.say(bad).size(), 0u) << "a second bad frame before a packet is stored";
  EXPECT_EQ(t.say(overlong).size(), 0u) << "an overlong frame after the NAK";
  auto r1 = t.say(data(1), 60e3);
  ASSERT_EQ(r1.size(), 1u) << show(r1);
  EXPECT_EQ(r1[0].type, 0x83);
  EXPECT_TRUE(one(t.say(overlong), MsgType::data_nak, Status::bad_frame)) << "an overlong frame in a download is a bad frame (too_long)";
  EXPECT_EQ(t.say(data(3)).size(), 0u) << "after a NAK, silence until a packet is stored";
  auto r2 = t.say(data(2), 60e3);
  ASSERT_EQ(r2.size(), 1u) << show(r2);
  auto dup = t.say(data(0));
  ASSERT_EQ(dup.size(), 1u) << show(dup);
  EXPECT_EQ(dup[0].type, 0x83);
  EXPECT_EQ(ota::get_u16(dup[0].payload.data()), 3u) << "a duplicate is acknowledged with next";
  EXPECT_TRUE(one(t.say(data(5)), MsgType::data_nak, Status::out_of_order));
  EXPECT_EQ(t.say(data(6)).size(), 0u) << "one NAK per gap";
  EXPECT_TRUE(one(t.say(frame(MsgType::data, data_payload(3, v2.data() + 768, 100))), MsgType::data_nak, Status::bad_length));
  for (std::uint8_t type : {0x81, 0x83, 0x85})
    EXPECT_EQ(t.say(frame(type, Bytes(type == 0x81 ? 40 : 5, 0))).size(), 0u) << "own-direction frame in a download";
  // START of another image while this one is in progress: busy; ABORT: HELLO.
  EXPECT_TRUE(one(t.say(start([&](ota::Start& x) { x.image_version = 3; })), MsgType::start_reply, Status::busy));
  auto ab = t.say(frame(MsgType::abort));
  ASSERT_EQ(ab.size(), 1u) << show(ab);
  EXPECT_EQ(ab[0].type, 0x81);
  {  // the journal stays: HELLO shows the download, resumable from unit 0 (none complete yet)
    ota::Hello h;
    ASSERT_TRUE(ota::decode(ota::Frame{ab[0].type, ab[0].payload.data(), ab[0].payload.size()}, h));
    EXPECT_EQ(h.session_crc, s.image_crc);
    EXPECT_EQ(h.session_next, 0u);
  }
  EXPECT_TRUE(one(t.say(frame(MsgType::data, data_payload(3, v2.data() + 768, 256))), MsgType::data_nak, Status::no_session))
      << "DATA after ABORT";
  // The same image with another packet size resumes (section 7); a unit completed with 128-byte
  // packets counts for a START with 256-byte packets.
  const ota::Start s128 = start_for(v2, 2, 128);
  auto st = t.say(frame(MsgType::start, start_payload(s128)));
  ASSERT_TRUE(one(st, MsgType::start_reply, Status::ok));
  EXPECT_EQ(ota::get_u16(st[0].payload.data() + 1), 0u);
  const std::uint32_t per_unit = fw.layout->staging_unit / 128;
  for (std::uint32_t i = 0; i < per_unit; ++i) {
    auto r = t.say(frame(MsgType::data, data_payload(static_cast<std::uint16_t>(i), v2.data() + i * 128, 128)), 80e3);
    ASSERT_EQ(r.size(), 1u) << "packet " << i << ": " << show(r);
    ASSERT_EQ(r[0].type, 0x83) << "packet " << i << ": " << show(r);
    EXPECT_EQ(ota::get_u16(r[0].payload.data()), i + 1);
  }
  EXPECT_TRUE(one(t.say(frame(MsgType::start, start_payload(s))), MsgType::start_reply, Status::busy))
      << "another packet size while the download is active differs in a START field: busy";
  auto restart = t.say(frame(MsgType::start, start_payload(s128)));
  ASSERT_TRUE(one(restart, MsgType::start_reply, Status::ok)) << "the same START again restarts the exchange";
  EXPECT_EQ(ota::get_u16(restart[0].payload.data() + 1), per_unit) << "from the last unit stored";
  ASSERT_EQ(t.say(frame(MsgType::abort)).size(), 1u);
  auto resumed = t.say(frame(MsgType::start, start_payload(s)));
  ASSERT_TRUE(one(resumed, MsgType::start_reply, Status::ok));
  EXPECT_EQ(ota::get_u16(resumed[0].payload.data() + 1), fw.layout->staging_unit / 256)
      << "resumed after unit 0, counted in the new packet size";
  ASSERT_EQ(t.say(frame(MsgType::abort)).size(), 1u);
  if (fw.layout->staging.medium == ota::Medium::external) {
    // A W25Q that does not answer: the journal cannot be read, START is refused flash_error
    // (section 2.3, step 5), nothing else happens; wired again, the same START is taken.
    t.board().set_w25q_connected(false);
    const double t0 = t.board().now_us();
    auto refused = t.say(frame(MsgType::start, start_payload(s)), 10e6);  // (every wait gives up after its poll limit)
    EXPECT_TRUE(one(refused, MsgType::start_reply, Status::flash_error));
    std::printf("[ fuzz ] START without a W25Q answered after %.0f ms of virtual time\n", t.first_reply_us() / 1000 - t0 / 1000);
    t.board().set_w25q_connected(true);
    auto again = t.say(frame(MsgType::start, start_payload(s)), 300e3);
    EXPECT_TRUE(one(again, MsgType::start_reply, Status::ok));
    ASSERT_EQ(t.say(frame(MsgType::abort)).size(), 1u);
  }
  EXPECT_EQ(t.board().diagnostics().errors(), 0u) << t.board().diagnostics().error_text();
  // The application area was not touched by any of it.
  if (std::get<1>(GetParam()) != Target::recovery_blank) {
    EXPECT_TRUE(e2e::app_area_is(t.board(), *fw.layout, fw.app_bin(1)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, E2eFuzzReplies,
    ::testing::Combine(::testing::Values("internal", "external"),
                       ::testing::Values(Target::application, Target::recovery_blank, Target::recovery_recover)),
    [](const auto& i) {
      const Target t = std::get<1>(i.param);
      return std::get<0>(i.param) + (t == Target::application ? "_application" : t == Target::recovery_blank ? "_blank" : "_recover");
    });

}  // namespace

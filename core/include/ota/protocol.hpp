// The messages of the update protocol, version 1. docs/protocol.md describes them byte by byte;
// this file is the single source both ends compile (the device's client and bootloader, the
// host's `ota` tool). All fields are little-endian (ota/bytes.hpp).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "ota/frame.hpp"
#include "ota/layout.hpp"

namespace ota {

// 2 appended `product` to HELLO (docs/protocol.md section 11); a server still speaks with a
// device of version 1 (its HELLO names no product).
inline constexpr std::uint8_t kProtocolVersion = 2;
inline constexpr std::uint8_t kOldestProtocolVersion = 1;
inline constexpr std::uint16_t kMaxChunk = 256;  // largest DATA chunk any device accepts
inline constexpr std::uint16_t kMinChunk = 16;   // packet 0 must hold the vector table's first words
inline constexpr std::uint16_t kNoSession = 0xFFFF;
// How long a bootloader listens for RECOVER before it starts a valid application.
inline constexpr std::uint32_t kRecoverWindowMs = 50;
// The bootloader's first line after every reset: this, then its layout's name ("boot internal").
// A server that hears it again and again, and no frame, knows the device resets over and over.
inline constexpr char kBootLine[] = "boot ";
// A bootloader that RECOVER kept in recovery mode (its application is valid) resets, and so starts
// the application, after this long without a frame from the server (bytes that make no frame,
// such as line noise, do not count): a --recover push that was stopped, or a server that went
// away, does not leave the device out of service. (A download under way resumes in the
// application's client.)
inline constexpr std::uint32_t kRecoveryIdleMs = 30'000;

enum class MsgType : std::uint8_t {
  // server -> device
  hello_request = 0x01,  // no payload: "announce yourself"
  start = 0x02,          // Start
  data = 0x03,           // u16 index, chunk bytes
  abort = 0x04,          // no payload: drop the download in progress (it can still be resumed)
  report_ack = 0x05,     // no payload: the server has the pending report; the device clears it
  recover = 0x06,        // no payload: "stay in the bootloader": a bootloader that sees it in its
                         // listening window after reset enters recovery instead of starting the
                         // application (a device whose application crashes at boot); a running
                         // client answers HELLO
  // device -> server
  hello = 0x81,          // Hello
  start_reply = 0x82,    // StartReply
  data_ack = 0x83,       // u16 next expected index (cumulative)
  data_nak = 0x84,       // u8 Status, u16 next expected index
  result = 0x85,         // Result
};

// Why something was refused or failed. Stable numbers: they are on the wire.
enum class Status : std::uint8_t {
  ok = 0,
  too_large = 1,      // START: image larger than the staging area allows
  bad_params = 2,     // START: size, packet size and packet count do not agree
  busy = 3,           // START: a verified download waits for its reset, or another image's
                      // download is in progress (ABORT it first)
  invalid_image = 4,  // START or DATA 0: the vector table does not fit this device's app area
  no_session = 5,     // DATA without an accepted START
  out_of_order = 6,   // DATA beyond the next expected index (one was lost)
  bad_length = 7,     // DATA whose length is not the packet size (or the last one's remainder)
  flash_error = 8,    // erase/program/verify failed; the server re-sends from `next`
  crc_mismatch = 9,   // RESULT: the stored image's CRC-32 is not the one START announced
  bad_frame = 10,     // a frame arrived corrupted; the server re-sends from `next`
  unknown_message = 11,
};

enum class Role : std::uint8_t { application = 1, recovery = 2 };

// A report the device keeps until the server acknowledges it (REPORT_ACK).
enum class Report : std::uint8_t {
  none = 0,
  download_ok = 1,  // "OTA-START" is set: the device is about to install (reset pending)
  upgrade_ok = 2,   // "OTA-SUCCESS" is set: the bootloader installed the running application
  install_failed = 3,  // recovery only: "OTA-START" is set but the bootloader's install failed
                       // (a flash operation); START is accepted again and the next reset retries
};

struct Hello {
  std::uint8_t protocol = kProtocolVersion;
  LayoutId layout = LayoutId::internal;
  Role role = Role::application;
  std::uint8_t window = 1;            // DATA frames the server may have in flight
  std::uint8_t uid[12] = {};          // the STM32's 96-bit unique ID
  std::uint32_t app_version = 0;      // version of the running application (0: none/recovery)
  std::uint32_t staging_capacity = 0; // largest image accepted (26 KB / 56 KB)
  std::uint16_t max_chunk = kMaxChunk;
  Report report = Report::none;
  std::uint8_t reserved = 0;
  std::uint32_t session_crc = 0;      // image CRC-32 of an interrupted download, or 0
  std::uint16_t session_next = kNoSession;  // where that download would resume
  std::uint16_t reserved2 = 0;
  std::uint32_t product = 0;          // the running application's product id (app_info.hpp), 0: none
  static constexpr std::size_t kSize = 40;
  // A version-1 HELLO, without `product`: decode() takes it, with product 0.
  static constexpr std::size_t kBaseSize = 34;
};

struct Start {
  std::uint32_t image_size = 0;
  std::uint32_t image_crc = 0;      // CRC-32 of the whole image (the spec's total checksum)
  std::uint32_t image_version = 0;
  std::uint16_t packet_size = 0;    // bytes per DATA frame; the last one carries the remainder
  std::uint16_t packet_count = 0;
  std::uint32_t initial_sp = 0;     // the image's first two vector table words, so that a wrong
  std::uint32_t reset_vector = 0;   // image is refused before anything is erased
  static constexpr std::size_t kSize = 24;
};

struct StartReply {
  Status status = Status::ok;
  std::uint16_t next = 0;  // first DATA index wanted (> 0 when a download resumes)
  static constexpr std::size_t kSize = 3;
};

struct Nak {
  Status status = Status::ok;
  std::uint16_t next = 0;
  static constexpr std::size_t kSize = 3;
};

struct Result {
  Status status = Status::ok;   // ok: download verified, "OTA-START" written, reset follows
  std::uint32_t crc = 0;        // CRC-32 the device computed over what it stored
  static constexpr std::size_t kSize = 5;
};

// Hello and Start are laid out on the wire exactly as these structs are in memory on a
// little-endian machine (every field at its natural alignment), so they are copied whole.
static_assert(std::endian::native == std::endian::little, "wire structs are copied whole");
static_assert(offsetof(Hello, uid) == 4 && offsetof(Hello, app_version) == 16 &&
              offsetof(Hello, max_chunk) == 24 && offsetof(Hello, report) == 26 &&
              offsetof(Hello, session_crc) == 28 && offsetof(Hello, session_next) == 32 &&
              offsetof(Hello, product) == 36 && sizeof(Hello) == Hello::kSize);
static_assert(offsetof(Start, packet_size) == 12 && offsetof(Start, initial_sp) == 16 &&
              sizeof(Start) == Start::kSize);

// Serialisation: encode_* writes exactly kSize bytes; decode_* checks the length exactly.
void encode(const Hello& m, std::uint8_t* out);
void encode(const Start& m, std::uint8_t* out);
void encode(const StartReply& m, std::uint8_t* out);
void encode(const Nak& m, std::uint8_t* out);
void encode(const Result& m, std::uint8_t* out);
bool decode(const Frame& f, Hello& m);
bool decode(const Frame& f, Start& m);
bool decode(const Frame& f, StartReply& m);
bool decode(const Frame& f, Nak& m);
bool decode(const Frame& f, Result& m);

// Number of packets an image of `size` bytes takes with `packet_size`-byte packets.
constexpr std::uint32_t packet_count_for(std::uint32_t size, std::uint32_t packet_size) {
  return packet_size == 0 ? 0 : (size + packet_size - 1) / packet_size;
}

const char* to_string(Status s);

}  // namespace ota

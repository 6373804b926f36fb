#include "ota/protocol.hpp"

#include <cstring>

#include "ota/bytes.hpp"

namespace ota {

void encode(const Hello& m, std::uint8_t* o) {
  std::memcpy(o, &m, Hello::kSize);
  o[27] = 0;  // reserved
  o[34] = o[35] = 0;
}

bool decode(const Frame& f, Hello& m) {
  // At least kBaseSize: fields were appended (product), and a later release may append more.
  if (f.type != static_cast<std::uint8_t>(MsgType::hello) || f.len < Hello::kBaseSize) return false;
  m = Hello{};  // product 0 unless all of it came
  std::memcpy(static_cast<void*>(&m), f.payload, f.len < Hello::kSize ? Hello::kBaseSize : Hello::kSize);
  return true;
}

void encode(const Start& m, std::uint8_t* o) { std::memcpy(o, &m, Start::kSize); }

bool decode(const Frame& f, Start& m) {
  if (f.type != static_cast<std::uint8_t>(MsgType::start) || f.len != Start::kSize) return false;
  std::memcpy(static_cast<void*>(&m), f.payload, Start::kSize);
  return true;
}

namespace {
void encode_status_next(Status s, std::uint16_t next, std::uint8_t* o) {
  o[0] = static_cast<std::uint8_t>(s);
  put_u16(o + 1, next);
}
bool decode_status_next(const Frame& f, MsgType t, Status& s, std::uint16_t& next) {
  if (f.type != static_cast<std::uint8_t>(t) || f.len != 3) return false;
  s = static_cast<Status>(f.payload[0]);
  next = get_u16(f.payload + 1);
  return true;
}
}  // namespace

void encode(const StartReply& m, std::uint8_t* o) { encode_status_next(m.status, m.next, o); }
void encode(const Nak& m, std::uint8_t* o) { encode_status_next(m.status, m.next, o); }
bool decode(const Frame& f, StartReply& m) {
  return decode_status_next(f, MsgType::start_reply, m.status, m.next);
}
bool decode(const Frame& f, Nak& m) {
  return decode_status_next(f, MsgType::data_nak, m.status, m.next);
}

void encode(const Result& m, std::uint8_t* o) {
  o[0] = static_cast<std::uint8_t>(m.status);
  put_u32(o + 1, m.crc);
}

bool decode(const Frame& f, Result& m) {
  if (f.type != static_cast<std::uint8_t>(MsgType::result) || f.len != Result::kSize) return false;
  m.status = static_cast<Status>(f.payload[0]);
  m.crc = get_u32(f.payload + 1);
  return true;
}

const char* to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::too_large: return "image too large for the staging area";
    case Status::bad_params: return "inconsistent image parameters";
    case Status::busy: return "busy: an update waits for its reset";
    case Status::invalid_image: return "not a valid application for this device";
    case Status::no_session: return "no download in progress";
    case Status::out_of_order: return "packet out of order";
    case Status::bad_length: return "packet of the wrong length";
    case Status::flash_error: return "flash error";
    case Status::crc_mismatch: return "total checksum mismatch";
    case Status::bad_frame: return "corrupted frame";
    case Status::unknown_message: return "unknown message";
  }
  return "unknown status";
}

}  // namespace ota

#include "ota/protocol.hpp"

#include "ota/bytes.hpp"

namespace ota {

void encode(const Hello& m, std::uint8_t* o) {
  o[0] = m.protocol;
  o[1] = static_cast<std::uint8_t>(m.layout);
  o[2] = static_cast<std::uint8_t>(m.role);
  o[3] = m.window;
  for (int i = 0; i < 12; ++i) o[4 + i] = m.uid[i];
  put_u32(o + 16, m.app_version);
  put_u32(o + 20, m.staging_capacity);
  put_u16(o + 24, m.max_chunk);
  o[26] = static_cast<std::uint8_t>(m.report);
  o[27] = 0;
  put_u32(o + 28, m.session_crc);
  put_u16(o + 32, m.session_next);
}

bool decode(const Frame& f, Hello& m) {
  // At least kSize: a later protocol version may append fields; the version byte tells.
  if (f.type != static_cast<std::uint8_t>(MsgType::hello) || f.len < Hello::kSize) return false;
  const std::uint8_t* p = f.payload;
  m.protocol = p[0];
  m.layout = static_cast<LayoutId>(p[1]);
  m.role = static_cast<Role>(p[2]);
  m.window = p[3];
  for (int i = 0; i < 12; ++i) m.uid[i] = p[4 + i];
  m.app_version = get_u32(p + 16);
  m.staging_capacity = get_u32(p + 20);
  m.max_chunk = get_u16(p + 24);
  m.report = static_cast<Report>(p[26]);
  m.session_crc = get_u32(p + 28);
  m.session_next = get_u16(p + 32);
  return true;
}

void encode(const Start& m, std::uint8_t* o) {
  put_u32(o + 0, m.image_size);
  put_u32(o + 4, m.image_crc);
  put_u32(o + 8, m.image_version);
  put_u16(o + 12, m.packet_size);
  put_u16(o + 14, m.packet_count);
  put_u32(o + 16, m.initial_sp);
  put_u32(o + 20, m.reset_vector);
}

bool decode(const Frame& f, Start& m) {
  if (f.type != static_cast<std::uint8_t>(MsgType::start) || f.len != Start::kSize) return false;
  const std::uint8_t* p = f.payload;
  m.image_size = get_u32(p + 0);
  m.image_crc = get_u32(p + 4);
  m.image_version = get_u32(p + 8);
  m.packet_size = get_u16(p + 12);
  m.packet_count = get_u16(p + 14);
  m.initial_sp = get_u32(p + 16);
  m.reset_vector = get_u32(p + 20);
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

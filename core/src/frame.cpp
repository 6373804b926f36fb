#include "ota/frame.hpp"

#include "ota/bytes.hpp"
#include "ota/crc.hpp"

namespace ota {

namespace {

// COBS encoder writing into a bounded buffer; `ok` turns false on overflow.
struct CobsWriter {
  std::uint8_t* out;
  std::size_t cap;
  std::size_t pos = 1;      // next free byte; out[0] is the first code byte
  std::size_t code_at = 0;  // where the current block's code byte goes
  std::uint8_t code = 1;
  bool ok = true;

  void set(std::size_t at, std::uint8_t b) {
    if (at < cap) out[at] = b;
    else ok = false;
  }
  void close_block() {
    set(code_at, code);
    code_at = pos++;
    code = 1;
  }
  void put(const std::uint8_t* p, std::size_t n) {
    while (n--) {
      const std::uint8_t b = *p++;
      if (b != 0) {
        set(pos++, b);
        ++code;
      }
      if (b == 0 || code == 0xFF) close_block();  // a zero, or a full block of 254 bytes
    }
  }
  std::size_t finish() {
    set(code_at, code);
    set(pos++, kFrameDelimiter);
    return ok ? pos : 0;
  }
};

}  // namespace

std::size_t encode_frame(std::uint8_t type, const std::uint8_t* payload, std::size_t len,
                         std::uint8_t* out, std::size_t cap) {
  if (cap == 0) return 0;
  std::uint16_t crc = crc16_ccitt(&type, 1);
  crc = crc16_ccitt(payload, len, crc);
  const std::uint8_t tail[2] = {static_cast<std::uint8_t>(crc), static_cast<std::uint8_t>(crc >> 8)};
  CobsWriter w{out, cap};
  w.put(&type, 1);
  w.put(payload, len);
  w.put(tail, 2);
  return w.finish();
}

void FrameDecoder::reset() {
  len_ = 0;
  block_left_ = 0;
  code_ = 0;
  overflow_ = false;
}

FrameDecoder::Event FrameDecoder::feed(std::uint8_t byte) {
  if (byte == kFrameDelimiter) {
    const bool empty = code_ == 0;
    const bool truncated = block_left_ != 0;
    const bool overflow = overflow_;
    const std::size_t n = len_;
    reset();
    if (empty) return Event::none;  // idle delimiters are allowed
    if (overflow) error_ = FrameError::too_long;
    else if (truncated) error_ = FrameError::bad_cobs;
    else if (n < kFrameOverhead) error_ = FrameError::too_short;
    else if (crc16_ccitt(buf_, n - 2) != get_u16(buf_ + n - 2))
      error_ = FrameError::bad_crc;
    else {
      len_ = n;  // keep the frame readable until the next byte
      error_ = FrameError::none;
      return Event::frame;
    }
    return Event::error;
  }
  if (len_ != 0 && code_ == 0) len_ = 0;  // a frame was returned: start a new one
  if (overflow_) return Event::none;
  if (block_left_ == 0) {  // a code byte
    const bool zero = code_ != 0 && code_ != 0xFF;  // the zero the previous block stood for
    code_ = byte;
    block_left_ = static_cast<std::uint8_t>(byte - 1);
    if (!zero) return Event::none;
    byte = 0;
  } else {
    --block_left_;
  }
  if (len_ < cap_) buf_[len_++] = byte;  // put
  else overflow_ = true;
  return Event::none;
}

}  // namespace ota

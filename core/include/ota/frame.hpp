// Framing: how messages travel over any byte stream (a UART, TCP through a modem).
//
//   on the wire:  COBS( type | payload... | crc16_lo | crc16_hi ) 0x00
//
// COBS (Consistent Overhead Byte Stuffing) removes every 0x00 from the frame, so 0x00 marks frame
// boundaries unambiguously: after garbage, a lost byte or a cut link the receiver is back in step at
// the next 0x00. The CRC-16/CCITT-FALSE covers type and payload. Overhead: 1 byte per 254, plus
// type, CRC and delimiter. Senders may put an extra 0x00 before a frame to flush a receiver's
// partial input; empty frames are ignored. See docs/protocol.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ota {

inline constexpr std::uint8_t kFrameDelimiter = 0x00;
inline constexpr std::size_t kFrameOverhead = 3;  // type + CRC-16

// Largest encoded size (with the trailing delimiter) of a frame carrying `payload` bytes.
constexpr std::size_t encoded_size_max(std::size_t payload) {
  const std::size_t body = payload + kFrameOverhead;
  return body + body / 254 + 1 + 1;
}

// Encodes one frame into out[0..cap). Returns the number of bytes written (ending with the
// delimiter), or 0 if cap is too small.
std::size_t encode_frame(std::uint8_t type, const std::uint8_t* payload, std::size_t len,
                         std::uint8_t* out, std::size_t cap);

struct Frame {
  std::uint8_t type;
  const std::uint8_t* payload;  // valid until the next byte is fed to the decoder
  std::size_t len;
};

enum class FrameError : std::uint8_t {
  none = 0,
  bad_crc,    // the CRC does not match: corrupted or truncated in the middle
  too_long,   // more bytes than the receiver's buffer before a delimiter
  too_short,  // fewer than type + CRC bytes
  bad_cobs,   // a COBS block runs past the delimiter: bytes were lost
};

// Streaming decoder over a caller-provided buffer (capacity = largest type+payload+CRC accepted).
class FrameDecoder {
 public:
  enum class Event : std::uint8_t { none, frame, error };

  FrameDecoder(std::uint8_t* buffer, std::size_t capacity) : buf_(buffer), cap_(capacity) {}
  // It points into its buffer (a FrameDecoderBuffer's own storage): a copy would decode into
  // the original's, dead once the original is (a client returned from a function by value).
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Feeds one byte. On Event::frame, frame() is valid; on Event::error, error() says why.
  Event feed(std::uint8_t byte);
  Frame frame() const { return Frame{buf_[0], buf_ + 1, len_ - kFrameOverhead}; }
  FrameError error() const { return error_; }
  void reset();

 private:
  std::uint8_t* buf_;
  std::size_t cap_;
  std::size_t len_ = 0;
  std::uint8_t block_left_ = 0;  // data bytes left in the current COBS block
  std::uint8_t code_ = 0;        // code of the current block (0: none yet)
  bool overflow_ = false;
  FrameError error_ = FrameError::none;
};

template <std::size_t MaxPayload>
class FrameDecoderBuffer : public FrameDecoder {
 public:
  FrameDecoderBuffer() : FrameDecoder(storage_, sizeof storage_) {}

 private:
  std::uint8_t storage_[MaxPayload + kFrameOverhead];
};

}  // namespace ota

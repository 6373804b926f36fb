// The bootloader's listening window: a device whose application crashes right after the jump
// (before its update client runs) would otherwise reset and crash forever. After every reset the
// bootloader feeds what the UART received to a RecoverWatch for kRecoverWindowMs (except on the
// boot that installed the application: its first start is not held back); a server asked
// to recover a device (`ota push --recover`) keeps sending RECOVER, and one that lands in the
// window keeps the bootloader in recovery mode. Normal updates never send RECOVER.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/frame.hpp"
#include "ota/protocol.hpp"

namespace ota {

class RecoverWatch {
 public:
  // True once a whole, valid RECOVER frame has arrived.
  bool feed(const std::uint8_t* bytes, std::size_t len) {
    for (std::size_t i = 0; i < len && !seen_; ++i)
      if (decoder_.feed(bytes[i]) == FrameDecoder::Event::frame &&
          decoder_.frame().type == static_cast<std::uint8_t>(MsgType::recover))
        seen_ = true;
    return seen_;
  }

 private:
  FrameDecoderBuffer<8> decoder_;
  bool seen_ = false;
};

}  // namespace ota

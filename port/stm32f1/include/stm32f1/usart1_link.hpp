// USART1 as the OTA client's link (ota::Link): frames are sent by polled transmission; reception
// is the DMA ring of usart1.hpp, read by the main loop and pushed into UpdateClient::receive().
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/frame.hpp"
#include "ota/link.hpp"
#include "ota/protocol.hpp"
#include "stm32f1/usart1.hpp"

namespace stm32f1 {

class Usart1Link final : public ota::Link {
 public:
  void send(const std::uint8_t* bytes, std::size_t len) override { usart1::write(bytes, len); }
};

// DATA frames the server may keep in flight (ota::DeviceInfo::window): as many whole frames as
// the RX ring holds, so that nothing is lost while the CPU is stalled by flash operations. The
// 6 KB ring holds 23: 6 KB in flight, against the 3.5 KB a 300 ms round trip at 115200 baud needs
// to keep the line busy, plus the device's own delays (page erases, programming, the ACK's way).
inline constexpr std::size_t kLargestFrame = ota::encoded_size_max(2 + ota::kMaxChunk);
inline constexpr std::uint8_t kLinkWindow = static_cast<std::uint8_t>(usart1::kRxRing / kLargestFrame);
static_assert(kLinkWindow >= 1, "the RX ring must hold at least one whole DATA frame");

}  // namespace stm32f1

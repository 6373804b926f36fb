// USART1 as the OTA client's link (ota::Link): frames are sent by polled transmission; reception
// is the DMA ring of usart1.hpp, read by the main loop and pushed into UpdateClient::receive().
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/app_info.hpp"
#include "ota/client.hpp"
#include "ota/frame.hpp"
#include "ota/link.hpp"
#include "ota/protocol.hpp"
#include "stm32f1/cpu.hpp"
#include "stm32f1/usart1.hpp"

namespace stm32f1 {

class Usart1Link final : public ota::Link {
 public:
  void send(const std::uint8_t* bytes, std::size_t len) override { usart1::write(bytes, len); }
};

// Hands the OTA client what the receive ring held when called: all of it (a main loop that takes
// one buffer per pass falls behind the server once the application's own work is slow, and the
// server's re-sends overrun the ring) and no more (bytes keep coming while the client stores
// them: a loop that reads until the ring is empty may not come round to feed the watchdog for a
// whole download). Stops once the client asks for the reset. Returns the bytes there were: 0 when
// nothing came (the main loop may sleep).
inline std::size_t receive_pending(ota::UpdateClient& client) {
  const std::size_t pending = usart1::available();
  std::uint8_t buf[64];
  for (std::size_t left = pending; left > 0 && !client.reset_requested();) {
    const std::size_t n = usart1::read(buf, left < sizeof buf ? left : sizeof buf);
    if (n == 0) break;
    client.receive(buf, n);
    left -= n;
  }
  return pending;
}

// DATA frames the server may keep in flight (ota::DeviceInfo::window): as many whole frames as
// the RX ring holds short of full (a ring exactly full reads as empty: usart1::available()), so
// that nothing is lost while the CPU is stalled by flash operations. The 6 KB ring holds 23: 6 KB
// in flight, against the 3.5 KB a 300 ms round trip at 115200 baud needs to keep the line busy,
// plus the device's own delays (page erases, programming, the ACK's way).
inline constexpr std::size_t kLargestFrame = ota::encoded_size_max(2 + ota::kMaxChunk);
inline constexpr std::uint8_t kLinkWindow = static_cast<std::uint8_t>((usart1::kRxRing - 1) / kLargestFrame);
static_assert(kLinkWindow >= 1, "the RX ring must hold one whole DATA frame and a byte more");
static_assert(kLinkWindow * kLargestFrame < usart1::kRxRing, "a full window must leave the ring short of full");

// What an application on this board says in HELLO, all of it in one call so that none is
// forgotten: its app info record's version and product (OTA_APP_INFO: the very numbers the
// server reads from the image), the window this ring holds, the chip's unique ID.
//     ota::UpdateClient client(map, link, stm32f1::application_info(ota_app_info));
inline ota::DeviceInfo application_info(const ota::AppInfo& app) {
  ota::DeviceInfo info;
  info.role = ota::Role::application;
  info.app_version = app.version;
  info.product = app.product;
  info.window = kLinkWindow;
  info.link_baud = usart1::kBaud;
  cpu::uid(info.uid);
  return info;
}

}  // namespace stm32f1

// USART1 on PA9 (TX) / PA10 (RX), 8N1. Reception runs by circular DMA (DMA1 channel 5, RM0008
// §13.3.7 table 78) into a RAM ring, so bytes keep arriving while the CPU is stalled by a flash
// erase or program; transmission is polled.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stm32f1::usart1 {

// Ring size: 6 KB holds ~530 ms of back-to-back bytes at 115200 baud (a page erase stalls the
// CPU <= 40 ms) and sets the OTA client's window (usart1_link.hpp): 23 frames of 264 bytes,
// enough to keep a link with 150 ms one-way latency busy while the device erases and programs.
// The CMake cache variable OTA_USART1_RX_RING sets another size (less RAM, a smaller window).
#ifndef OTA_USART1_RX_RING
#define OTA_USART1_RX_RING 6144
#endif
inline constexpr std::size_t kRxRing = OTA_USART1_RX_RING;
static_assert(kRxRing <= 65535, "the DMA counts the ring in 16 bits (CNDTR)");

// The link's rate, 8N1: the bootloader's and the applications'. The CMake cache variable
// OTA_USART1_BAUD sets another (the adapter's or modem's on the other end).
#ifndef OTA_USART1_BAUD
#define OTA_USART1_BAUD 115200
#endif
inline constexpr std::uint32_t kBaud = OTA_USART1_BAUD;

// Starts USART1 at kBaud, the rate the image's app info names, and no other: an application that
// set its own would, installed, talk at a rate nothing on the other end understands, and with its
// watchdog fed no reset would bring the bootloader back to be reached.
void init(std::uint32_t pclk2_hz);
// Bytes received and not yet read. The ring cannot tell an overflow: after kRxRing + k bytes
// arrive unread, only the last k are seen (all kRxRing before them are lost, and exactly kRxRing
// reads as none). The OTA window keeps a server below that; a frame broken by it is re-sent.
std::size_t available();
std::size_t read(std::uint8_t* dst, std::size_t max);
void write(const std::uint8_t* src, std::size_t len);
void write(const char* text);
// A text line: `text`, "\r\n" and a 0x00. The link is also the OTA client's: the 0x00 makes the
// server's frame decoder drop the line at once (docs/protocol.md 1.3).
void write_line(const char* text);
void write_decimal(std::uint32_t n);  // "0" to "4294967295"
void flush();   // returns once the last byte has left the shift register
void deinit();  // stops the DMA and USART1 (before jumping to another image)

}  // namespace stm32f1::usart1

// Update images on the host: reading firmware from .bin, .hex or .elf, checking it against a
// layout, and the .ota file that `ota image` writes and `ota push` sends.
//
// .ota file: a 32-byte header, then the application binary exactly as it is stored at the
// layout's application address. Header fields, little-endian:
//   0  magic "OTAI"        4  format (1)          5  layout id (1 internal, 2 external)
//   6  reserved (0, u16)   8  version (u32)       12 size of the binary (u32)
//   16 CRC-32 of the binary (u32)                 20 load address (u32)
//   24 reserved (0, u32)   28 CRC-32 of bytes 0-27 (u32)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ota/app_info.hpp"
#include "ota/layout.hpp"

namespace ota::host {

struct Image {
  LayoutId layout = LayoutId::internal;
  std::uint32_t version = 0;
  std::uint32_t load_address = 0;
  std::vector<std::uint8_t> bytes;
  std::uint32_t crc() const;
  // Its app info record, found where a device looks for it; none without one.
  std::optional<AppInfo> app_info() const;
  // The product and the link rate that record names (0: none).
  std::uint32_t product() const { return app_info().value_or(AppInfo{}).product; }
  std::uint32_t link_baud() const { return app_info().value_or(AppInfo{}).link_baud; }
};

// The result of a check or a load: empty error means success.
struct Error {
  std::string text;
  explicit operator bool() const { return !text.empty(); }
};

// Reads firmware from a .bin (taken to start at base), .hex (Intel HEX) or .elf (its loadable
// segments, by physical address) into one contiguous binary starting at `base`; the gaps are 0xFF.
Error read_firmware(const std::filesystem::path& file, std::uint32_t base, std::vector<std::uint8_t>& out);

// What makes an image unusable on a layout: larger than the image limit, a vector table that does
// not point into the application area, too short to hold one.
Error check_image(const Layout& layout, const std::vector<std::uint8_t>& bytes);

// Two app info records that disagree (a library that declares OTA_APP_INFO of its own): which
// one is the image's cannot be told.
Error check_app_info_records(const std::vector<std::uint8_t>& bytes);

std::vector<std::uint8_t> encode_ota_file(const Image& img);
// Also refuses a header that contradicts the image: a load address other than its layout's
// application address, a layout or version other than its app info's.
Error decode_ota_file(const std::vector<std::uint8_t>& file, Image& img);
Error load_ota_file(const std::filesystem::path& file, Image& img);
// load_ota_file, then check_image on the image's layout: what `ota push` and `ota serve` send (an
// image that could only be refused is not sent).
Error load_usable_ota_file(const std::filesystem::path& file, Image& img);
Error save_file(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes);
// The most any input file is read: an image is at most 56 KB, an .elf with its debug information
// a few MB. More is no firmware (a disk image, /dev/zero): refused unread.
inline constexpr std::size_t kMaxFileBytes = 64u << 20;
// Reads a whole file of at most `max` bytes (more: an error, the file not read whole).
Error load_file(const std::filesystem::path& file, std::vector<std::uint8_t>& bytes, std::size_t max = kMaxFileBytes);

}  // namespace ota::host

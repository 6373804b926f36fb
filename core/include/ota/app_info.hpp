// What an application image says about itself: the layout it was built for and its version. The
// host tool reads it from the image (`ota image build` needs no -l/-v then, and refuses values
// that contradict it), and the application reports the same version in HELLO, so the image file,
// the device and the server cannot disagree about which version is which.
//
// An application declares it once, at namespace scope, in an image built for one layout:
//     OTA_APP_INFO(3);                         // version 3
//     info.app_version = ota_app_info.version; // the same number in HELLO
// The record lands in the .ota_app_info section (kept by the linker script, just after the vector
// table); the host finds it by its magic and check word anywhere in the image.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/layout.hpp"

namespace ota {

struct AppInfo {
  static constexpr std::uint32_t kMagic0 = 0x2D41544F;  // "OTA-"
  static constexpr std::uint32_t kMagic1 = 0x4F464E49;  // "INFO"
  static constexpr std::size_t kSize = 20;

  std::uint32_t magic0 = kMagic0;
  std::uint32_t magic1 = kMagic1;
  std::uint32_t version = 0;
  std::uint32_t layout = 0;  // LayoutId
  std::uint32_t check = 0;   // check_of(version, layout)

  static constexpr std::uint32_t check_of(std::uint32_t version, std::uint32_t layout) {
    return ~(version ^ (layout * 0x9E3779B9u) ^ kMagic1);
  }
  static constexpr AppInfo make(LayoutId layout, std::uint32_t version) {
    const auto l = static_cast<std::uint32_t>(layout);
    return AppInfo{kMagic0, kMagic1, version, l, check_of(version, l)};
  }
};
static_assert(sizeof(AppInfo) == AppInfo::kSize);

// Finds the record in an image (4-byte aligned, magic and check word right). False if none.
bool find_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out);

}  // namespace ota

#ifdef OTA_FIXED_LAYOUT
#define OTA_APP_INFO(version)                                                    \
  [[gnu::used, gnu::section(".ota_app_info")]] constexpr ota::AppInfo ota_app_info = \
      ota::AppInfo::make(OTA_FIXED_LAYOUT.id, (version))
#else
#define OTA_APP_INFO(version)                                                                     \
  static_assert((version) < 0 && false, "OTA_APP_INFO needs the image's layout: link the image " \
                                        "against ota_board_internal or ota_board_external")
#endif

// What an application image says about itself: the layout it was built for, its version, and
// the product it belongs to. The host tool reads it from the image (`ota image build` needs no
// -l/-v then, and refuses values that contradict it), and the application reports the same
// version and product in HELLO, so the image file, the device and the server cannot disagree
// about which version is which, and an image of one product is not installed on another.
//
// An application declares it once, at namespace scope, in an image built for one layout:
//     OTA_APP_INFO(3, "weather-station");      // version 3 of the product "weather-station"
//     info.app_version = ota_app_info.version; // the same number in HELLO
//     info.product = ota_app_info.product;     // and the product (a 32-bit hash of its name)
// OTA_APP_INFO(3) names no product (0): its images go to, and take, any product.
// The record lands in the .ota_app_info section (kept by the linker script, just after the vector
// table); the host finds it by its magic and check word anywhere in the image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ota/layout.hpp"

namespace ota {

struct AppInfo {
  static constexpr std::uint32_t kMagic0 = 0x2D41544F;  // "OTA-"
  static constexpr std::uint32_t kMagic1 = 0x4F464E49;  // "INFO"
  static constexpr std::uint32_t kRateMagic = 0x45544152;  // "RATE"
  static constexpr std::uint32_t kEndMagic = 0x2E444E45;   // "END.": the image end's record
  static constexpr std::size_t kSize = 32;

  // The first 24 bytes are the record a reader before the link rate takes whole (a bootloader in
  // the field is never updated): the rate and its own check word follow, where it looks no more.
  std::uint32_t magic0 = kMagic0;
  std::uint32_t magic1 = kMagic1;
  std::uint32_t version = 0;
  std::uint32_t layout = 0;      // LayoutId
  std::uint32_t product = 0;     // product_id(name), 0: none named
  std::uint32_t check = 0;       // check_of(version, layout, product)
  std::uint32_t link_baud = 0;   // the rate of the link its update client talks over, 0: none named
  std::uint32_t rate_check = 0;  // rate_check_of(version, layout, product, link_baud)

  static constexpr std::uint32_t check_of(std::uint32_t version, std::uint32_t layout, std::uint32_t product) {
    return ~(version ^ (layout * 0x9E3779B9u) ^ (product * 0x85EBCA6Bu) ^ kMagic1);
  }
  static constexpr std::uint32_t rate_check_of(std::uint32_t version, std::uint32_t layout, std::uint32_t product,
                                               std::uint32_t link_baud) {
    return check_of(version, layout, product) ^ (link_baud * 0xC2B2AE35u) ^ kRateMagic;
  }
  // FNV-1a of the name; never 0, which means "no product" (an empty name), nor kProductHeld.
  static constexpr std::uint32_t product_id(std::string_view name) {
    if (name.empty()) return 0;
    std::uint32_t h = 0x811C9DC5u;
    for (const char c : name) h = (h ^ static_cast<std::uint8_t>(c)) * 0x01000193u;
    return h == 0 ? 1 : h == 0xFFFFFFFFu ? 0xFFFFFFFEu : h;
  }
  static constexpr AppInfo make(LayoutId layout, std::uint32_t version, std::string_view product = {}) {
    const auto l = static_cast<std::uint32_t>(layout);
    const std::uint32_t p = product_id(product);
    return AppInfo{kMagic0, kMagic1, version, l, p, check_of(version, l, p), 0, rate_check_of(version, l, p, 0)};
  }
  // The same record naming the link's rate: an update client on a link at another rate refuses
  // the image (installed, it would talk at a rate its adapter or modem does not).
  constexpr AppInfo at_link_baud(std::uint32_t baud) const {
    return AppInfo{kMagic0, kMagic1, version, layout, product, check, baud, rate_check_of(version, layout, product, baud)};
  }
};
// In a recovery HELLO: the bootloader holds a valid application whose app info it cannot find.
inline constexpr std::uint32_t kProductHeld = 0xFFFFFFFFu;

// An image of product `image` may replace an application of product `running`: the same
// product, or either names none (kProductHeld matches only an image that names none).
constexpr bool products_match(std::uint32_t image, std::uint32_t running) {
  return image == 0 || running == 0 || image == running;
}
static_assert(sizeof(AppInfo) == AppInfo::kSize);

// A device looks for the record among the first kAppInfoWindow bytes of an image it received (a
// record that starts in its first 512 bytes); the host tools look at the same bytes.
inline constexpr std::uint32_t kAppInfoWindow = 512 + AppInfo::kSize;

// Finds the record in an image (4-byte aligned, magic and check word right). False if none. Also
// the records before it: 24 bytes, without the rate and its check word (names none), and the
// first release's 20 bytes, without a product either (its check word where `product` is now).
bool find_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out);
// The same search, returning the record: no AppInfo to construct beforehand (in a firmware image
// its defaults are a copy of 24 bytes of flash at every call site).
// Only records that start in the first `starts` bytes count (a scan in pieces: one that starts
// later is read whole from the next piece).
std::optional<AppInfo> app_info_in(const std::uint8_t* image, std::size_t len, std::size_t starts = ~std::size_t{0});
// The record as a device sees it in an image of `len` bytes: within its first kAppInfoWindow.
inline bool find_image_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out) {
  const std::optional<AppInfo> found =
      app_info_in(image, len < kAppInfoWindow ? len : kAppInfoWindow, kAppInfoWindow - AppInfo::kSize);
  if (found) out = *found;
  return found.has_value();
}

}  // namespace ota

namespace ota {

// Reached only by an OTA_APP_INFO version below 0 or above 4294967295: its name is the error.
inline void OTA_APP_INFO_version_must_be_from_0_to_4294967295() {}

// OTA_APP_INFO's record. The version must be a whole number that fits 32 bits, or the build
// fails: 1.2 would be truncated to 1 (so would 1.3: every release "up to date" on devices that
// run 1), -1 would wrap to the highest version (no later release installed without --force).
// (An enumerator counts as the whole number it stands for.)
template <class Version>
consteval AppInfo app_info_record(LayoutId layout, Version version, std::string_view product = {}) {
  if constexpr (std::is_enum_v<Version>) {
    return app_info_record(layout, static_cast<std::underlying_type_t<Version>>(version), product);
  } else {
    static_assert(std::is_integral_v<Version> && !std::is_same_v<Version, bool>,
                  "OTA_APP_INFO: the version is a whole number (release 1.2 could be 102, or 1002)");
    if constexpr (std::is_integral_v<Version>)
      if (std::cmp_less(version, 0) || std::cmp_greater(version, 0xFFFFFFFFu))
        OTA_APP_INFO_version_must_be_from_0_to_4294967295();
    return AppInfo::make(layout, static_cast<std::uint32_t>(version), product);
  }
}

}  // namespace ota

// OTA_LINK_BAUD: the rate of the link the application's update client talks over, set by the port
// that owns the link (port/stm32f1: OTA_USART1_BAUD); 0 where none is fixed.
#ifndef OTA_LINK_BAUD
#define OTA_LINK_BAUD 0
#endif
// On the target, OTA_APP_INFO also leaves a second record, right after the first (sections.ld):
// "OTA-", "END." and the address of the first byte after the image, as the linker placed it
// (__image_end). The host tools refuse an image shorter than that: a .bin cut short by a copy or
// a download that stopped still has its vector table, app info and a CRC of its own, and
// installed it would leave a device that resets for ever. (Not in the AppInfo itself: an address
// is known at link time only, and the first record's fields are compile-time constants.)
#if defined(OTA_FIXED_LAYOUT) && defined(__arm__)
// Weak: a linker script of the user's own that defines no __image_end still links (the end then
// reads 0, and the host tools check no length).
extern "C" [[gnu::weak]] const char __image_end[];  // port/stm32f1/ld/sections.ld
namespace ota {
struct ImageEndRecord {
  std::uint32_t magic0, magic1;
  const char* end;
};
static_assert(sizeof(ImageEndRecord) == 12);
}  // namespace ota
#define OTA_IMAGE_END_RECORD                                                               \
  [[gnu::used, gnu::section(".ota_app_info.end")]] constexpr ota::ImageEndRecord ota_image_end{ \
      ota::AppInfo::kMagic0, ota::AppInfo::kEndMagic, __image_end};
#else
#define OTA_IMAGE_END_RECORD
#endif
#ifdef OTA_FIXED_LAYOUT
#define OTA_APP_INFO(...)                                                        \
  OTA_IMAGE_END_RECORD                                                           \
  [[gnu::used, gnu::section(".ota_app_info")]] constexpr ota::AppInfo ota_app_info = \
      ota::app_info_record(OTA_FIXED_LAYOUT.id, __VA_ARGS__).at_link_baud(OTA_LINK_BAUD)
#else
#define OTA_APP_INFO(...)                                                                      \
  static_assert(sizeof(#__VA_ARGS__) == 0, "OTA_APP_INFO needs the image's layout: link the image " \
                                         "against ota_board_internal or ota_board_external")
#endif

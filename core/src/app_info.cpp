#include "ota/app_info.hpp"

#include "ota/bytes.hpp"

namespace ota {

bool find_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out) {
  const std::optional<AppInfo> found = app_info_in(image, len);
  if (found) out = *found;
  return found.has_value();
}

std::optional<AppInfo> app_info_in(const std::uint8_t* image, std::size_t len) {
  // Before this record ("INFO"): 24 bytes, magic0, magic1, version, layout, product and the check
  // word check_of(version, layout, product) where `link_baud` is now; the first release's 20
  // bytes had that check word, check_of(version, layout, 0), where `product` is.
  constexpr std::size_t kFirstReleaseSize = 20;
  for (std::size_t off = 0; off + kFirstReleaseSize <= len; off += 4) {
    const std::uint8_t* p = image + off;
    const std::uint32_t magic1 = get_u32(p + 4);
    if (get_u32(p) != AppInfo::kMagic0) continue;
    const std::uint32_t version = get_u32(p + 8), layout = get_u32(p + 12), fifth = get_u32(p + 16);
    std::uint32_t product = fifth, baud = 0, check;
    if (magic1 == AppInfo::kMagic1) {
      if (off + AppInfo::kSize > len) continue;
      baud = get_u32(p + 20);
      check = get_u32(p + 24);
    } else if (magic1 != AppInfo::kMagic1Before) {
      continue;
    } else if (off + 24 <= len && get_u32(p + 20) == AppInfo::check_of(version, layout, fifth)) {
      check = get_u32(p + 20);
    } else {  // the first release's 20 bytes
      product = 0;
      check = fifth;
    }
    if (check == AppInfo::check_of(version, layout, product, baud))
      return AppInfo{AppInfo::kMagic0, AppInfo::kMagic1, version, layout, product, baud, check};
  }
  return std::nullopt;
}

}  // namespace ota

#include "ota/app_info.hpp"

#include "ota/bytes.hpp"

namespace ota {

bool find_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out) {
  const std::optional<AppInfo> found = app_info_in(image, len);
  if (found) out = *found;
  return found.has_value();
}

std::optional<AppInfo> app_info_in(const std::uint8_t* image, std::size_t len, std::size_t starts) {
  // The first release's record: magic0, magic1, version, layout, then its check word,
  // check_of(version, layout, 0), where a record now has its product. The link rate and its check
  // word after the first 24 bytes are read only when both are there and agree.
  constexpr std::size_t kFirstReleaseSize = 20;
  for (std::size_t off = 0; off + kFirstReleaseSize <= len && off < starts; off += 4) {
    const std::uint8_t* p = image + off;
    if (get_u32(p) != AppInfo::kMagic0 || get_u32(p + 4) != AppInfo::kMagic1) continue;
    const std::uint32_t version = get_u32(p + 8), layout = get_u32(p + 12), fifth = get_u32(p + 16);
    std::uint32_t product = 0, baud = 0;
    if (off + 24 <= len && get_u32(p + 20) == AppInfo::check_of(version, layout, fifth)) {
      product = fifth;
      if (off + AppInfo::kSize <= len &&
          get_u32(p + 28) == AppInfo::rate_check_of(version, layout, product, get_u32(p + 24)))
        baud = get_u32(p + 24);
    } else if (fifth != AppInfo::check_of(version, layout, 0)) {
      continue;
    }
    return AppInfo{AppInfo::kMagic0, AppInfo::kMagic1, version, layout, product, AppInfo::check_of(version, layout, product),
                   baud, AppInfo::rate_check_of(version, layout, product, baud)};
  }
  return std::nullopt;
}

}  // namespace ota

#include "ota/app_info.hpp"

#include "ota/bytes.hpp"

namespace ota {

bool find_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out) {
  for (std::size_t off = 0; off + AppInfo::kSize <= len; off += 4) {
    const std::uint8_t* p = image + off;
    if (get_u32(p) != AppInfo::kMagic0 || get_u32(p + 4) != AppInfo::kMagic1) continue;
    const std::uint32_t version = get_u32(p + 8), layout = get_u32(p + 12);
    if (get_u32(p + 16) != AppInfo::check_of(version, layout)) continue;
    out = AppInfo{AppInfo::kMagic0, AppInfo::kMagic1, version, layout, get_u32(p + 16)};
    return true;
  }
  return false;
}

}  // namespace ota

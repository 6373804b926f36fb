#include "ota/app_info.hpp"

#include <cstring>

namespace ota {

bool find_app_info(const std::uint8_t* image, std::size_t len, AppInfo& out) {
  for (std::size_t off = 0; off + AppInfo::kSize <= len; off += 4) {
    AppInfo a;
    std::memcpy(&a, image + off, sizeof a);  // the fields are little-endian u32s, as on both ends
    if (a.magic0 == AppInfo::kMagic0 && a.magic1 == AppInfo::kMagic1 && a.check == AppInfo::check_of(a.version, a.layout, a.product)) {
      out = a;
      return true;
    }
  }
  return false;
}

}  // namespace ota

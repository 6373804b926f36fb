#include "ota/flags.hpp"

#include "ota/bytes.hpp"
#include "ota/crc.hpp"

namespace ota {

namespace {

constexpr std::uint32_t kFlagBytes = 12;

// The two texts, padded with the erased value to the 12 bytes of the flag area.
constexpr std::uint8_t kStartText[kFlagBytes] = {'O', 'T', 'A', '-', 'S', 'T',
                                                 'A', 'R', 'T', 0xFF, 0xFF, 0xFF};
constexpr std::uint8_t kSuccessText[kFlagBytes] = {'O', 'T', 'A', '-', 'S', 'U',
                                                   'C', 'C', 'E', 'S', 'S', 0xFF};

}  // namespace

Flag FlagStore::read() const {
  std::uint8_t buf[kFlagBytes];
  if (!dev().read(map_.layout.flags.base, buf, kFlagBytes)) return Flag::torn;
  if (bytes_equal(buf, kStartText, kFlagBytes)) return Flag::start;
  if (bytes_equal(buf, kSuccessText, kFlagBytes)) return Flag::success;
  for (std::uint8_t b : buf)
    if (b != 0xFF) return Flag::torn;
  return Flag::none;
}

bool FlagStore::clear() {
  const std::uint32_t base = map_.layout.flags.base;
  if (is_erased(dev(), base, kFlagBytes)) return true;
  return dev().erase(base) && is_erased(dev(), base, kFlagBytes);
}

bool FlagStore::set(Flag f) {
  if (f == Flag::none) return clear();
  const std::uint8_t* text = f == Flag::start ? kStartText : kSuccessText;
  if (f != Flag::start && f != Flag::success) return false;
  if (read() == f) return true;
  if (!clear()) return false;
  const std::uint32_t base = map_.layout.flags.base;
  std::uint8_t back[kFlagBytes];
  return dev().write(base, text, kFlagBytes) && dev().read(base, back, kFlagBytes) &&
         bytes_equal(back, text, kFlagBytes);
}

bool Journal::read(JournalRecord& r) const {
  std::uint8_t b[kRecordSize];
  if (!dev().read(base() + kRecordOffset, b, kRecordSize)) return false;
  if (get_u32(b) != kMagic || get_u32(b + 20) != crc32(b, 20)) return false;
  r.image_size = get_u32(b + 4);
  r.image_crc = get_u32(b + 8);
  r.image_version = get_u32(b + 12);
  r.packet_size = get_u16(b + 16);
  r.packet_count = get_u16(b + 18);
  return true;
}

bool Journal::begin(const JournalRecord& r) {
  std::uint8_t b[kRecordSize];
  put_u32(b, kMagic);
  put_u32(b + 4, r.image_size);
  put_u32(b + 8, r.image_crc);
  put_u32(b + 12, r.image_version);
  put_u16(b + 16, r.packet_size);
  put_u16(b + 18, r.packet_count);
  put_u32(b + 20, crc32(b, 20));
  JournalRecord back;
  return dev().erase(base()) && dev().write(base() + kRecordOffset, b, kRecordSize) &&
         read(back) && back == r;
}

bool Journal::marker_set(std::uint32_t offset) const {
  std::uint8_t b[2];
  return dev().read(base() + offset, b, 2) && get_u16(b) != 0xFFFF;
}

bool Journal::set_marker(std::uint32_t offset) {
  static constexpr std::uint8_t kZero[2] = {0, 0};
  return dev().write(base() + offset, kZero, 2) && marker_set(offset);
}

std::uint32_t Journal::units_done() const {
  const std::uint32_t max_units = units_for(map_.layout.image_limit);
  std::uint32_t n = 0;
  while (n < max_units && marker_set(kUnitsOffset + 2 * n)) ++n;
  return n;
}

bool Journal::mark_unit_done(std::uint32_t unit) {
  return unit < units_for(map_.layout.image_limit) && set_marker(kUnitsOffset + 2 * unit);
}

bool Journal::installed() const { return marker_set(kInstalledOffset); }
bool Journal::mark_installed() { return set_marker(kInstalledOffset); }

bool Journal::clear() {
  const std::uint32_t size = map_.layout.staging_unit;
  if (is_erased(dev(), base(), size)) return true;
  return dev().erase(base()) && is_erased(dev(), base(), size);
}

}  // namespace ota

static_assert(ota::Journal::kUnitsOffset + 2 * (ota::kInternalLayout.image_limit / ota::kFlashPage) <=
                  ota::kInternalLayout.staging_unit,
              "journal markers fit the internal journal page");
static_assert(ota::Journal::kUnitsOffset + 2 * (ota::kExternalLayout.image_limit / ota::kW25qSector) <=
                  ota::kExternalLayout.staging_unit,
              "journal markers fit the external journal sector");

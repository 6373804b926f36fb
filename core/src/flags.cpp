#include "ota/flags.hpp"

#include <bit>
#include <cstddef>
#include <cstring>

#include "ota/bytes.hpp"
#include "ota/crc.hpp"

namespace ota {

namespace {

constexpr std::uint32_t kFlagBytes = 12;

// What bytes 0-11 of the flag area hold for each flag but torn, indexed by Flag: the texts padded
// with the erased value, and the erased area itself.
constexpr std::uint8_t kTexts[3][kFlagBytes] = {
    {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},  // none
    {'O', 'T', 'A', '-', 'S', 'T', 'A', 'R', 'T', 0xFF, 0xFF, 0xFF},           // start
    {'O', 'T', 'A', '-', 'S', 'U', 'C', 'C', 'E', 'S', 'S', 0xFF},             // success
};
static_assert(static_cast<int>(Flag::none) == 0 && static_cast<int>(Flag::start) == 1 &&
              static_cast<int>(Flag::success) == 2);

}  // namespace

Flag FlagStore::read() const {
  std::uint8_t buf[kFlagBytes];
  if (!dev().read(map_.layout.flags.base, buf, kFlagBytes)) return Flag::unknown;
  for (std::uint8_t f = 0; f < 3; ++f)
    if (bytes_equal(buf, kTexts[f], kFlagBytes)) return static_cast<Flag>(f);
  return Flag::torn;
}

bool FlagStore::clear() { return read() == Flag::none || dev().erase(map_.layout.flags.base); }

bool FlagStore::set(Flag f) {
  if (f == Flag::none) return clear();
  if (f != Flag::start && f != Flag::success) return false;
  return read() == f ||
         (clear() && dev().write(map_.layout.flags.base, kTexts[static_cast<int>(f)], kFlagBytes));
}

// Stored as magic, the record copied whole (16 bytes, little-endian), CRC-32 of the 20 before.
static_assert(sizeof(JournalRecord) == 16 && offsetof(JournalRecord, packet_size) == 12 &&
              std::endian::native == std::endian::little);

Found Journal::find(JournalRecord& r) const {
  std::uint8_t b[kRecordSize];
  if (!dev().read(base() + kRecordOffset, b, kRecordSize)) return Found::unknown;
  if (get_u32(b) != kMagic || get_u32(b + 20) != crc32(b, 20)) return Found::no;
  std::memcpy(static_cast<void*>(&r), b + 4, sizeof r);
  return Found::yes;
}

bool Journal::begin(const JournalRecord& r) {
  std::uint8_t b[kRecordSize];
  put_u32(b, kMagic);
  std::memcpy(b + 4, &r, sizeof r);
  put_u32(b + 20, crc32(b, 20));
  return dev().erase(base()) && dev().write(base() + kRecordOffset, b, kRecordSize);
}

Found Journal::marker(std::uint32_t offset) const {
  std::uint8_t b[2];
  if (!dev().read(base() + offset, b, 2)) return Found::unknown;
  return get_u16(b) != 0xFFFF ? Found::yes : Found::no;
}

bool Journal::set_marker(std::uint32_t offset) {
  static constexpr std::uint8_t kZero[2] = {0, 0};
  return dev().write(base() + offset, kZero, 2);
}

std::uint32_t Journal::units_done() const {
  const std::uint32_t max_units = units_for(map_.layout.image_limit);
  std::uint32_t n = 0;
  while (n < max_units && unit_done(n)) ++n;
  return n;
}

bool Journal::mark_unit_done(std::uint32_t unit) {
  return unit < units_for(map_.layout.image_limit) && set_marker(kUnitsOffset + 2 * unit);
}

bool Journal::installed() const { return marker(kInstalledOffset) == Found::yes; }
bool Journal::mark_installed() { return set_marker(kInstalledOffset); }

bool Journal::clear() {
  return is_erased(dev(), base(), map_.layout.staging_unit) || dev().erase(base());
}

}  // namespace ota

static_assert(ota::Journal::kUnitsOffset + 2 * (ota::kInternalLayout.image_limit / ota::kFlashPage) <=
                  ota::Journal::kCopyOffset,
              "unit markers end before the copy markers");
static_assert(ota::Journal::kUnitsOffset + 2 * (ota::kExternalLayout.image_limit / ota::kW25qSector) <=
                  ota::Journal::kCopyOffset,
              "unit markers end before the copy markers");
static_assert(ota::Journal::kCopyOffset + 2 * (ota::kInternalLayout.image_limit / ota::kFlashPage) <=
                  ota::kInternalLayout.staging_unit &&
                  ota::Journal::kCopyOffset + 2 * (ota::kExternalLayout.image_limit / ota::kFlashPage) <=
                  ota::kExternalLayout.staging_unit,
              "copy markers fit the journal");

#include "ota/installer.hpp"

#include "ota/bytes.hpp"

namespace ota {

namespace {
constexpr std::uint32_t kChunk = 128;

}  // namespace

Installer::Result Installer::run() {
  JournalRecord rec;
  const bool have_record = journal_.read(rec);
  if (have_record && journal_.installed()) return finish() ? Result::finished : Result::failed;
  if (flags_.read() != Flag::start) return Result::nothing;
  if (!have_record || !staged_image_ok(rec)) {
    // Clear the flag first: once it is gone, a cut leaves a harmless stale journal.
    return flags_.clear() && journal_.clear() ? Result::refused : Result::failed;
  }
  if (!copy(rec) || !journal_.mark_installed()) return Result::failed;
  return finish() ? Result::installed : Result::failed;
}

bool Installer::finish() { return flags_.set(Flag::success) && journal_.clear(); }

bool Installer::staged_image_ok(const JournalRecord& r) {
  const Layout& l = map_.layout;
  if (r.image_size == 0 || r.image_size > l.image_limit ||
      journal_.units_done() < journal_.units_for(r.image_size))
    return false;
  Flash& staging = map_.device(l.staging);
  std::uint8_t vt[8];
  std::uint32_t crc = 0;
  return staging.read(l.staging.base, vt, sizeof vt) &&
         vector_table_sane(l, get_u32(vt), get_u32(vt + 4)) &&
         crc32_of(staging, l.staging.base, r.image_size, crc) && crc == r.image_crc;
}

bool Installer::copy(const JournalRecord& r) {
  const Layout& l = map_.layout;
  Flash& src = map_.device(l.staging);
  Flash& dst = map_.internal;
  const std::uint32_t page = dst.geometry().erase_size;
  std::uint8_t a[kChunk];
  std::uint8_t b[kChunk];
  for (std::uint32_t off = 0; off < r.image_size; off += page) {
    // A page that already holds what staging has is left alone (a resumed install, or an image
    // that differs in a few pages only).
    bool equal = true;
    for (std::uint32_t c = 0; c < page && equal; c += kChunk) {
      if (!src.read(l.staging.base + off + c, a, kChunk) || !dst.read(l.app.base + off + c, b, kChunk))
        return false;
      equal = bytes_equal(a, b, kChunk);
    }
    if (equal) continue;
    if (!dst.erase(l.app.base + off)) return false;
    for (std::uint32_t c = 0; c < page; c += kChunk)  // writes are verified by the port
      if (!src.read(l.staging.base + off + c, a, kChunk) || !dst.write(l.app.base + off + c, a, kChunk))
        return false;
  }
  std::uint32_t crc = 0;
  return crc32_of(dst, l.app.base, r.image_size, crc) && crc == r.image_crc;
}

bool Installer::app_valid() const {
  if (flags_.read() == Flag::start) return false;  // an install is pending or failed
  std::uint8_t vt[8];
  return map_.internal.read(map_.layout.app.base, vt, sizeof vt) &&
         vector_table_sane(map_.layout, get_u32(vt), get_u32(vt + 4));
}

const char* to_string(Installer::Result r) {
  switch (r) {
    case Installer::Result::nothing: return "nothing to install";
    case Installer::Result::installed: return "installed";
    case Installer::Result::finished: return "finished an interrupted install";
    case Installer::Result::refused: return "staged image refused";
    case Installer::Result::failed: return "flash failure";
  }
  return "?";
}

}  // namespace ota

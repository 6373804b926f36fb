#include "ota/installer.hpp"

#include <bit>

#include "ota/bytes.hpp"
#include "ota/crc.hpp"

namespace ota {

namespace {
constexpr std::uint32_t kChunk = 128;
constexpr std::uint32_t kVectorTable = 8;  // initial SP and reset vector
constexpr std::uint8_t kZeros[kVectorTable] = {};
constexpr std::uint32_t kNoPage = ~std::uint32_t{0};
// The first two vector table words (initial SP, reset vector), read whole: the Cortex-M3 and the
// hosts that run this code are little-endian, as the table is.
using VectorWords = std::uint32_t[2];
static_assert(sizeof(VectorWords) == kVectorTable && std::endian::native == std::endian::little);

}  // namespace

Installer::Result Installer::run() {
  JournalRecord rec;
  const Found record = journal_.find(rec);
  if (record == Found::yes && journal_.installed()) return finish() ? Result::finished : Result::failed;
  const Flag flag = flags_.read();
  if (flag == Flag::unknown) return Result::failed;  // no verdict (a W25Q not answering): try again
  if (flag != Flag::start) return Result::nothing;
  const Check c = record == Found::yes ? check_staged(rec)
                  : record == Found::no ? Check::bad
                                        : Check::unreadable;
  if (c == Check::unreadable) return Result::failed;  // no verdict on the image: try again later
  if (c == Check::bad) {
    // Clear the flag first: once it is gone, a cut leaves a harmless stale journal.
    return flags_.clear() && journal_.clear() ? Result::refused : Result::failed;
  }
  if (!copy(rec) || !journal_.mark_installed()) return Result::failed;
  return finish() ? Result::installed : Result::failed;
}

bool Installer::finish() { return flags_.set(Flag::success) && journal_.clear(); }

Installer::Check Installer::check_staged(const JournalRecord& r) {
  const Layout& l = map_.layout;
  if (r.image_size < kVectorTable || r.image_size > l.image_limit) return Check::bad;
  // The units' markers are not asked: the CRC-32 says whether the staged image is whole, where a
  // marker whose program a cut ended may read set at one boot and unset at the next (a marginal
  // cell), after the install has begun.
  Flash& staging = map_.device(l.staging);
  VectorWords vt;
  std::uint32_t crc = 0;
  if (!staging.read(l.staging.base, vt, sizeof vt) ||
      !crc32_of(staging, l.staging.base, r.image_size, crc))
    return Check::unreadable;
  const bool ok = vector_table_sane(l, vt[0], vt[1], r.image_size) && crc == r.image_crc;
  return ok ? Check::ok : Check::bad;
}

bool Installer::copy(const JournalRecord& r) {
  const Layout& l = map_.layout;
  Flash& app = map_.internal;
  const std::uint32_t page = app.geometry().erase_size;
  // Each page that differs is marked begun in the journal before its erase (copy_page). A program
  // a cut ended may leave cells that read right now and erased later (too little charge): the
  // page a cut may have stopped, the last one begun (they go 1, 2, ... and the first last), is
  // written again however it reads; the others, equal, are skipped, so that an install stopped
  // again and again still gets on, and a page both images share is left alone (worn, it may no
  // longer erase). None begun: an application that already has the image's CRC-32 had it before
  // this install (the same image again): nothing to do. Every page is written where the journal
  // cannot tell which page is the last begun: no sane vector table and no mark that this install
  // began (one that failed, whose journal a new download then erased, may have left any page
  // marginal), a copy that failed its check (pages were begun again after the first), or a
  // marker that cannot be read.
  bool all = (journal_.install_mark(Journal::kBeganOffset) != Found::yes && !app_valid()) ||
             journal_.install_mark(Journal::kRecopyOffset) != Found::no;
  std::uint32_t last = kNoPage;
  for (std::uint32_t off = 0; off < r.image_size; off += page) {
    const Found f = journal_.copy_mark(off / page);
    all = all || f == Found::unknown;
    if (f == Found::yes && last != 0) last = off;  // page 0, copied last, stays last
  }
  std::uint32_t crc = 0;
  if (last == kNoPage && crc32_of(app, l.app.base, r.image_size, crc) && crc == r.image_crc) return true;
  journal_.set_install_mark(Journal::kBeganOffset);  // (one that does not take: see copy_page)
  // The vector table is zeroed before anything is erased and written last, in the very last
  // program, once everything else is verified with it; its page is copied after the others. Until
  // then the application has no valid vector table, so that app_valid() can never let a
  // half-copied or wrongly copied application start, whatever happens to the flag or the staged
  // image afterwards. An erase of its page that is cut or fails (a worn page) only sets bits, and
  // a table grown from zeros is all but never sane; a program cut inside the new table leaves a
  // half-word torn and the rest erased: never a sane table either.
  if (!zero_vector_table()) return false;  // a zero that did not take: nothing is erased yet
  for (std::uint32_t off = page; off < r.image_size; off += page)
    if (!copy_page(off, all || off == last)) return false;
  std::uint8_t vt[kVectorTable];
  if (!copy_page(0, all || last == 0) || !map_.device(l.staging).read(l.staging.base, vt, sizeof vt)) {
    zero_vector_table();  // whatever a failed erase of the page left
    return false;
  }
  crc = crc32(vt, sizeof vt);
  if (!crc32_of(app, l.app.base + kVectorTable, r.image_size - kVectorTable, crc) || crc != r.image_crc) {
    journal_.set_install_mark(Journal::kRecopyOffset);
    return false;
  }
  if (app.write(l.app.base, vt, sizeof vt)) return true;  // verified by the port
  zero_vector_table();  // whatever the failed program left must not be started
  return false;
}

// Zeros over the application's vector table (the flash contract allows zeros over anything): the
// reset vector's high half-word first, whose one set bit (0x0800) makes that program all or
// nothing, so that a cut while zeroing leaves either the old table or an insane one.
bool Installer::zero_vector_table() {
  Flash& app = map_.internal;
  const std::uint32_t base = map_.layout.app.base;
  return app.write(base + 6, kZeros, 2) && app.write(base, kZeros, 6);
}

bool Installer::copy_page(std::uint32_t off, bool always) {
  const Layout& l = map_.layout;
  Flash& src = map_.device(l.staging);
  Flash& dst = map_.internal;
  const std::uint32_t page = dst.geometry().erase_size;
  std::uint8_t a[kChunk];
  std::uint8_t b[kChunk];
  // Unless `always`, a page that already holds what staging has is left alone (an image that
  // differs in a few pages only, or a resumed install).
  bool equal = !always;
  for (std::uint32_t c = 0; c < page && equal; c += kChunk) {
    if (!src.read(l.staging.base + off + c, a, kChunk) || !dst.read(l.app.base + off + c, b, kChunk))
      return false;
    equal = bytes_equal(a, b, kChunk);
  }
  if (equal) return true;
  // A marker that does not take (a worn journal page: it wears first) leaves this page without
  // its guard against a marginal program, should a cut end it: the install goes on all the same
  // rather than stop for good on a worn journal.
  journal_.mark_copy_begun(off / page);
  // Erased even if it reads blank: an erase cut near its end can read blank and not hold.
  if (!dst.erase(l.app.base + off)) return false;
  for (std::uint32_t c = 0; c < page; c += kChunk) {  // writes are verified by the port
    const std::uint32_t skip = off + c == 0 ? kVectorTable : 0;  // written last by copy()
    if (!src.read(l.staging.base + off + c, a, kChunk) ||
        !dst.write(l.app.base + off + c + skip, a + skip, kChunk - skip))
      return false;
  }
  return true;
}

bool Installer::app_valid() const {
  VectorWords vt;
  return map_.internal.read(map_.layout.app.base, vt, sizeof vt) &&
         vector_table_sane(map_.layout, vt[0], vt[1], map_.layout.app.size);
}

const char* to_string(Installer::Result r, Medium staging) {
  switch (r) {
    case Installer::Result::nothing: return "nothing to install";
    case Installer::Result::installed: return "installed";
    case Installer::Result::finished: return "finished an interrupted install";
    case Installer::Result::refused: return "staged image refused";
    case Installer::Result::failed: return staging == Medium::external ? "flash/W25Q failure" : "flash failure";
  }
  return "?";
}

}  // namespace ota

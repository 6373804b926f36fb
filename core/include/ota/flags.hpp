// The flag store and the download journal: what survives a reset or a power cut.
//
// Flag area (the spec's page 63 / W25Q sector 15), bytes 0-11:
//     "OTA-START"   + FF FF FF   a verified download waits to be installed
//     "OTA-SUCCESS" + FF         the bootloader installed it; the application reports and clears
//     FF x 12                    nothing pending
//     anything else              a write or erase was torn by a power cut: treated as nothing
//                                pending (it can never read as either text by accident, since a
//                                torn program only clears bits of the text written and a torn
//                                erase only sets bits of the text erased, and neither text can be
//                                made from the other that way).
//
// Journal (the last erase unit of the staging area, which lies beyond the image limit):
//     +0   record: magic, image size, CRC-32, version, packet size, packet count, record CRC-32
//     +32  "installed" marker: 0x0000 once the bootloader has copied and verified the image
//     +64  one 16-bit "unit done" marker per staging erase unit, in order
// A marker counts as set when it is not 0xFFFF; markers are only written after what they stand for
// is verified in flash, so a torn marker is either still unset (the work is redone) or set (the
// work was already done). The record carries its own CRC, so a torn record reads as no record.
//
// Why two erase units: moving "OTA-START" to "OTA-SUCCESS" needs an erase of the flag area, and a
// power cut inside that erase must not lose the fact that the copy is complete. The "installed"
// marker, written in the journal before the flag area is erased, carries that fact across: the
// bootloader sees it and finishes the move (roll forward). See docs/design.md for every cut point.
#pragma once

#include <cstdint>

#include "ota/flash_map.hpp"

namespace ota {

// torn: the area holds neither text nor blank; unknown: it could not be read.
enum class Flag : std::uint8_t { none, start, success, torn, unknown };

class FlagStore {
 public:
  explicit FlagStore(const FlashMap& map) : map_(map) {}
  explicit FlagStore(const FlashMap&&) = delete;  // it keeps a reference: no temporary

  Flag read() const;
  // Erases the area if bytes 0-11 are not blank, then writes the text (verified by the port).
  bool set(Flag f);
  // Erases the area unless it is already blank.
  bool clear();

 private:
  Flash& dev() const { return map_.device(map_.layout.flags); }
  const FlashMap& map_;
};

struct JournalRecord {
  std::uint32_t image_size = 0;
  std::uint32_t image_crc = 0;
  std::uint32_t image_version = 0;
  std::uint16_t packet_size = 0;
  std::uint16_t packet_count = 0;
  bool operator==(const JournalRecord&) const = default;
  // The same image, whatever the packets it is sent in.
  bool same_image(const JournalRecord& o) const {
    return image_size == o.image_size && image_crc == o.image_crc && image_version == o.image_version;
  }
};

// What a read of the journal found: a read error is no answer either way.
enum class Found : std::uint8_t { no, yes, unknown };

class Journal {
 public:
  static constexpr std::uint32_t kRecordOffset = 0;
  static constexpr std::uint32_t kRecordSize = 24;
  static constexpr std::uint32_t kInstalledOffset = 32;
  static constexpr std::uint32_t kBeganOffset = 34;   // the install began (before it wrote anything)
  static constexpr std::uint32_t kRecopyOffset = 36;  // a copy failed its check: write every page
  static constexpr std::uint32_t kUnitsOffset = 64;
  static constexpr std::uint32_t kCopyOffset = 128;  // one marker per application page
  static constexpr std::uint32_t kMagic = 0x4A41544F;  // "OTAJ"

  explicit Journal(const FlashMap& map) : map_(map) {}
  explicit Journal(const FlashMap&&) = delete;  // it keeps a reference: no temporary

  // yes and r filled if a valid record is stored.
  Found find(JournalRecord& r) const;
  bool read(JournalRecord& r) const { return find(r) == Found::yes; }
  // Erases the journal, then writes the record (a new download begins).
  bool begin(const JournalRecord& r);
  // Number of staging units done, counted from unit 0 up to the first unset marker.
  std::uint32_t units_done() const;
  Found unit_mark(std::uint32_t unit) const { return marker(kUnitsOffset + 2 * unit); }
  bool unit_done(std::uint32_t unit) const { return unit_mark(unit) == Found::yes; }
  bool mark_unit_done(std::uint32_t unit);
  bool installed() const;
  bool mark_installed();
  // Whether the install's copy of application page `page` began (marked before its erase).
  Found copy_mark(std::uint32_t page) const { return marker(kCopyOffset + 2 * page); }
  bool mark_copy_begun(std::uint32_t page) { return set_marker(kCopyOffset + 2 * page); }
  // The install's own markers, at kBeganOffset and kRecopyOffset.
  Found install_mark(std::uint32_t offset) const { return marker(offset); }
  bool set_install_mark(std::uint32_t offset) { return set_marker(offset); }
  // Erases the journal unless it is already blank.
  bool clear();

  // The first packet of `r` not yet stored: the start of the first unit not done (at most the
  // packet count, when every unit is done).
  std::uint32_t resume_index(const JournalRecord& r) const {
    const std::uint32_t next = units_done() * map_.layout.staging_unit / r.packet_size;
    return next < r.packet_count ? next : r.packet_count;
  }

  // Staging units an image of `size` bytes occupies.
  std::uint32_t units_for(std::uint32_t size) const {
    return (size + map_.layout.staging_unit - 1) / map_.layout.staging_unit;
  }

 private:
  Flash& dev() const { return map_.device(map_.layout.staging); }
  std::uint32_t base() const { return map_.layout.journal().base; }
  Found marker(std::uint32_t offset) const;
  bool set_marker(std::uint32_t offset);
  const FlashMap& map_;
};

}  // namespace ota

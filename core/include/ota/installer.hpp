// The bootloader's install logic, portable: everything the bootloader decides, apart from the
// drivers it runs on and the jump itself.
//
// Installer::run() at every boot:
//   1. journal "installed" marker set -> the copy is done and verified: finish the flag move
//      (flag area to "OTA-SUCCESS", journal erased). Nothing of the application is touched.
//   2. flag "OTA-START" -> check the staged image BEFORE touching the application: a valid
//      journal record, CRC-32 of the staging area equal to the record's, a sane vector table.
//      Refused: flag and journal are cleared, the application stays as it is.
//      Staging unreadable, the journal included (a read error, not a verdict): failed, nothing
//      changed, tried again.
//      Accepted: unless the application already has the image's CRC-32 and no page of this
//      install began (the same image again), zero the application's vector table, copy the other
//      pages, each marked begun in the journal and erased first (pages already equal are
//      skipped, so that an image that differs in a few pages only costs what differs; but the
//      last page begun, the one a cut may have stopped, is written again however it reads: a
//      program a cut ended may have left cells that read right now and fade later; every page
//      where the journal cannot say which is the last begun, see copy()), the first
//      page last but for its vector table, verify the CRC-32 of the copy with the staged vector
//      table in its place, write the vector table, set the "installed" marker, then finish as in 1.
//   3. otherwise nothing to do.
// Every step can be cut by a power loss and redone: the staged image is never written during an
// install (only its journal), the flag stays "OTA-START" until the copy is verified, and the
// marker carries the rest.
//
// app_valid() decides whether the application may be started: its vector table is sane. An
// install zeros the vector table first (an erase of its page that is cut or fails may leave old
// bits behind; it only sets bits, and a table grown from zeros is all but never sane) and writes
// it last, once the copy is verified, so a sane one means a whole application: the old one (the
// install did not get to it: a flash fault, a sagging supply) or the new one (the flag move
// failed after the copy). Either is better started than a device left waiting; "OTA-START"
// stays, the client reports the failed install, and the next boot tries again.
#pragma once

#include <cstdint>

#include "ota/flags.hpp"

namespace ota {

class Installer {
 public:
  enum class Result : std::uint8_t {
    nothing,    // no update pending
    installed,  // a staged image was copied and verified now
    finished,   // an install cut by a power loss after its copy was completed now
    refused,    // the staged image failed its checks; the application was not touched
    failed,     // a flash operation failed; the next boot tries again, and until then the
                // bootloader's recovery client takes the image again (Report::install_failed)
  };

  explicit Installer(const FlashMap& map) : map_(map), flags_(map), journal_(map) {}
  explicit Installer(const FlashMap&&) = delete;  // it keeps a reference: no temporary

  Result run();
  bool app_valid() const;

 private:
  enum class Check : std::uint8_t { ok, bad, unreadable };
  Check check_staged(const JournalRecord& r);
  bool copy(const JournalRecord& r);
  bool copy_page(std::uint32_t offset, bool always);
  bool zero_vector_table();
  bool finish();

  const FlashMap& map_;
  FlagStore flags_;
  Journal journal_;
};

// `staging`: the medium of the layout's staging area. On the external layout a failure names
// the W25Q too ("flash/W25Q failure"): its likeliest cause there is a chip that is missing, loose
// or write-protected, which the text on a terminal should say (the server's message does).
const char* to_string(Installer::Result r, Medium staging = Medium::internal);

}  // namespace ota

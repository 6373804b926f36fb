// One board per flash file: an exclusive flock(2) on the file its name leads to, held until the
// lock is destroyed. The board saves a file by writing a new copy beside it and renaming that over
// the name (sim::StoredMemory::save), so the lock moves with each save: renew() locks the new copy
// before its rename and keeps the old file locked until the next renew(), so that the name leads to
// a locked file at every instant, the old one until the rename, the new one after.
#pragma once

#include <filesystem>

namespace bluepill {

class FileLock {
 public:
  FileLock() = default;
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Opens (creating it) and locks `file`; false with errno set (EWOULDBLOCK: another holds it).
  bool take(const std::filesystem::path& file);
  // The new copy of the file, about to be renamed over its name, is locked; false with errno set.
  bool renew(const std::filesystem::path& new_copy);

 private:
  int fd_ = -1;
  int old_fd_ = -1;  // the file the last rename replaced: unnamed by now, closed at the next renew()
};

}  // namespace bluepill

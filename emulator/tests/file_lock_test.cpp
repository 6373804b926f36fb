// bluepill::FileLock: one board per flash file, across the saves that rename a new copy over it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bluepill/file_lock.hpp"

namespace {

namespace fs = std::filesystem;

// Whether another process (another open file description) could lock what `file` names now.
bool lockable(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return true;
  const bool ok = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return ok;
}

TEST(FileLock, TheNameLeadsToALockedFileBeforeDuringAndAfterEachSave) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("file_lock_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "board.bin", part = dir / "board.bin.part";
  {
    bluepill::FileLock lock;
    ASSERT_TRUE(lock.take(file));
    EXPECT_FALSE(lockable(file));
    bluepill::FileLock second;
    EXPECT_FALSE(second.take(file));
    EXPECT_EQ(errno, EWOULDBLOCK);
    for (int save = 0; save < 3; ++save) {
      std::ofstream(part) << "copy " << save;
      ASSERT_TRUE(lock.renew(part));
      EXPECT_FALSE(lockable(file)) << "save " << save << ": the old file, still named, was unlocked before the rename";
      fs::rename(part, file);
      EXPECT_FALSE(lockable(file)) << "save " << save << ": the new copy was not locked when it took the name";
    }
  }
  EXPECT_TRUE(lockable(file)) << "the lock outlived its owner";
  fs::remove_all(dir);
}

}  // namespace

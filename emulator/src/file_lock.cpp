#include "bluepill/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace bluepill {

namespace {

int open_locked(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

FileLock::~FileLock() {
  close_fd(fd_);
  close_fd(old_fd_);
}

bool FileLock::take(const std::filesystem::path& file) {
  close_fd(fd_);
  fd_ = open_locked(file);
  return fd_ >= 0;
}

bool FileLock::renew(const std::filesystem::path& new_copy) {
  const int fd = open_locked(new_copy);
  if (fd < 0) return false;
  close_fd(old_fd_);  // two saves ago: replaced long since
  old_fd_ = fd_;      // the name still leads to it until the rename
  fd_ = fd;
  return true;
}

}  // namespace bluepill

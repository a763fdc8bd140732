#pragma once
// Single instance per data folder: an flock(2) on DATA/tuneloopd.lock held for the
// daemon's lifetime. The kernel drops the lock when the process dies (even by SIGKILL),
// so a stale file never blocks a restart.

#include <filesystem>
#include <stdexcept>

namespace tuneloop::daemon {

class AlreadyRunningError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class LockFile {
 public:
  /// Takes the lock and writes our pid into the file.
  /// Throws AlreadyRunningError naming the lock file and the holder's pid if another
  /// process holds it; std::runtime_error naming the path if it cannot be created.
  explicit LockFile(const std::filesystem::path& path);
  ~LockFile();
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace tuneloop::daemon

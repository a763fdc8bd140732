#pragma once
// The one temp-folder helper of the tests (header-only, no LibTorch, so any test can use it).
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace tuneloop::testing {

/// A fresh folder from mkdtemp under the system temp directory, removed with everything in
/// it on destruction. `prefix` names the folder (PREFIX-XXXXXX) so leftovers show whose they are.
class TempDir {
 public:
  /// Throws std::runtime_error naming the mkdtemp pattern if the folder cannot be made.
  explicit TempDir(std::string_view prefix = "tuneloop-test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }

  // A destructor must not throw; a folder left behind in /tmp is the lesser harm.
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  /// The path of `name` (may contain '/') inside the folder, as a string.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace tuneloop::testing

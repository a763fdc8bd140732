// The web player's checks on what a browser (or anything else) sends: the Host header and
// the path of a static file, which must never leave the UI folder.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/http_server.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)tuneloop::daemon::is_loopback_host(text, 8754);
  static const tuneloop::testing::TempDir dir("tuneloop-fuzz-ui");
  static const fs::path& root = dir.path();
  static const bool made = [] {
    fs::create_directories(root / "css");
    return true;
  }();
  (void)made;
  if (const auto file = tuneloop::daemon::static_file(root, std::string(text))) {
    const auto r = fs::weakly_canonical(*file).string(), base = fs::weakly_canonical(root).string();
    if (r.compare(0, base.size(), base) != 0) std::abort();  // escaped the UI folder
  }
  return 0;
}

#pragma once
// Access tokens and the owner-only files that hold them (the web player's DATA/ui-token,
// the TCP port's DATA/tcp-token).
#include <filesystem>
#include <string>
#include <string_view>

namespace tuneloop::daemon {

/// 32 random bytes from /dev/urandom as 64 hex digits. Throws std::runtime_error.
std::string random_token();

/// Writes `text` to `path` readable by the owner only (0600), even if the file existed
/// before. Throws std::runtime_error naming the path.
void write_private(const std::filesystem::path& path, const std::string& text);

/// Whether a presented token is the expected (non-empty) one, in time independent of where
/// they differ (no timing oracle for guessing it byte by byte).
bool same_token(std::string_view presented, std::string_view expected) noexcept;

}  // namespace tuneloop::daemon

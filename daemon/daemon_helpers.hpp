#pragma once
// Small helpers the daemon's wiring and its methods (daemon/methods/) share. Private to daemon/.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "player/player.hpp"
#include "store/store.hpp"

namespace tuneloop::daemon::detail {

inline store::EndReason to_store(player::EndReason r) {
  switch (r) {
    case player::EndReason::completed: return store::EndReason::completed;
    case player::EndReason::skipped: return store::EndReason::skipped;
    case player::EndReason::stopped: return store::EndReason::stopped;
    case player::EndReason::interrupted: return store::EndReason::interrupted;
  }
  return store::EndReason::interrupted;
}

inline nlohmann::json opt_json(const std::optional<store::Id>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }
inline nlohmann::json opt_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Whether `file` lies inside `dir` (after resolving links and dots).
inline bool inside(const std::filesystem::path& file, const std::filesystem::path& dir) {
  const auto f = std::filesystem::weakly_canonical(file), d = std::filesystem::weakly_canonical(dir);
  auto [a, b] = std::mismatch(d.begin(), d.end(), f.begin(), f.end());
  return a == d.end();
}

}  // namespace tuneloop::daemon::detail

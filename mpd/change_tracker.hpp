#pragma once
// Turns successive looks at the daemon into MPD's change signals: the idle subsystems
// that changed (player, mixer, playlist) and the playlist version clients compare to
// know whether to fetch the queue again. The daemon announces most changes as events;
// this catches the rest (a volume or queue change made over JSON-RPC announces nothing).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tuneloop::mpd {

/// What an MPD client can see change.
struct PlayerSnapshot {
  std::string state;  // play | pause | stop
  std::optional<std::int64_t> song_id;
  int volume = 0;
  std::vector<std::int64_t> queue;
};

class ChangeTracker {
 public:
  /// Compares with the previous snapshot and returns the idle flags of what changed; a
  /// changed queue also raises the playlist version. The first snapshot raises nothing.
  unsigned observe(const PlayerSnapshot& now);
  /// Starts at 1 and grows by one with each queue change.
  std::uint32_t playlist_version() const noexcept { return version_; }

 private:
  std::optional<PlayerSnapshot> last_;
  std::uint32_t version_ = 1;
};

}  // namespace tuneloop::mpd

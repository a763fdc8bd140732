#pragma once
// What MPD calls the database, the queue and the player status, read from the daemon's
// JSON-RPC answers (tracks.list, iterations.list, queue.list, status) each time they are
// needed. The library is cached between calls only to print songs by id; it is reloaded
// when an id is unknown or an event says tracks changed.

#include "mpd/daemon_view.hpp"
#include "mpd/song.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tuneloop::mpd {

/// Every track of the listener as songs, in folders.
struct Library {
  struct Folder {
    std::string name;  // "iteration-N" or "other"
    std::int64_t last_modified = 0;
  };
  std::vector<Folder> folders;  // iterations by number, then "other"
  std::vector<Song> songs;      // folder by folder, by id within one

  const Song* find(std::int64_t id) const;
  /// The song at exactly this URI, nullptr otherwise.
  const Song* find_uri(std::string_view uri) const;
  bool has_folder(std::string_view name) const;

  /// Reads tracks.list and iterations.list. Throws RpcFailure.
  static Library load(const DaemonView& daemon);

 private:
  std::map<std::int64_t, std::size_t> by_id_;
};

/// MPD's queue as tuneloop's play queue shows it: the current track first (position 0),
/// then the upcoming tracks, each track once (a repeat later in the queue is not shown).
struct QueueView {
  std::vector<std::int64_t> ids;
  bool has_current = false;  // ids[0] is the queue's current track

  /// Reads queue.list. Throws RpcFailure.
  static QueueView load(const DaemonView& daemon);
};

/// The parts of the daemon's `status` an MPD client sees.
struct PlayerStatus {
  std::string state = "stop";  // play | pause | stop
  std::optional<std::int64_t> playing_track;
  double elapsed = 0;
  double duration = 0;
  int volume = 0;  // 0..100
  bool audio_available = false;
  std::string audio_message;
  double uptime_s = 0;

  /// Reads `status`. Throws RpcFailure.
  static PlayerStatus load(const DaemonView& daemon);
};

class LibraryCache {
 public:
  /// The cached library, loaded if there is none.
  const Library& get(const DaemonView& daemon);
  /// Reloads now (listing commands want tracks added a moment ago).
  const Library& fresh(const DaemonView& daemon);
  /// The songs of these ids in order, reloading once if one is unknown; ids still
  /// unknown (deleted tracks) are left out. The pointers live until the next reload.
  std::vector<const Song*> songs_for(const DaemonView& daemon, const std::vector<std::int64_t>& ids);
  /// The next get() reloads. The library itself stays until then, so songs a command
  /// holds stay valid while an event arrives in the middle of it.
  void invalidate() noexcept { stale_ = true; }

 private:
  std::optional<Library> library_;
  bool stale_ = false;
};

}  // namespace tuneloop::mpd

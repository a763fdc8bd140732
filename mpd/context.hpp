#pragma once
// What an MPD command handler works with: the state all connections share (MPD's
// "partition": options tuneloop has no notion of, the playlist version, the sticker
// echo), the connection's own settings, the daemon, and the reply being written.
// io thread only.

#include "rpc/dispatcher.hpp"
#include "mpd/change_tracker.hpp"
#include "mpd/daemon_view.hpp"
#include "mpd/library.hpp"
#include "mpd/protocol.hpp"
#include "mpd/song.hpp"
#include "mpd/stickers.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tuneloop::mpd {

/// MPD's playback options. Accepted and reported back, but tuneloop's queue does not
/// follow them: the loop decides what plays next.
struct Options {
  bool repeat = false;
  bool random = false;
  bool consume = false;
  std::string single = "0";  // 0 | 1 | oneshot
};

/// MPD permission bits (src/Permission.hxx).
namespace permission {
inline constexpr unsigned none = 0;
inline constexpr unsigned read = 1;
inline constexpr unsigned add = 2;
inline constexpr unsigned control = 4;
inline constexpr unsigned admin = 8;
inline constexpr unsigned player = 16;
inline constexpr unsigned all = read | add | control | admin | player;
}  // namespace permission

struct Shared {
  Shared(const rpc::Dispatcher& d, std::string pw) : dispatcher(d), password(std::move(pw)) {}

  const rpc::Dispatcher& dispatcher;
  std::string password;  // "" = every connection may do everything
  Options options;
  ChangeTracker tracker;
  StickerEcho echo;
  LibraryCache library;
  unsigned update_jobs = 0;  // `update` answers a growing job number, as MPD does
  /// Raises idle flags on every connection (set by the server; unset in tests).
  std::function<void(unsigned)> raise;
  /// Asks for a look at the daemon soon, for changes it announces no event for.
  std::function<void()> check_soon;

  void raise_all(unsigned flags) const {
    if (flags && raise) raise(flags);
  }
};

/// One connection's own settings.
struct ClientInfo {
  unsigned permission = permission::all;
  TagMask tag_mask = kAllTags;
  std::size_t binary_limit = 8192;
  unsigned idle_subscriptions = 0;  // what `idle` waits for
};

enum class Result {
  ok,     // answer OK
  idle,   // wait for an idle event (the answer comes later)
  close,  // send what is written, then close (`close`)
};

using Args = std::vector<std::string>;

struct Context {
  Shared& shared;
  ClientInfo& client;
  const DaemonView& daemon;
  std::string& out;  // the reply so far; kept if a later step throws, as MPD does

  void pair(std::string_view key, std::string_view value) { out += pair_line(key, value); }
};

/// The player status and the queue now. What changed since the last look (a track, the
/// volume, the queue) is raised on every connection and moves the playlist version.
struct Now {
  PlayerStatus status;
  QueueView queue;
};
Now look_now(Shared& shared, const DaemonView& daemon);

/// The song at `uri`, from a fresh library. Throws MpdError(no_exist, "No such song").
Song song_at(Context& ctx, std::string_view uri);

}  // namespace tuneloop::mpd

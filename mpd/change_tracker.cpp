#include "mpd/change_tracker.hpp"

#include "mpd/protocol.hpp"

namespace tuneloop::mpd {

unsigned ChangeTracker::observe(const PlayerSnapshot& now) {
  unsigned flags = 0;
  if (last_) {
    if (last_->state != now.state || last_->song_id != now.song_id) flags |= idle::player;
    if (last_->volume != now.volume) flags |= idle::mixer;
    if (last_->queue != now.queue) {
      flags |= idle::playlist;
      ++version_;
    }
  }
  last_ = now;
  return flags;
}

}  // namespace tuneloop::mpd

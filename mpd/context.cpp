#include "mpd/context.hpp"

namespace tuneloop::mpd {

Now look_now(Shared& shared, const DaemonView& daemon) {
  Now now{PlayerStatus::load(daemon), QueueView::load(daemon)};
  PlayerSnapshot snap;
  snap.state = now.status.state;
  snap.song_id = now.queue.has_current ? std::optional<std::int64_t>(now.queue.ids.front())
                                       : std::nullopt;
  snap.volume = now.status.volume;
  snap.queue = now.queue.ids;
  shared.raise_all(shared.tracker.observe(snap));
  return now;
}

Song song_at(Context& ctx, std::string_view uri) {
  const Song* s = ctx.shared.library.fresh(ctx.daemon).find_uri(uri);
  if (!s) throw MpdError(Ack::no_exist, "No such song");
  return *s;
}

}  // namespace tuneloop::mpd

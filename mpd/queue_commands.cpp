// The play queue as MPD's queue (MPD's QueueCommands.cxx): position 0 is the current
// track, then what the loop queued. Entries cannot be added, moved or deleted from MPD:
// the loop decides the order. A song's Id is its track id.
#include "mpd/arguments.hpp"
#include "mpd/handlers.hpp"

#include <algorithm>

namespace tuneloop::mpd {

namespace {

// MPD's RangeArg::CheckClip: a start past the end is an error, an end past it is cut.
Range clipped(Range r, std::size_t length) {
  if (r.start > length) throw MpdError(Ack::arg, "Bad song index");
  r.end = static_cast<unsigned>(std::min<std::size_t>(r.end, length));
  return r;
}

void print_entries(Context& ctx, const QueueView& q, Range r) {
  r = clipped(r, q.ids.size());
  if (r.start >= r.end) return;
  const std::vector<std::int64_t> ids(q.ids.begin() + r.start, q.ids.begin() + r.end);
  const auto songs = ctx.shared.library.songs_for(ctx.daemon, ids);
  // Positions follow the queue; a track deleted a moment ago is skipped, not renumbered.
  std::size_t k = 0;
  for (unsigned pos = r.start; pos < r.end && k < songs.size(); ++pos)
    if (songs[k]->id == q.ids[pos]) ctx.out += queue_entry(*songs[k++], ctx.client.tag_mask, pos);
}

// MPD sends the entries newer than the client's version; tuneloop keeps one version
// for the whole queue, so a client that is behind gets every entry (and `playlistlength`
// in status tells it where the queue now ends).
bool behind(Context& ctx, const Args& args) {
  const std::uint32_t version = parse_u32(args[0]);
  return version != ctx.shared.tracker.playlist_version();
}

}  // namespace

Result handle_playlistinfo(Context& ctx, const Args& args) {
  const Range r = args.empty() ? Range{} : parse_range(args[0]);
  print_entries(ctx, look_now(ctx.shared, ctx.daemon).queue, r);
  return Result::ok;
}

Result handle_playlistid(Context& ctx, const Args& args) {
  const QueueView q = look_now(ctx.shared, ctx.daemon).queue;
  if (args.empty()) {
    print_entries(ctx, q, Range{});
    return Result::ok;
  }
  const std::int64_t id = parse_unsigned(args[0]);
  const auto it = std::find(q.ids.begin(), q.ids.end(), id);
  if (it == q.ids.end()) throw MpdError(Ack::no_exist, "No such song");
  const auto pos = static_cast<unsigned>(it - q.ids.begin());
  print_entries(ctx, q, Range{pos, pos + 1});
  return Result::ok;
}

Result handle_plchanges(Context& ctx, const Args& args) {
  const Range r = args.size() > 1 ? parse_range(args[1]) : Range{};
  const QueueView q = look_now(ctx.shared, ctx.daemon).queue;
  if (behind(ctx, args)) print_entries(ctx, q, r);
  return Result::ok;
}

Result handle_plchangesposid(Context& ctx, const Args& args) {
  const Range asked = args.size() > 1 ? parse_range(args[1]) : Range{};
  const QueueView q = look_now(ctx.shared, ctx.daemon).queue;
  if (!behind(ctx, args)) return Result::ok;
  const Range r = clipped(asked, q.ids.size());
  for (unsigned pos = r.start; pos < r.end; ++pos) {
    ctx.pair("cpos", std::to_string(pos));
    ctx.pair("Id", std::to_string(q.ids[pos]));
  }
  return Result::ok;
}

// tuneloop has no stored playlists; clients ask for them on connect.
Result handle_listplaylists(Context&, const Args&) { return Result::ok; }

}  // namespace tuneloop::mpd

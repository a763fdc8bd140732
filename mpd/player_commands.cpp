// Status and playback (MPD's PlayerCommands.cxx), each a call to the daemon's status
// or player.* methods. Without an audio device those methods answer -32005, which
// reaches the client as ACK 52 with the daemon's reason.
#include "mpd/arguments.hpp"
#include "mpd/handlers.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tuneloop::mpd {

using nlohmann::json;

namespace {

std::string fixed3(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

const char* flag(bool b) { return b ? "1" : "0"; }

// The queue entry at `position`, or MPD's "Bad song index".
std::int64_t id_at(const QueueView& q, unsigned position) {
  if (position >= q.ids.size()) throw MpdError(Ack::arg, "Bad song index");
  return q.ids[position];
}

// MPD's optional song argument: absent or negative means "the current one".
std::optional<int> optional_position(const Args& args) {
  if (args.empty()) return std::nullopt;
  const int v = parse_int(args[0], std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  if (v < 0) return std::nullopt;
  return v;
}

void play_track(Context& ctx, std::int64_t track_id) {
  ctx.daemon.call("player.play", {{"track_id", track_id}});
}

// Plays `track_id` unless it is the one playing now, then jumps to `seconds`.
void seek_track(Context& ctx, const Now& now, std::int64_t track_id, double seconds) {
  const bool playing_it = now.status.state != "stop" && now.queue.has_current &&
                          now.queue.ids.front() == track_id;
  if (!playing_it) play_track(ctx, track_id);
  if (seconds > 0 || playing_it) ctx.daemon.call("player.seek", {{"seconds", seconds}});
}

void set_volume(Context& ctx, int percent) {
  ctx.daemon.call("player.volume", {{"level", std::clamp(percent, 0, 100) / 100.0}});
}

}  // namespace

Result handle_status(Context& ctx, const Args&) {
  const Now now = look_now(ctx.shared, ctx.daemon);
  const PlayerStatus& s = now.status;
  const QueueView& q = now.queue;
  const Options& o = ctx.shared.options;
  ctx.pair("volume", std::to_string(s.volume));
  ctx.pair("repeat", flag(o.repeat));
  ctx.pair("random", flag(o.random));
  ctx.pair("single", o.single);
  ctx.pair("consume", flag(o.consume));
  ctx.pair("partition", "default");
  ctx.pair("playlist", std::to_string(ctx.shared.tracker.playlist_version()));
  ctx.pair("playlistlength", std::to_string(q.ids.size()));
  ctx.pair("mixrampdb", "0");
  ctx.pair("state", s.state);
  if (q.has_current) {
    ctx.pair("song", "0");
    ctx.pair("songid", std::to_string(q.ids.front()));
  }
  if (s.state != "stop") {
    ctx.pair("time", std::to_string(std::llround(s.elapsed)) + ":" +
                         std::to_string(std::llround(std::max(0.0, s.duration))));
    ctx.pair("elapsed", fixed3(s.elapsed));
    ctx.pair("bitrate", "0");
    ctx.pair("duration", fixed3(s.duration));
  }
  if (q.has_current && q.ids.size() > 1) {
    ctx.pair("nextsong", "1");
    ctx.pair("nextsongid", std::to_string(q.ids[1]));
  }
  return Result::ok;
}

Result handle_currentsong(Context& ctx, const Args&) {
  const QueueView q = QueueView::load(ctx.daemon);
  if (!q.has_current) return Result::ok;
  const auto songs = ctx.shared.library.songs_for(ctx.daemon, {q.ids.front()});
  if (!songs.empty()) ctx.out += queue_entry(*songs.front(), ctx.client.tag_mask, 0);
  return Result::ok;
}

Result handle_play(Context& ctx, const Args& args) {
  const auto position = optional_position(args);
  if (!position) {
    ctx.daemon.call("player.play");
    return Result::ok;
  }
  play_track(ctx, id_at(QueueView::load(ctx.daemon), static_cast<unsigned>(*position)));
  return Result::ok;
}

Result handle_playid(Context& ctx, const Args& args) {
  const auto id = optional_position(args);
  if (!id) {
    ctx.daemon.call("player.play");
    return Result::ok;
  }
  play_track(ctx, *id);  // any track of the listener; the daemon answers not found for others
  return Result::ok;
}

Result handle_pause(Context& ctx, const Args& args) {
  const PlayerStatus s = PlayerStatus::load(ctx.daemon);
  const bool want_pause = args.empty() ? s.state == "play" : parse_bool(args[0]);
  if (s.state == "play" && want_pause) {
    ctx.daemon.call("player.pause");
  } else if (s.state == "pause" && !want_pause) {
    ctx.daemon.call("player.resume");
  } else if (!s.audio_available) {
    ctx.daemon.call("player.pause");  // nothing to change, but say why nothing ever plays
  }
  return Result::ok;
}

Result handle_stop(Context& ctx, const Args&) {
  ctx.daemon.call("player.stop");
  return Result::ok;
}

Result handle_next(Context& ctx, const Args&) {
  ctx.daemon.call("player.next");
  return Result::ok;
}

Result handle_previous(Context& ctx, const Args&) {
  try {
    ctx.daemon.call("player.previous");
  } catch (const RpcFailure& e) {
    if (e.code() != Ack::no_exist) throw;
    // No history yet: MPD starts the current song over (or does nothing when stopped).
    if (PlayerStatus::load(ctx.daemon).state != "stop")
      ctx.daemon.call("player.seek", {{"seconds", 0}});
  }
  return Result::ok;
}

Result handle_seek(Context& ctx, const Args& args) {
  const unsigned position = parse_unsigned(args[0]);
  const double seconds = parse_song_time(args[1]);
  const Now now = look_now(ctx.shared, ctx.daemon);
  seek_track(ctx, now, id_at(now.queue, position), seconds);
  return Result::ok;
}

Result handle_seekid(Context& ctx, const Args& args) {
  const std::int64_t id = parse_unsigned(args[0]);
  const double seconds = parse_song_time(args[1]);
  const Now now = look_now(ctx.shared, ctx.daemon);
  if (std::find(now.queue.ids.begin(), now.queue.ids.end(), id) == now.queue.ids.end())
    throw MpdError(Ack::no_exist, "No such song");
  seek_track(ctx, now, id, seconds);
  return Result::ok;
}

Result handle_seekcur(Context& ctx, const Args& args) {
  const std::string& text = args[0];
  const bool relative = !text.empty() && (text.front() == '+' || text.front() == '-');
  const double value = parse_float(text);
  const PlayerStatus s = PlayerStatus::load(ctx.daemon);
  if (!s.audio_available) ctx.daemon.call("player.seek", {{"seconds", 0}});  // ACKs why
  if (s.state == "stop") throw MpdError(Ack::player_sync, "Not playing");
  const double target = std::max(0.0, relative ? s.elapsed + value : value);
  ctx.daemon.call("player.seek", {{"seconds", target}});
  return Result::ok;
}

Result handle_setvol(Context& ctx, const Args& args) {
  set_volume(ctx, static_cast<int>(parse_unsigned(args[0], 100)));
  return Result::ok;
}

Result handle_volume(Context& ctx, const Args& args) {
  const int change = parse_int(args[0], -100, 100);
  const int old_volume = PlayerStatus::load(ctx.daemon).volume;
  const int new_volume = std::clamp(old_volume + change, 0, 100);
  if (new_volume != old_volume) set_volume(ctx, new_volume);
  return Result::ok;
}

Result handle_getvol(Context& ctx, const Args&) {
  ctx.pair("volume", std::to_string(PlayerStatus::load(ctx.daemon).volume));
  return Result::ok;
}

// tuneloop's player keeps no error state for MPD to clear.
Result handle_clearerror(Context&, const Args&) { return Result::ok; }

}  // namespace tuneloop::mpd

// `sticker … song …` (MPD's StickerCommands.cxx) as feedback: rating and like become the
// track's rating through the `rate` and `rating.clear` methods (committed before OK; the
// daemon's rating.recorded event raises the `sticker` idle event), and the listening
// log answers playCount and the rest. The rules are in mpd/stickers.hpp.
#include "mpd/handlers.hpp"

#include <map>
#include <optional>

namespace tuneloop::mpd {

using nlohmann::json;

namespace {

using StickerMap = std::map<std::string, std::string>;

std::vector<PlayFacts> play_facts(const json& plays) {
  std::vector<PlayFacts> out;
  for (const auto& p : plays) {
    PlayFacts f;
    f.started_at_ms = p.value("started_at", std::int64_t{0});
    f.seconds_heard = p.value("seconds_heard", 0.0);
    if (auto r = p.find("reason"); r != p.end() && r->is_string()) f.reason = r->get<std::string>();
    out.push_back(std::move(f));
  }
  return out;
}

// The track's current rating: the last row of its history, unless that row cleared it.
std::optional<double> current_stars(Context& ctx, std::int64_t track_id) {
  const json history = ctx.daemon.call("ratings.list", {{"track_id", track_id}});
  if (history.empty()) return std::nullopt;
  const json& last = history.back();
  if (!last.contains("stars") || !last["stars"].is_number()) return std::nullopt;
  return last["stars"].get<double>();
}

void add_rating_stickers(Context& ctx, std::int64_t track_id, std::optional<double> stars,
                         StickerMap& out) {
  if (!stars) return;
  out[std::string(kRatingSticker)] = ctx.shared.echo.value(track_id, kRatingSticker, *stars);
  out[std::string(kLikeSticker)] = ctx.shared.echo.value(track_id, kLikeSticker, *stars);
}

StickerMap stickers_of(Context& ctx, const Song& song) {
  StickerMap out = play_stickers(
      play_facts(ctx.daemon.call("plays.list", {{"track_id", song.id}, {"limit", 100000}})));
  add_rating_stickers(ctx, song.id, current_stars(ctx, song.id), out);
  return out;
}

void print_sticker(Context& ctx, const std::string& name, const std::string& value) {
  ctx.pair("sticker", name + "=" + value);
}

void clear_rating(Context& ctx, std::int64_t track_id) {
  ctx.daemon.call("rating.clear", {{"track_id", track_id}});
  ctx.shared.echo.forget(track_id);
}

void set_sticker(Context& ctx, const Song& song, const std::string& name, const std::string& value) {
  const bool rating = name == kRatingSticker, like = name == kLikeSticker;
  if (!rating && !like) return;  // the listening log's own, or a name tuneloop keeps nothing for
  const RatingChange change = rating ? rating_change(value) : like_change(value);
  if (change.clear) {
    clear_rating(ctx, song.id);
    return;
  }
  ctx.daemon.call("rate", {{"track_id", song.id}, {"stars", change.stars}});
  ctx.shared.echo.forget(song.id);
  ctx.shared.echo.remember(song.id, name, value, change.stars);
}

void delete_sticker(Context& ctx, const Song& song, const std::optional<std::string>& name) {
  const StickerMap present = stickers_of(ctx, song);
  const bool rated = present.count(std::string(kRatingSticker)) > 0;
  if (!name) {
    if (present.empty()) throw MpdError(Ack::no_exist, "no such sticker");
    if (rated) clear_rating(ctx, song.id);
    return;
  }
  if (!present.count(*name)) throw MpdError(Ack::no_exist, "no such sticker");
  if (*name == kRatingSticker || *name == kLikeSticker) clear_rating(ctx, song.id);
  // The listening log's stickers stay: tuneloop's records are the source of truth.
}

// Every song under `base` ("" = all, a folder, or one song's URI).
std::vector<const Song*> songs_under(Context& ctx, std::string_view base) {
  const Library& lib = ctx.shared.library.fresh(ctx.daemon);
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  std::vector<const Song*> out;
  if (const Song* s = lib.find_uri(base)) {
    out.push_back(s);
    return out;
  }
  if (!base.empty() && !lib.has_folder(base)) throw MpdError(Ack::no_exist, "No such directory");
  for (const auto& s : lib.songs)
    if (base.empty() || s.directory == base) out.push_back(&s);
  return out;
}

void find_stickers(Context& ctx, const Args& args) {
  const std::string& name = args[3];
  std::optional<std::pair<std::string, std::string>> condition;
  if (args.size() == 6) {
    if (args[4] != "=" && args[4] != "<" && args[4] != ">") throw MpdError(Ack::arg, "bad operator");
    condition.emplace(args[4], args[5]);
  }
  const auto songs = songs_under(ctx, args[2]);
  std::map<std::int64_t, std::string> values;  // track id -> sticker value
  if (name == kRatingSticker || name == kLikeSticker) {
    for (const auto& r : ctx.daemon.call("ratings.list")) {
      if (!r.contains("stars") || !r["stars"].is_number()) continue;
      const auto id = r.value("track_id", std::int64_t{0});
      values[id] = ctx.shared.echo.value(id, name, r["stars"].get<double>());
    }
  } else if (is_play_sticker(name)) {
    std::map<std::int64_t, json> by_track;
    for (const auto& p : ctx.daemon.call("plays.list", {{"limit", 100000}}))
      if (p.contains("track_id") && p["track_id"].is_number_integer())
        by_track[p["track_id"].get<std::int64_t>()].push_back(p);
    for (const auto& [id, plays] : by_track) {
      const StickerMap m = play_stickers(play_facts(plays));
      if (auto it = m.find(name); it != m.end()) values[id] = it->second;
    }
  }
  for (const Song* s : songs) {
    auto it = values.find(s->id);
    if (it == values.end()) continue;
    if (condition && !sticker_compare(it->second, condition->first, condition->second)) continue;
    ctx.pair("file", s->uri);
    print_sticker(ctx, name, it->second);
  }
}

}  // namespace

Result handle_sticker(Context& ctx, const Args& args) {
  if (args[1] != "song") throw MpdError(Ack::arg, "unknown sticker domain");
  const std::string& sub = args[0];
  if (args.size() == 4 && sub == "get") {
    const StickerMap m = stickers_of(ctx, song_at(ctx, args[2]));
    auto it = m.find(args[3]);
    if (it == m.end()) throw MpdError(Ack::no_exist, "no such sticker");
    print_sticker(ctx, it->first, it->second);
  } else if (args.size() == 3 && sub == "list") {
    for (const auto& [name, value] : stickers_of(ctx, song_at(ctx, args[2])))
      print_sticker(ctx, name, value);
  } else if (args.size() == 5 && sub == "set") {
    set_sticker(ctx, song_at(ctx, args[2]), args[3], args[4]);
  } else if ((args.size() == 3 || args.size() == 4) && sub == "delete") {
    delete_sticker(ctx, song_at(ctx, args[2]),
                   args.size() == 4 ? std::optional<std::string>(args[3]) : std::nullopt);
  } else if ((args.size() == 4 || args.size() == 6) && sub == "find") {
    find_stickers(ctx, args);
  } else {
    throw MpdError(Ack::arg, "bad request");
  }
  return Result::ok;
}

}  // namespace tuneloop::mpd

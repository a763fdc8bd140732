#include "mpd/stickers.hpp"

#include "mpd/protocol.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <cmath>

namespace tuneloop::mpd {

namespace {

std::optional<long long> whole_number(std::string_view s) noexcept {
  long long v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string seconds_text(double s) { return std::to_string(std::llround(std::max(0.0, s))); }

}  // namespace

RatingChange rating_change(std::string_view value) {
  const auto v = whole_number(value);
  if (!v || *v < 0 || *v > 10)
    throw MpdError(Ack::arg, "rating must be an integer from 0 to 10, not \"" +
                                 std::string(value) + "\"");
  if (*v == 0) return {true, 0};
  // 1 would be half a star, below tuneloop's scale: it counts as one star, as 2 does.
  return {false, std::max(1.0, static_cast<double>(*v) / 2.0)};
}

RatingChange like_change(std::string_view value) {
  const auto v = whole_number(value);
  if (!v || *v < 0 || *v > 2)
    throw MpdError(Ack::arg, "like must be 0, 1 or 2, not \"" + std::string(value) + "\"");
  if (*v == 1) return {true, 0};  // neutral: no opinion
  return {false, *v == 2 ? 5.0 : 1.0};
}

int rating_value(double stars) noexcept { return static_cast<int>(std::lround(stars * 2)); }

int like_value(double stars) noexcept {
  if (stars >= 4) return 2;
  if (stars <= 2) return 0;
  return 1;
}

void StickerEcho::remember(std::int64_t track_id, std::string_view name, std::string value,
                           double stars) {
  entries_[{track_id, std::string(name)}] = Entry{std::move(value), stars};
}

void StickerEcho::forget(std::int64_t track_id) noexcept {
  for (auto it = entries_.begin(); it != entries_.end();)
    it = it->first.first == track_id ? entries_.erase(it) : std::next(it);
}

std::string StickerEcho::value(std::int64_t track_id, std::string_view name, double stars) const {
  if (auto it = entries_.find({track_id, std::string(name)});
      it != entries_.end() && it->second.stars == stars)
    return it->second.value;
  return std::to_string(name == kLikeSticker ? like_value(stars) : rating_value(stars));
}

std::map<std::string, std::string> play_stickers(const std::vector<PlayFacts>& plays) {
  int played = 0, skipped = 0;
  std::optional<std::int64_t> last_played, last_skipped;
  for (const auto& p : plays) {
    if (p.reason == "completed" || p.reason == "stopped") {
      ++played;
      if (!last_played) last_played = p.started_at_ms / 1000;
    } else if (p.reason == "skipped") {
      ++skipped;
      if (!last_skipped) last_skipped = p.started_at_ms / 1000;
    }
  }
  std::map<std::string, std::string> out;
  if (played > 0) out["playCount"] = std::to_string(played);
  if (skipped > 0) out["skipCount"] = std::to_string(skipped);
  if (last_played) out["lastPlayed"] = std::to_string(*last_played);
  if (last_skipped) out["lastSkipped"] = std::to_string(*last_skipped);
  if (!plays.empty()) out["elapsed"] = seconds_text(plays.front().seconds_heard);
  return out;
}

bool is_play_sticker(std::string_view name) noexcept {
  return name == "playCount" || name == "skipCount" || name == "lastPlayed" ||
         name == "lastSkipped" || name == "elapsed";
}

bool sticker_compare(std::string_view value, std::string_view op, std::string_view operand) {
  const auto a = whole_number(value), b = whole_number(operand);
  int order = 0;
  if (a && b)
    order = *a < *b ? -1 : (*a > *b ? 1 : 0);
  else
    order = value < operand ? -1 : (value > operand ? 1 : 0);
  if (op == "<") return order < 0;
  if (op == ">") return order > 0;
  return order == 0;
}

}  // namespace tuneloop::mpd

#pragma once
// Stickers are feedback: the rules that turn what Cantata and myMPD store as MPD song
// stickers into tuneloop ratings, and what tuneloop's own records answer back. Pure (no
// daemon calls), so the rules are tested on their own; docs/mpd.md states them.
//
//  rating (Cantata, myMPD: 0–10): 0 clears the rating; v in 1..10 rates max(1, v/2)
//         stars (1 and 2 are both one star, 7 is 3.5). `sticker get` answers the value
//         the client set while that rating stands, else stars × 2.
//  like   (myMPD: 0 dislike, 1 neutral, 2 like): 0 rates 1 star, 2 rates 5 stars, 1
//         clears the rating. Read back: the value set while it stands, else 2 for 4 stars
//         or more, 0 for 2 or fewer, 1 between. Both write the one rating a track has,
//         so whichever was set last wins.
//  playCount, skipCount, lastPlayed, lastSkipped, elapsed: from the listening log (plays);
//         writes are accepted and ignored, as are stickers of any other name.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tuneloop::mpd {

inline constexpr std::string_view kRatingSticker = "rating";
inline constexpr std::string_view kLikeSticker = "like";

/// What a sticker write asks of the rating: `clear`, or `stars` (1–5 in half steps).
struct RatingChange {
  bool clear = false;
  double stars = 0;
};

/// The change a `rating` value asks for. Throws MpdError(Ack::arg) unless it is an
/// integer 0..10.
RatingChange rating_change(std::string_view value);
/// The change a `like` value asks for. Throws MpdError(Ack::arg) unless it is 0, 1 or 2.
RatingChange like_change(std::string_view value);
/// The `rating` value that stands for `stars` (stars × 2, rounded).
int rating_value(double stars) noexcept;
/// The `like` value that stands for `stars`.
int like_value(double stars) noexcept;

/// Remembers the raw value a client last set per track and sticker, so `sticker get`
/// answers what was set (1 stays 1, not 2) while the rating it made still stands.
/// In memory only: after a restart values are recomputed from the stars.
class StickerEcho {
 public:
  void remember(std::int64_t track_id, std::string_view name, std::string value, double stars);
  void forget(std::int64_t track_id) noexcept;
  /// The value to answer for `name` given the track's current stars.
  std::string value(std::int64_t track_id, std::string_view name, double stars) const;

 private:
  struct Entry {
    std::string value;
    double stars = 0;
  };
  std::map<std::pair<std::int64_t, std::string>, Entry> entries_;
};

/// One finished or running play of a track, as plays.list reports it.
struct PlayFacts {
  std::int64_t started_at_ms = 0;
  double seconds_heard = 0;
  std::string reason;  // completed | skipped | stopped | interrupted | "" (running)
};

/// The read-only stickers a track's plays answer, by name (absent when zero or unknown):
/// playCount (completed or stopped after the skip threshold), skipCount, lastPlayed and
/// lastSkipped (Unix seconds of the newest such play), elapsed (seconds heard in the
/// newest play). `plays` newest first.
std::map<std::string, std::string> play_stickers(const std::vector<PlayFacts>& plays);

/// Whether a sticker of this name is answered from the listening log.
bool is_play_sticker(std::string_view name) noexcept;

/// `sticker find` comparison: numbers compare as numbers, anything else as text.
/// `op` is "=", "<" or ">".
bool sticker_compare(std::string_view value, std::string_view op, std::string_view operand);

}  // namespace tuneloop::mpd

#pragma once
// The preference score: how much a listener liked one generated track, from their
// latest star rating and their listening. The formula, with a worked example, is in
// docs/feedback.md; every weight comes from config::FeedbackConfig.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/store.hpp"

namespace tuneloop::loop {

using UnixMs = std::int64_t;

/// One finished play of a track.
struct PlayInput {
  double seconds_heard = 0;  // audio that reached the output, pauses excluded
  double duration_s = 0;     // the track's length; plays with 0 are ignored
  store::EndReason end_reason = store::EndReason::completed;
  UnixMs ended_at = 0;
};

/// Everything the score needs about one generated track (and the tags the loop drew it
/// with, which the score does not read).
struct TrackInput {
  std::int64_t track_id = 0;
  std::string path;
  std::optional<double> stars;  // latest rating (1..5 in half stars); empty = unrated
  UnixMs rated_at = 0;          // when the latest rating was given
  std::vector<PlayInput> plays;
  // Its tags when the loop drew them (generation.learn_tags); empty for every other track.
  std::optional<std::vector<std::string>> drawn_tags;
};

/// The listener's own rating range (min and max over their current ratings).
struct RatingRange {
  double min = 1;
  double max = 5;
};

/// A score and the parts it was made of, so the manifest can say why.
struct PreferenceScore {
  bool has_feedback = false;     // rated, or at least one counted play
  bool rated = false;            // the rating entered the score
  std::optional<double> stars;   // latest rating as given (even when not used)
  double normalised_rating = 0;  // r̂ in [0, 1]; 0 when not rated
  double listen_fraction = 0;    // f: mean over counted plays of min(1, heard / duration)
  int plays = 0;                 // counted plays (interrupted ones are not counted)
  int skips = 0;                 // counted plays with f_i < skip_fraction
  int replays = 0;               // non-skip plays beyond the first
  double listen = 0;             // ℓ = f + replay_bonus · replays
  double recency = 1;            // ρ: 0.5^(age / half-life), 1 when decay is off
  UnixMs last_feedback_at = 0;   // newest rating or play end
  double score = 0;              // s
};

/// r̂ = (stars − min) / (max − min), clamped to [0, 1]; 0.5 when max == min.
double normalise_rating(double stars, const RatingRange& range) noexcept;

/// min and max of the given ratings; nullopt when there are none.
std::optional<RatingRange> rating_range(const std::vector<TrackInput>& tracks) noexcept;

/// Scores one track. `range` empty means ratings are not used (too few of them, see
/// DatasetConfig::min_ratings), so the track is scored as if unrated.
/// `now` is the reference time for recency decay.
PreferenceScore score_track(const TrackInput& track, const std::optional<RatingRange>& range,
                            const config::FeedbackConfig& feedback, UnixMs now);

/// Scores all of a listener's tracks together: the rating range is taken over their
/// current ratings, and ratings enter the score only if there are at least
/// `min_ratings` of them. Result i belongs to tracks[i].
std::vector<PreferenceScore> score_tracks(const std::vector<TrackInput>& tracks,
                                          const config::FeedbackConfig& feedback, int min_ratings,
                                          UnixMs now);

/// Whether the track has any feedback the score counts: a current rating, or a play
/// that was not interrupted and has a known duration.
bool has_feedback(const TrackInput& track) noexcept;

/// A short human-readable account, e.g. "rated 4.5 → 0.88, heard 100 %, 1 replay".
std::string describe(const PreferenceScore& score);

}  // namespace tuneloop::loop

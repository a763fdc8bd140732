#include "loop/preference.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tuneloop::loop {

namespace {

constexpr double kMsPerDay = 86'400'000.0;

std::string format_number(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// Half stars print as "4.5", whole ones as "4".
std::string format_stars(double stars) {
  return std::fabs(stars - std::round(stars)) < 1e-9 ? format_number(stars, 0)
                                                     : format_number(stars, 1);
}

}  // namespace

double normalise_rating(double stars, const RatingRange& range) noexcept {
  if (!(range.max > range.min)) return 0.5;
  return std::clamp((stars - range.min) / (range.max - range.min), 0.0, 1.0);
}

std::optional<RatingRange> rating_range(const std::vector<TrackInput>& tracks) noexcept {
  std::optional<RatingRange> range;
  for (const auto& track : tracks) {
    if (!track.stars) continue;
    if (!range) {
      range = RatingRange{*track.stars, *track.stars};
    } else {
      range->min = std::min(range->min, *track.stars);
      range->max = std::max(range->max, *track.stars);
    }
  }
  return range;
}

bool has_feedback(const TrackInput& track) noexcept {
  if (track.stars) return true;
  return std::any_of(track.plays.begin(), track.plays.end(), [](const PlayInput& play) {
    return play.end_reason != store::EndReason::interrupted && play.duration_s > 0;
  });
}

PreferenceScore score_track(const TrackInput& track, const std::optional<RatingRange>& range,
                            const config::FeedbackConfig& feedback, UnixMs now) {
  PreferenceScore result;
  result.stars = track.stars;
  if (track.stars) result.last_feedback_at = track.rated_at;

  double fraction_sum = 0;
  for (const auto& play : track.plays) {
    // An interrupted play ended because tuneloop stopped, not because the listener chose to.
    if (play.end_reason == store::EndReason::interrupted || !(play.duration_s > 0)) continue;
    const double f = std::clamp(play.seconds_heard / play.duration_s, 0.0, 1.0);
    fraction_sum += f;
    ++result.plays;
    if (f < feedback.skip_fraction) ++result.skips;
    result.last_feedback_at = std::max(result.last_feedback_at, play.ended_at);
  }
  const int full_plays = result.plays - result.skips;
  result.replays = std::max(0, full_plays - 1);
  if (result.plays > 0) {
    result.listen_fraction = fraction_sum / result.plays;
    result.listen = result.listen_fraction + feedback.replay_bonus * result.replays;
  }

  result.rated = track.stars.has_value() && range.has_value();
  result.has_feedback = result.plays > 0 || track.stars.has_value();
  if (!result.has_feedback) return result;

  double raw = 0;
  if (result.rated) {
    result.normalised_rating = normalise_rating(*track.stars, *range);
    // A rating with no play to go with it stands in for the listening part too, so that
    // missing listening data does not read as a skip.
    raw = result.plays > 0
              ? feedback.rating_weight * result.normalised_rating +
                    feedback.listen_weight * result.listen
              : (feedback.rating_weight + feedback.listen_weight) * result.normalised_rating;
  } else {
    raw = feedback.unrated_weight * result.listen;
  }

  if (feedback.recency_half_life_days > 0) {
    const double age_days =
        std::max<double>(0.0, static_cast<double>(now - result.last_feedback_at)) / kMsPerDay;
    result.recency = std::pow(0.5, age_days / feedback.recency_half_life_days);
  }
  result.score = result.recency * raw;
  return result;
}

std::vector<PreferenceScore> score_tracks(const std::vector<TrackInput>& tracks,
                                          const config::FeedbackConfig& feedback, int min_ratings,
                                          UnixMs now) {
  int rated = 0;
  for (const auto& track : tracks) rated += track.stars.has_value() ? 1 : 0;
  // Min–max normalisation over a handful of ratings is too unstable to trust.
  const std::optional<RatingRange> range =
      rated >= std::max(1, min_ratings) ? rating_range(tracks) : std::nullopt;

  std::vector<PreferenceScore> scores;
  scores.reserve(tracks.size());
  for (const auto& track : tracks) scores.push_back(score_track(track, range, feedback, now));
  return scores;
}

std::string describe(const PreferenceScore& score) {
  std::string text;
  if (score.stars) {
    text = "rated " + format_stars(*score.stars);
    text += score.rated ? " → " + format_number(score.normalised_rating, 2)
                        : std::string(" (ratings not used yet)");
  } else {
    text = "unrated";
  }
  if (score.plays == 0) {
    text += ", not heard";
  } else {
    text += ", heard " + format_number(100.0 * score.listen_fraction, 0) + " %";
    if (score.plays > 1) text += " over " + std::to_string(score.plays) + " plays";
    if (score.skips > 0)
      text += ", " + std::to_string(score.skips) + (score.skips == 1 ? " skip" : " skips");
    if (score.replays > 0)
      text += ", " + std::to_string(score.replays) + (score.replays == 1 ? " replay" : " replays");
  }
  if (score.recency < 1.0) text += ", recency ×" + format_number(score.recency, 2);
  return text;
}

}  // namespace tuneloop::loop

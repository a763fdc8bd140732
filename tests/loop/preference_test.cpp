// Hand-computed cases of the preference score (docs/feedback.md). Defaults:
// rating_weight 0.7, listen_weight 0.3, unrated_weight 0.5, replay_bonus 0.1,
// skip_fraction 0.5, no recency decay.
#include "loop/preference.hpp"

#include <gtest/gtest.h>

namespace {

using tuneloop::config::FeedbackConfig;
using tuneloop::loop::normalise_rating;
using tuneloop::loop::PlayInput;
using tuneloop::loop::RatingRange;
using tuneloop::loop::score_track;
using tuneloop::loop::score_tracks;
using tuneloop::loop::TrackInput;
using tuneloop::store::EndReason;

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kNow = 1'800'000'000'000;

PlayInput play(double heard, double duration = 8.0, EndReason reason = EndReason::completed,
               std::int64_t ended_at = kNow) {
  return {heard, duration, reason, ended_at};
}

TrackInput track(std::optional<double> stars, std::vector<PlayInput> plays) {
  TrackInput t;
  t.track_id = 1;
  t.stars = stars;
  t.rated_at = stars ? kNow : 0;
  t.plays = std::move(plays);
  return t;
}

const RatingRange kFullRange{1.0, 5.0};

TEST(PreferenceScore, RatedFullyHeardTrackMixesRatingAndListenFraction) {
  // r̂ = (4.5 − 1)/(5 − 1) = 0.875; f = 1; s = 0.7·0.875 + 0.3·1 = 0.9125
  const auto s = score_track(track(4.5, {play(8)}), kFullRange, FeedbackConfig{}, kNow);
  EXPECT_TRUE(s.rated);
  EXPECT_DOUBLE_EQ(s.normalised_rating, 0.875);
  EXPECT_DOUBLE_EQ(s.listen_fraction, 1.0);
  EXPECT_DOUBLE_EQ(s.score, 0.9125);
}

TEST(PreferenceScore, SkipLowersTheMeanListenFractionAndEarnsNoReplay) {
  // plays 2/8 (a skip) and 8/8: f = (0.25 + 1)/2 = 0.625, one full play so no replay;
  // r̂ = 0.25; s = 0.7·0.25 + 0.3·0.625 = 0.3625
  const auto s = score_track(track(2.0, {play(2, 8, EndReason::skipped), play(8)}), kFullRange,
                             FeedbackConfig{}, kNow);
  EXPECT_EQ(s.plays, 2);
  EXPECT_EQ(s.skips, 1);
  EXPECT_EQ(s.replays, 0);
  EXPECT_DOUBLE_EQ(s.listen_fraction, 0.625);
  EXPECT_DOUBLE_EQ(s.score, 0.3625);
}

TEST(PreferenceScore, UnratedTrackUsesDownWeightedListeningWithReplayBonus) {
  // plays 8/8, 8/8, 6/8: f = 2.75/3; three non-skips → 2 replays; ℓ = f + 0.2;
  // s = 0.5·ℓ = 0.5583333…
  const auto s = score_track(track(std::nullopt, {play(8), play(8), play(6)}), kFullRange,
                             FeedbackConfig{}, kNow);
  EXPECT_FALSE(s.rated);
  EXPECT_EQ(s.replays, 2);
  EXPECT_NEAR(s.listen, 2.75 / 3 + 0.2, 1e-12);
  EXPECT_NEAR(s.score, 0.5 * (2.75 / 3 + 0.2), 1e-12);
}

TEST(PreferenceScore, ListeningBeyondTheDurationCountsAsTheWholeTrack) {
  const auto s =
      score_track(track(std::nullopt, {play(10, 8)}), std::nullopt, FeedbackConfig{}, kNow);
  EXPECT_DOUBLE_EQ(s.listen_fraction, 1.0);
  EXPECT_DOUBLE_EQ(s.score, 0.5);
}

TEST(PreferenceScore, InterruptedAndZeroDurationPlaysAreNotFeedback) {
  const auto s = score_track(track(std::nullopt, {play(1, 8, EndReason::interrupted), play(3, 0)}),
                             kFullRange, FeedbackConfig{}, kNow);
  EXPECT_FALSE(s.has_feedback);
  EXPECT_EQ(s.plays, 0);
  EXPECT_DOUBLE_EQ(s.score, 0.0);
  EXPECT_FALSE(
      tuneloop::loop::has_feedback(track(std::nullopt, {play(1, 8, EndReason::interrupted)})));
  EXPECT_TRUE(tuneloop::loop::has_feedback(track(3.0, {})));
}

TEST(PreferenceScore, RatingWithoutAnyPlayStandsInForListening) {
  // r̂ = 0.75; s = (0.7 + 0.3)·0.75
  const auto s = score_track(track(4.0, {}), kFullRange, FeedbackConfig{}, kNow);
  EXPECT_TRUE(s.has_feedback);
  EXPECT_DOUBLE_EQ(s.score, 0.75);
}

TEST(PreferenceScore, RatingIsNormalisedToTheListenersOwnRange) {
  EXPECT_DOUBLE_EQ(normalise_rating(3.0, {2.0, 4.0}), 0.5);
  EXPECT_DOUBLE_EQ(normalise_rating(4.0, {2.0, 4.0}), 1.0);
  EXPECT_DOUBLE_EQ(normalise_rating(3.0, {3.0, 3.0}), 0.5);  // one value: the middle
}

TEST(PreferenceScore, RecencyHalvesTheScoreEveryHalfLife) {
  FeedbackConfig feedback;
  feedback.recency_half_life_days = 10;
  auto t = track(5.0, {play(8, 8, EndReason::completed, kNow - 20 * kDay)});
  t.rated_at = kNow - 20 * kDay;
  const auto s = score_track(t, kFullRange, feedback, kNow);
  EXPECT_DOUBLE_EQ(s.recency, 0.25);
  EXPECT_DOUBLE_EQ(s.score, 0.25 * 1.0);
}

TEST(PreferenceScore, RecencyCountsFromTheNewestFeedback) {
  FeedbackConfig feedback;
  feedback.recency_half_life_days = 10;
  auto t = track(5.0, {play(8, 8, EndReason::completed, kNow - 10 * kDay)});
  t.rated_at = kNow - 30 * kDay;  // rated long ago, heard again 10 days ago
  const auto s = score_track(t, kFullRange, feedback, kNow);
  EXPECT_DOUBLE_EQ(s.recency, 0.5);
}

TEST(PreferenceScore, EveryWeightComesFromTheConfig) {
  FeedbackConfig feedback;
  feedback.rating_weight = 0.2;
  feedback.listen_weight = 0.8;
  feedback.unrated_weight = 0.25;
  feedback.replay_bonus = 0.5;
  feedback.skip_fraction = 0.9;
  // rated 5 (r̂ 1), plays 8/8 and 7.6/8 (0.95 ≥ 0.9, a replay): f = 0.975, ℓ = 1.475
  const auto rated = score_track(track(5.0, {play(8), play(7.6)}), kFullRange, feedback, kNow);
  EXPECT_NEAR(rated.score, 0.2 * 1 + 0.8 * 1.475, 1e-12);
  // unrated, one play 6/8 (a skip under 0.9): s = 0.25·0.75
  const auto unrated = score_track(track(std::nullopt, {play(6)}), kFullRange, feedback, kNow);
  EXPECT_EQ(unrated.skips, 1);
  EXPECT_DOUBLE_EQ(unrated.score, 0.1875);
}

TEST(PreferenceScores, RatingsEnterOnlyOnceThereAreMinRatingsOfThem) {
  const std::vector<TrackInput> tracks = {track(5.0, {play(8)}), track(2.0, {play(8)})};
  const auto few = score_tracks(tracks, FeedbackConfig{}, 3, kNow);
  EXPECT_FALSE(few[0].rated);
  EXPECT_DOUBLE_EQ(few[0].score, 0.5);  // unrated: 0.5 · 1
  const auto enough = score_tracks(tracks, FeedbackConfig{}, 2, kNow);
  ASSERT_TRUE(enough[0].rated);
  // the listener's range is 2..5: r̂(5) = 1, r̂(2) = 0
  EXPECT_DOUBLE_EQ(enough[0].score, 1.0);
  EXPECT_DOUBLE_EQ(enough[1].score, 0.3);
}

TEST(PreferenceScores, DescriptionNamesRatingListeningAndReplays) {
  const auto s = score_track(track(4.5, {play(8), play(8)}), kFullRange, FeedbackConfig{}, kNow);
  EXPECT_EQ(tuneloop::loop::describe(s), "rated 4.5 → 0.88, heard 100 % over 2 plays, 1 replay");
}

}  // namespace

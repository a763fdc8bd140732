#include "loop/dataset_builder.hpp"

#include <gtest/gtest.h>

namespace {

using tuneloop::config::DatasetConfig;
using tuneloop::config::FeedbackConfig;
using tuneloop::loop::DatasetBuilder;
using tuneloop::loop::DatasetInputs;
using tuneloop::loop::Manifest;
using tuneloop::loop::ManifestError;
using tuneloop::loop::ManifestItem;
using tuneloop::loop::percentile;
using tuneloop::loop::PlayInput;
using tuneloop::loop::TrackInput;
using tuneloop::store::EndReason;

constexpr std::int64_t kNow = 1'800'000'000'000;

TEST(Percentile, InterpolatesLinearlyBetweenClosestRanksLikeNumpy) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 75), 3.25);          // h = 2.25
  EXPECT_DOUBLE_EQ(percentile({50, 15, 40, 20, 35}, 40), 29.0);  // sorted, h = 1.6
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 50), 2.0);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 100), 3.0);
  EXPECT_DOUBLE_EQ(percentile({7}, 75), 7.0);
}

TEST(Percentile, RejectsNoValuesAndOutOfRangePercent) {
  EXPECT_THROW(percentile({}, 50), std::invalid_argument);
  EXPECT_THROW(percentile({1, 2}, 101), std::invalid_argument);
  EXPECT_THROW(percentile({1, 2}, -1), std::invalid_argument);
}

TrackInput rated_track(std::int64_t id, std::optional<double> stars, double heard = 8) {
  TrackInput t;
  t.track_id = id;
  t.path = "tracks/" + std::to_string(id) + ".wav";
  t.stars = stars;
  t.rated_at = kNow;
  if (heard > 0) t.plays.push_back(PlayInput{heard, 8.0, EndReason::completed, kNow});
  return t;
}

// Five rated, fully heard tracks (range 1..5) and one never touched. Scores with the
// defaults: 5★ → 1.0, 4.5★ → 0.9125, 4★ → 0.825, 3★ → 0.65, 1★ → 0.3; the 75th
// percentile of those five is exactly 0.9125 (h = 3).
DatasetInputs five_rated_tracks() {
  DatasetInputs inputs;
  inputs.listener_id = 7;
  inputs.songs = {{11, "songs/a.flac", "a.flac"}, {12, "songs/b.wav", "b.wav"}};
  inputs.tracks = {rated_track(1, 3.0), rated_track(2, 5.0), rated_track(3, 1.0),
                   rated_track(4, 4.5), rated_track(5, 4.0), rated_track(6, std::nullopt, 0)};
  return inputs;
}

DatasetConfig dataset_config() {
  DatasetConfig dataset;
  dataset.min_ratings = 1;
  return dataset;
}

TEST(DatasetBuilder, KeepsSongsAndTracksAtOrAboveThePercentileBestFirst) {
  const Manifest m =
      DatasetBuilder(FeedbackConfig{}, dataset_config()).build(five_rated_tracks(), 3, kNow);
  EXPECT_EQ(m.iteration, 3);
  EXPECT_EQ(m.listener_id, 7);
  ASSERT_TRUE(m.threshold);
  EXPECT_DOUBLE_EQ(*m.threshold, 0.9125);
  ASSERT_EQ(m.items.size(), 4u);
  EXPECT_EQ(m.items[0].kind, ManifestItem::Kind::song);
  EXPECT_EQ(m.items[0].id, 11);
  EXPECT_DOUBLE_EQ(m.items[0].weight, 1.0);
  EXPECT_EQ(m.items[1].id, 12);
  EXPECT_EQ(m.items[2].kind, ManifestItem::Kind::track);
  EXPECT_EQ(m.items[2].id, 2);
  EXPECT_DOUBLE_EQ(m.items[2].weight, 1.0);
  EXPECT_EQ(m.items[3].id, 4);  // exactly at the threshold: kept
  EXPECT_DOUBLE_EQ(m.items[3].weight, 0.9125);
  EXPECT_EQ(m.items[2].reason, "score 1.00 ≥ p75 0.91 (rated 5 → 1.00, heard 100 %)");
  EXPECT_EQ(m.song_count(), 2);
  EXPECT_EQ(m.track_count(), 2);
  EXPECT_EQ(m.tracks_considered, 6);
  EXPECT_EQ(m.tracks_with_feedback, 5);
  EXPECT_EQ(m.excluded.no_feedback, 1);
  EXPECT_EQ(m.excluded.below_threshold, 3);
  EXPECT_TRUE(m.ratings_used);
  EXPECT_TRUE(m.negatives.empty());
}

TEST(DatasetBuilder, ListsExplicitlyDislikedTracksAsNegativesWhenAsked) {
  DatasetConfig dataset = dataset_config();
  dataset.use_negatives = true;  // p25 of the five scores = 0.65 (h = 1)
  const Manifest m = DatasetBuilder(FeedbackConfig{}, dataset).build(five_rated_tracks(), 1, kNow);
  ASSERT_TRUE(m.negative_threshold);
  EXPECT_DOUBLE_EQ(*m.negative_threshold, 0.65);
  // 3★ scores 0.65 too, but r̂ = 0.5 is not a low rating; only 1★ (r̂ 0) qualifies.
  ASSERT_EQ(m.negatives.size(), 1u);
  EXPECT_EQ(m.negatives[0].id, 3);
  EXPECT_DOUBLE_EQ(m.negatives[0].weight, 1.0);
  EXPECT_EQ(m.track_count(), 2);  // negatives never join the training items
}

TEST(DatasetBuilder, LeavesSongsOutWhenConfiguredAndUsesTheSongWeight) {
  DatasetConfig dataset = dataset_config();
  dataset.include_songs = false;
  EXPECT_EQ(
      DatasetBuilder(FeedbackConfig{}, dataset).build(five_rated_tracks(), 1, kNow).song_count(),
      0);
  const Manifest weighted =
      DatasetBuilder(FeedbackConfig{}, dataset_config(), 2.5).build(five_rated_tracks(), 1, kNow);
  EXPECT_DOUBLE_EQ(weighted.items[0].weight, 2.5);
}

TEST(DatasetBuilder, IgnoresRatingsUntilThereAreMinRatings) {
  DatasetConfig dataset = dataset_config();
  dataset.min_ratings = 6;  // only five ratings
  const Manifest m = DatasetBuilder(FeedbackConfig{}, dataset).build(five_rated_tracks(), 1, kNow);
  EXPECT_FALSE(m.ratings_used);
  EXPECT_EQ(m.ratings_count, 5);
  // all five were heard fully, so all score 0.5 and all tie at the threshold
  EXPECT_EQ(m.track_count(), 5);
  EXPECT_DOUBLE_EQ(*m.threshold, 0.5);
}

TEST(DatasetBuilder, NeverKeepsATrackWhoseScoreIsZeroEvenWhenTheThresholdIsZero) {
  // Two ratings below min_ratings and nothing heard: every score is 0, so is the
  // percentile; a kept track would be a training example of weight 0.
  DatasetInputs inputs = five_rated_tracks();
  inputs.tracks = {rated_track(1, 5.0, 0), rated_track(2, 4.0, 0)};
  DatasetConfig dataset = dataset_config();
  dataset.min_ratings = 5;
  const Manifest m = DatasetBuilder(FeedbackConfig{}, dataset).build(inputs, 1, kNow);
  EXPECT_FALSE(m.ratings_used);
  ASSERT_TRUE(m.threshold);
  EXPECT_DOUBLE_EQ(*m.threshold, 0.0);
  EXPECT_EQ(m.track_count(), 0);
  EXPECT_EQ(m.excluded.below_threshold, 2);
  EXPECT_EQ(m.song_count(), 2);
  for (const auto& item : m.items) EXPECT_GT(item.weight, 0.0);
}

TEST(DatasetBuilder, WithoutAnyFeedbackKeepsOnlyTheSongs) {
  DatasetInputs inputs = five_rated_tracks();
  inputs.tracks = {rated_track(1, std::nullopt, 0)};
  const Manifest m = DatasetBuilder(FeedbackConfig{}, dataset_config()).build(inputs, 1, kNow);
  EXPECT_FALSE(m.threshold);
  EXPECT_EQ(m.song_count(), 2);
  EXPECT_EQ(m.track_count(), 0);
  EXPECT_EQ(m.excluded.no_feedback, 1);
}

TEST(DatasetBuilder, RejectsAPercentileOutsideZeroToHundred) {
  DatasetConfig dataset = dataset_config();
  dataset.percentile = 120;
  EXPECT_THROW(DatasetBuilder(FeedbackConfig{}, dataset).build(five_rated_tracks(), 1, kNow),
               std::invalid_argument);
}

TEST(Manifest, SurvivesAJsonRoundTripUnchanged) {
  DatasetConfig dataset = dataset_config();
  dataset.use_negatives = true;
  FeedbackConfig feedback;
  feedback.recency_half_life_days = 14;
  const Manifest m = DatasetBuilder(feedback, dataset, 1.5).build(five_rated_tracks(), 4, kNow);
  const std::string json = tuneloop::loop::to_json(m);
  const Manifest back = tuneloop::loop::manifest_from_json(json);
  EXPECT_TRUE(back == m);
  EXPECT_EQ(back.feedback.recency_half_life_days, 14);
  EXPECT_EQ(back.items.size(), m.items.size());
  EXPECT_EQ(tuneloop::loop::to_json(back), json);
  EXPECT_NE(json.find("\"reason\": \"score 1.00"), std::string::npos);
}

TEST(Manifest, ReadingBadJsonNamesTheProblem) {
  EXPECT_THROW(tuneloop::loop::manifest_from_json("{not json"), ManifestError);
  const Manifest m =
      DatasetBuilder(FeedbackConfig{}, dataset_config()).build(five_rated_tracks(), 1, kNow);
  std::string json = tuneloop::loop::to_json(m);
  const std::string key = "\"tracks_with_feedback\"";
  json.replace(json.find(key), key.size(), "\"renamed\"");
  try {
    tuneloop::loop::manifest_from_json(json);
    FAIL() << "a manifest without tracks_with_feedback was accepted";
  } catch (const ManifestError& e) {
    EXPECT_NE(std::string(e.what()).find("tracks_with_feedback"), std::string::npos);
  }
  std::string newer = tuneloop::loop::to_json(m);
  newer.replace(newer.find("\"format_version\": 1"), 19, "\"format_version\": 99");
  EXPECT_THROW(tuneloop::loop::manifest_from_json(newer), ManifestError);
}

}  // namespace

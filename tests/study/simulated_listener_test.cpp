#include "study/simulated_listener.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "audio/audio.hpp"
#include "audio/features.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop;
using namespace tuneloop::study;

namespace {

Participant bright_fast_fan() {
  Participant p;
  p.name = "bright_fast";
  p.taste.target = {{"brightness", 2000.0}, {"onset_rate", 6.0}};
  p.taste.weight = {{"brightness", 2.0}};
  p.noise = 0.0;
  p.skip_tendency = 1.0;
  return p;
}

audio::AudioFeatures track(double brightness, double onset_rate) {
  audio::AudioFeatures f;
  f.brightness = brightness;
  f.onset_rate = onset_rate;
  return f;
}

const std::map<std::string, double> kScale = {{"brightness", 500.0}, {"onset_rate", 1.5}};

}  // namespace

TEST(SimulatedListener, ATrackAtTheTasteGetsAHigherExpectedRatingThanAFarOne) {
  SimulatedListener l(bright_fast_fan(), RatingScale{}, kScale, 1);
  const auto at = track(2000, 6), near = track(1700, 5.5), far = track(400, 1.5);
  EXPECT_DOUBLE_EQ(l.distance(at), 0.0);
  EXPECT_DOUBLE_EQ(l.expected_rating(at), 5.0);
  EXPECT_GT(l.expected_rating(at), l.expected_rating(near));
  EXPECT_GT(l.expected_rating(near), l.expected_rating(far));
  EXPECT_LT(l.expected_rating(far), 1.1);
}

TEST(SimulatedListener, WeightsMakeAFeatureCountMore) {
  SimulatedListener l(bright_fast_fan(), RatingScale{}, kScale, 1);
  // One sd off in the weighted feature costs more than one sd off in the other.
  EXPECT_LT(l.expected_rating(track(1500, 6)), l.expected_rating(track(2000, 4.5)));
}

TEST(SimulatedListener, WithoutNoiseRatingsAreDeterministicAndRoundedToTheStep) {
  SimulatedListener a(bright_fast_fan(), RatingScale{1, 5, 0.5}, kScale, 1);
  SimulatedListener b(bright_fast_fan(), RatingScale{1, 5, 0.5}, kScale, 999);
  const auto t = track(1600, 5);
  const double first = a.rate(t);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a.rate(t), first);
    EXPECT_EQ(b.rate(t), first);
  }
  EXPECT_EQ(first, round_to_scale(a.expected_rating(t), RatingScale{1, 5, 0.5}));
}

TEST(SimulatedListener, NoisyRatingsStayOnTheScale) {
  for (double step : {0.5, 1.0}) {
    Participant p = bright_fast_fan();
    p.noise = 2.0;
    const RatingScale scale{1, 5, step};
    SimulatedListener l(p, scale, kScale, 7);
    std::set<double> seen;
    for (int i = 0; i < 2000; ++i) {
      const double r = l.rate(track(400 + i % 2000, 3));
      ASSERT_GE(r, 1.0);
      ASSERT_LE(r, 5.0);
      ASSERT_DOUBLE_EQ(std::round(r / step) * step, r);
      seen.insert(r);
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(4 / step + 1))
        << "noise 2 should reach every step";
  }
}

TEST(SimulatedListener, BiasShiftsRatingsAndNoiseAveragesOut) {
  Participant p = bright_fast_fan();
  p.bias = -1.0;
  p.noise = 0.5;
  SimulatedListener l(p, RatingScale{1, 5, 0.5}, kScale, 3);
  const auto t = track(1800, 5.5);
  SimulatedListener unbiased(bright_fast_fan(), RatingScale{1, 5, 0.5}, kScale, 3);
  EXPECT_NEAR(l.expected_rating(t), unbiased.expected_rating(t) - 1.0, 1e-12);
  double sum = 0;
  for (int i = 0; i < 4000; ++i) sum += l.rate(t);
  EXPECT_NEAR(sum / 4000, l.expected_rating(t), 0.1);
}

TEST(SimulatedListener, DislikedTracksAreSkippedEarlyAndLikedOnesHeardToTheEnd) {
  SimulatedListener l(bright_fast_fan(), RatingScale{}, kScale, 11);
  int skipped_far = 0;
  for (int i = 0; i < 200; ++i) {
    const ListenOutcome liked = l.listen(track(2000, 6), 8.0);
    EXPECT_FALSE(liked.skipped);
    EXPECT_DOUBLE_EQ(liked.seconds_heard, 8.0);
    const ListenOutcome disliked = l.listen(track(200, 1), 8.0);
    if (disliked.skipped) {
      ++skipped_far;
      EXPECT_LT(disliked.seconds_heard, 4.0) << "a skip stops before half the track";
      EXPECT_GT(disliked.seconds_heard, 0.0);
    }
  }
  EXPECT_GT(skipped_far, 190);
}

TEST(SimulatedListener, AListenerWithNoSkipTendencyHearsEverything) {
  Participant p = bright_fast_fan();
  p.skip_tendency = 0.0;
  SimulatedListener l(p, RatingScale{}, kScale, 5);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(l.listen(track(200, 1), 8.0).skipped);
}

TEST(SimulatedListener, DriftMovesTheTasteBetweenIterations) {
  Participant p = bright_fast_fan();
  p.drift = {{"brightness", 1.0}};  // one sd (500 Hz) brighter per iteration
  SimulatedListener l(p, RatingScale{}, kScale, 1);
  const auto old_favourite = track(2000, 6), brighter = track(2500, 6);
  EXPECT_GT(l.expected_rating(old_favourite), l.expected_rating(brighter));
  l.drift();
  EXPECT_DOUBLE_EQ(l.taste().target.at("brightness"), 2500.0);
  EXPECT_LT(l.expected_rating(old_favourite), l.expected_rating(brighter));
  EXPECT_DOUBLE_EQ(l.taste().target.at("onset_rate"), 6.0);
}

TEST(SimulatedListener, AHumanParticipantCannotBeSimulated) {
  Participant p;
  p.name = "alice";
  p.kind = Participant::Kind::human;
  EXPECT_THROW(SimulatedListener(p, RatingScale{}, kScale, 1), std::invalid_argument);
}

TEST(SimulatedListener, RatesTracksByTheFeaturesMeasuredFromTheirAudio) {
  // A bright, busy clip (clicks and a 3 kHz tone) and a dark, sustained one (150 Hz).
  audio::Audio bright, dark;
  bright.samples.resize(16000 * 4);
  dark.samples.resize(16000 * 4);
  for (std::size_t i = 0; i < bright.samples.size(); ++i) {
    const double t = static_cast<double>(i) / 16000;
    const bool click = (i % 2000) < 80;  // 8 clicks a second
    bright.samples[i] = static_cast<float>(
        0.3 * std::sin(2 * M_PI * 3000 * t) * ((i % 2000) < 600) + (click ? 0.4 : 0));
    dark.samples[i] = static_cast<float>(0.3 * std::sin(2 * M_PI * 150 * t));
  }
  const tuneloop::testing::TempDir tmp("pilot-listener");
  const std::filesystem::path& dir = tmp.path();
  audio::write_audio((dir / "bright.wav").string(), bright);
  audio::write_audio((dir / "dark.wav").string(), dark);
  const auto fb = audio::measure(audio::read_audio((dir / "bright.wav").string()));
  const auto fd = audio::measure(audio::read_audio((dir / "dark.wav").string()));
  ASSERT_GT(fb.brightness, fd.brightness);
  Participant p;
  p.name = "brightness_lover";
  p.taste.target = {{"brightness", fb.brightness}};
  p.noise = 0;
  SimulatedListener l(p, RatingScale{}, {{"brightness", 400.0}}, 1);
  EXPECT_GT(l.rate(fb), l.rate(fd));
}

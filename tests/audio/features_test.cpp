#include "audio/features.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

using namespace tuneloop::audio;

namespace {

constexpr int kRate = 16000;

Audio silence(double seconds) {
  Audio a;
  a.sample_rate = kRate;
  a.samples.assign(static_cast<std::size_t>(seconds * kRate), 0.0f);
  return a;
}

Audio click_train(double hz, double seconds) {
  Audio a = silence(seconds);
  const double period = kRate / hz;
  for (double t = 0.05 * kRate; t < a.samples.size(); t += period)
    a.samples[static_cast<std::size_t>(t)] = 0.9f;
  return a;
}

Audio sine(double hz, double seconds, double amplitude) {
  Audio a = silence(seconds);
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    a.samples[i] = static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * hz * i / kRate));
  }
  return a;
}

double midi_hz(int note) {
  return 440.0 * std::pow(2.0, (note - 69) / 12.0);
}

// Adds a note with a few harmonics and a short attack/decay envelope at [start, start+len).
void add_note(Audio& a, int midi, double start, double len, double amplitude) {
  const auto first = static_cast<std::size_t>(start * kRate);
  const auto count = static_cast<std::size_t>(len * kRate);
  for (std::size_t i = 0; i < count && first + i < a.samples.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    const double env = std::min(1.0, t / 0.01) * std::exp(-2.0 * t);
    double v = 0;
    for (int h = 1; h <= 3; ++h) v += std::sin(2 * std::numbers::pi * midi_hz(midi) * h * t) / h;
    a.samples[first + i] += static_cast<float>(amplitude * env * v);
  }
}

Audio chord_sequence(const std::vector<std::vector<int>>& chords) {
  Audio a = silence(chords.size() * 1.0);
  for (std::size_t c = 0; c < chords.size(); ++c) {
    for (int note : chords[c]) add_note(a, note, static_cast<double>(c), 1.0, 0.1);
  }
  return a;
}

}  // namespace

TEST(Features, AFourHertzClickTrainHasFourOnsetsPerSecond) {
  const AudioFeatures f = measure(click_train(4.0, 4.2));
  EXPECT_NEAR(f.onset_rate, 4.0, 0.3);
}

// Tempo is octave-folded towards 120 BPM: a 4 Hz pulse (240 BPM) reads as 120 BPM, its
// half-tempo; a 2 Hz pulse reads 120; a 1.5 Hz pulse reads 90 (not 180 or 45).
TEST(Features, TempoOfClickTrainsIsFoldedTowardsOneHundredTwenty) {
  EXPECT_NEAR(measure(click_train(4.0, 4.2)).tempo_bpm, 120.0, 3.0);
  EXPECT_NEAR(measure(click_train(2.0, 4.2)).tempo_bpm, 120.0, 3.0);
  EXPECT_NEAR(measure(click_train(1.5, 6.0)).tempo_bpm, 90.0, 3.0);
}

TEST(Features, BrightnessIsTheFrequencyOfASine) {
  const double low = measure(sine(1000, 2.0, 0.3)).brightness;
  const double high = measure(sine(4000, 2.0, 0.3)).brightness;
  EXPECT_NEAR(low, 1000.0, 30.0);
  EXPECT_NEAR(high, 4000.0, 60.0);
  EXPECT_LT(low, high);
}

TEST(Features, AMinorChordsScoreMinorAndCMajorChordsScoreMajor) {
  // i–iv–V–i in A minor and I–IV–V–I in C major, triads with three harmonics each.
  const Audio minor = chord_sequence({{57, 60, 64}, {62, 65, 69}, {64, 68, 71}, {57, 60, 64}});
  const Audio major = chord_sequence({{60, 64, 67}, {65, 69, 72}, {67, 71, 74}, {60, 64, 67}});
  EXPECT_GT(measure(minor).minorness, 0.0);
  EXPECT_LT(measure(major).minorness, 0.0);
}

TEST(Features, SustainedMinorAndMajorTriadsAreTellApart) {
  const Audio minor = chord_sequence({{57, 60, 64}, {57, 60, 64}});
  const Audio major = chord_sequence({{60, 64, 67}, {60, 64, 67}});
  EXPECT_GT(measure(minor).minorness, measure(major).minorness);
}

TEST(Features, LoudnessOfAMinusTwentyDbfsSineIsMinusTwenty) {
  const AudioFeatures f = measure(sine(440, 1.0, 0.1 * std::sqrt(2.0)));
  EXPECT_NEAR(f.loudness_db, -20.0, 0.1);
}

TEST(Features, WhiteNoiseIsFlatAndASineIsNot) {
  Audio noise = silence(2.0);
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 0.1f);
  for (float& s : noise.samples) s = gauss(rng);
  const double noise_flatness = measure(noise).flatness;
  const double sine_flatness = measure(sine(1000, 2.0, 0.3)).flatness;
  EXPECT_GT(noise_flatness, 0.4);
  EXPECT_LT(sine_flatness, 0.05);
}

TEST(Features, FasterMelodiesHaveHigherNoteDensity) {
  const std::vector<int> scale = {60, 62, 64, 65, 67, 69, 71, 72};
  Audio slow = silence(4.0), fast = silence(4.0);
  for (int i = 0; i < 8; ++i) add_note(slow, scale[i % 8], 0.5 * i, 0.5, 0.2);
  for (int i = 0; i < 24; ++i) add_note(fast, scale[i % 8], i / 6.0, 1.0 / 6.0, 0.2);
  const AudioFeatures f_slow = measure(slow), f_fast = measure(fast);
  EXPECT_NEAR(f_slow.note_density, 2.0, 0.6);
  EXPECT_NEAR(f_fast.note_density, 6.0, 1.5);
  EXPECT_GT(f_fast.onset_rate, f_slow.onset_rate);
}

TEST(Features, SilenceGivesZerosAndAFloorLoudness) {
  const AudioFeatures f = measure(silence(1.0));
  EXPECT_EQ(f.onset_rate, 0.0);
  EXPECT_EQ(f.brightness, 0.0);
  EXPECT_LE(f.loudness_db, -119.0);
  EXPECT_EQ(measure(Audio{}).onset_rate, 0.0);
}

TEST(Features, VectorAndNamesLineUp) {
  AudioFeatures f;
  f.brightness = 1234;
  const auto v = as_vector(f);
  ASSERT_EQ(v.size(), feature_names().size());
  EXPECT_EQ(v[2], 1234);
  EXPECT_EQ(feature_names()[2], "brightness");
}

TEST(Features, StandardisedDistanceWeighsFeaturesByTheirSpread) {
  AudioFeatures a, b, c;
  a.brightness = 1000;
  b.brightness = 3000;
  c = a;
  c.onset_rate = 2;  // 2 onsets/s is one standard deviation below, like 2000 Hz of brightness
  std::vector<AudioFeatures> set = {a, b};
  AudioFeatures d = a;
  d.onset_rate = 4;
  set.push_back(d);
  const FeatureScale scale = fit_scale(set);
  EXPECT_DOUBLE_EQ(feature_distance(a, a, scale), 0.0);
  EXPECT_GT(feature_distance(a, b, scale), 0.0);
  EXPECT_NEAR(feature_distance(a, b, scale) / feature_distance(a, d, scale),
              (2000.0 / scale.stddev[2]) / (4.0 / scale.stddev[0]), 1e-9);
  EXPECT_DOUBLE_EQ(mean_features(set).brightness, 5000.0 / 3);
}

namespace {

AudioFeatures clip(double brightness, double loudness_db, double flatness) {
  AudioFeatures f;
  f.onset_rate = 3.0;
  f.tempo_bpm = 110.0;
  f.brightness = brightness;
  f.loudness_db = loudness_db;
  f.flatness = flatness;
  return f;
}

}  // namespace

TEST(Features, TheNearestSetIsTheOneWhoseMeanLiesClosestToTheTargets) {
  // Targets: bright and clean. Set 0 overshoots the brightness far, set 1 is near, set 2
  // stays dull; each set's clips vary around its mean.
  const std::vector<AudioFeatures> targets{clip(1100, -19, 0.25), clip(1140, -20, 0.26)};
  const std::vector<double> even{1.0, 1.0};
  std::vector<std::vector<AudioFeatures>> sets{{clip(1900, -19, 0.25), clip(2100, -20, 0.27)},
                                               {clip(1150, -19, 0.25), clip(1050, -21, 0.27)},
                                               {clip(600, -19, 0.26), clip(700, -20, 0.25)}};
  EXPECT_EQ(nearest_set(sets, targets, even), 1u);

  // Set 1 made far too loud: nearest no longer, unless loudness is left out.
  for (auto& f : sets[1]) f.loudness_db = -2.0;
  EXPECT_NE(nearest_set(sets, targets, even), 1u);
  EXPECT_EQ(nearest_set(sets, targets, even, {"loudness_db"}), 1u);

  // Weights pull the target mean toward the heavier clip.
  const std::vector<AudioFeatures> spread{clip(600, -19, 0.25), clip(2000, -19, 0.25)};
  EXPECT_EQ(nearest_set(sets, spread, {1.0, 100.0}, {"loudness_db"}), 0u);
  EXPECT_EQ(nearest_set(sets, spread, {100.0, 1.0}, {"loudness_db"}), 2u);

  EXPECT_THROW(nearest_set({}, targets, even), std::invalid_argument);
  EXPECT_THROW(nearest_set(sets, targets, {1.0}), std::invalid_argument);
  EXPECT_THROW(nearest_set({{}}, targets, even), std::invalid_argument);
}

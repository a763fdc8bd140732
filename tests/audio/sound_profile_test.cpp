// The variety measure: near-duplicates are caught, different music is not.
#include "audio/sound_profile.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace tuneloop::audio;

namespace {

constexpr int kRate = 16000;

// A few seconds of notes: `pitches` in turn, `per_second` onsets, a decaying partial series.
Audio melody(std::vector<double> pitches, double per_second, double brightness, std::uint64_t seed) {
  Audio a;
  a.sample_rate = kRate;
  a.samples.assign(kRate * 4, 0.0f);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> jitter(0.0, 0.002);
  const int step = static_cast<int>(kRate / per_second);
  for (int start = 0, k = 0; start < static_cast<int>(a.samples.size()); start += step, ++k) {
    const double f = pitches[static_cast<std::size_t>(k) % pitches.size()];
    for (int i = 0; i < step && start + i < static_cast<int>(a.samples.size()); ++i) {
      const double t = static_cast<double>(i) / kRate;
      double v = 0;
      for (int h = 1; h <= 6; ++h) v += std::pow(brightness, h - 1) * std::sin(2 * M_PI * f * h * t);
      a.samples[start + i] += static_cast<float>(0.2 * v * std::exp(-4.0 * t) + jitter(rng));
    }
  }
  return a;
}

Audio perturbed(const Audio& in, double gain_db, double noise_db, int shift, std::uint64_t seed) {
  Audio a = in;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, std::pow(10.0, noise_db / 20.0));
  const float g = static_cast<float>(std::pow(10.0, gain_db / 20.0));
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    const std::size_t from = i >= static_cast<std::size_t>(shift) ? i - shift : 0;
    a.samples[i] = g * in.samples[from] + static_cast<float>(n(rng));
  }
  return a;
}

}  // namespace

TEST(SoundProfile, FlagsABatchOfOneClipWithSmallPerturbations) {
  const Audio clip = melody({220, 277, 330, 440}, 4, 0.5, 1);
  std::vector<std::vector<double>> batch;
  for (int k = 0; k < 6; ++k)
    batch.push_back(sound_profile(perturbed(clip, (k % 3 - 1) * 2.0, -45.0, k * 64, k)));  // ±2 dB, 20-ms shifts at most
  const BatchVariety v = batch_variety(batch);
  EXPECT_EQ(v.pairs, 15);
  EXPECT_DOUBLE_EQ(v.near_duplicate_share, 1.0);
}

TEST(SoundProfile, PassesABatchOfDifferentMusic) {
  std::vector<std::vector<double>> batch = {
      sound_profile(melody({220, 277, 330, 440}, 4, 0.5, 1)),
      sound_profile(melody({110, 131, 165}, 1.5, 0.2, 2)),
      sound_profile(melody({523, 659, 784, 1047}, 8, 0.8, 3)),
      sound_profile(melody({196, 233, 294}, 2.5, 0.35, 4)),
  };
  const BatchVariety v = batch_variety(batch);
  EXPECT_DOUBLE_EQ(v.near_duplicate_share, 0.0);
  EXPECT_GT(v.mean_distance, 2 * kNearDuplicateDb);
}

TEST(SoundProfile, IsTheSameAtAnotherSampleRateAndLevel) {
  const Audio clip = melody({262, 330, 392}, 3, 0.5, 5);
  const Audio louder = perturbed(clip, 6.0, -120.0, 0, 6);
  EXPECT_LT(profile_distance(sound_profile(clip), sound_profile(louder)), 0.3);
  EXPECT_LT(profile_distance(sound_profile(clip), sound_profile(resample(clip, 22050))), kNearDuplicateDb);
}

// The track-edge measure (audio/edge_brightness.hpp) on synthetic clips.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "audio/edge_brightness.hpp"

namespace tuneloop::audio {
namespace {

// 8 s of a 220-Hz tone with its harmonics up to 2 kHz, plus white noise at `noise` in the
// first `burst_seconds`.
Audio tone_with_opening_noise(double burst_seconds, float noise) {
  Audio a;
  a.sample_rate = 16000;
  a.samples.resize(8 * 16000);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> white(-1.0f, 1.0f);
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    const double t = static_cast<double>(i) / a.sample_rate;
    double s = 0;
    for (int h = 1; h <= 9; ++h) s += 0.1 / h * std::sin(2 * M_PI * 220 * h * t);
    if (t < burst_seconds) s += noise * white(rng);
    a.samples[i] = static_cast<float>(s);
  }
  return a;
}

TEST(EdgeBrightnessTest, ANoiseBurstAtTheStartIsABrightOpeningAndASteadyClipHasNone) {
  const auto steady = edge_brightness(tone_with_opening_noise(0, 0));
  EXPECT_LT(steady.opening.high_share, 1e-3);
  EXPECT_FALSE(bright_burst(steady.opening, steady.body));
  EXPECT_FALSE(bright_burst(steady.ending, steady.body));
  EXPECT_LT(steady.opening_centroid_change(), 0.05);

  const auto hiss = edge_brightness(tone_with_opening_noise(1.0, 0.05f));
  EXPECT_GT(hiss.opening.high_share, 0.02);
  EXPECT_GT(hiss.opening_share_ratio(), 10);
  EXPECT_TRUE(bright_burst(hiss.opening, hiss.body));
  EXPECT_FALSE(bright_burst(hiss.ending, hiss.body));
  EXPECT_GT(hiss.opening_centroid_change(), kMaxEdgeCentroidChange);
  EXPECT_LT(hiss.ending_centroid_change(), 0.05);
}

TEST(EdgeBrightnessTest, AFaintShiftTooSmallToHearIsNoBurst) {
  // Noise 60 dB under the tone: the share rises many times over but stays far below 0.5 %.
  const auto faint = edge_brightness(tone_with_opening_noise(1.0, 0.0003f));
  EXPECT_GT(faint.opening_share_ratio(), kMaxEdgeShareRatio);
  EXPECT_FALSE(bright_burst(faint.opening, faint.body));
}

TEST(EdgeBrightnessTest, AClipTooShortForTwoEdgesAndABodyIsRefused) {
  Audio a;
  a.sample_rate = 16000;
  a.samples.assign(3 * 16000, 0.1f);
  EXPECT_THROW(edge_brightness(a), AudioError);
  a.sample_rate = 0;
  EXPECT_THROW(edge_brightness(a), AudioError);
}

}  // namespace
}  // namespace tuneloop::audio

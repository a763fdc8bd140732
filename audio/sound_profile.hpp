#pragma once
// A track's sound as a vector, to measure how varied a batch of tracks is: log-mel
// statistics on a fixed band (every track resampled to 16 kHz first, so a wider model does
// not change the measure), made level-invariant so a louder copy of a loop is still that loop.
// Distances are root-mean-square differences in dB. No LibTorch.
#include <vector>

#include "audio/audio.hpp"

namespace tuneloop::audio {

/// Mel bands of the profile (50 Hz to 8 kHz).
inline constexpr int kProfileBands = 40;
/// Two tracks whose profiles are closer than this are near-duplicates: calibrated so that a
/// clip with small perturbations (±2 dB gain, noise 45 dB down, a 20-ms shift) stays below it
/// while different corpus clips lie above it (tests/audio/sound_profile_test.cpp).
inline constexpr double kNearDuplicateDb = 1.5;

/// Per band: the mean (minus the mean over bands), the standard deviation over time and the
/// mean frame-to-frame change of the band's level in dB; 3 × kProfileBands values.
/// Throws AudioError on empty audio.
std::vector<double> sound_profile(const Audio& audio);

/// Root-mean-square difference of two profiles, in dB. 0 for profiles of different lengths.
double profile_distance(const std::vector<double>& a, const std::vector<double>& b) noexcept;

/// A batch's variety: the mean distance over its pairs, and the share of pairs that are
/// near-duplicates. Both 0 for fewer than two profiles.
struct BatchVariety {
  double mean_distance = 0;
  double near_duplicate_share = 0;
  int pairs = 0;
};
BatchVariety batch_variety(const std::vector<std::vector<double>>& profiles,
                           double near_duplicate_db = kNearDuplicateDb);

}  // namespace tuneloop::audio

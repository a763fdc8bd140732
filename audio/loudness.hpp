#pragma once
// Loudness as people hear it, by ITU-R BS.1770-4: integrated loudness (K-weighted, gated,
// in LUFS) and true peak (the peak of the band-limited signal between the samples, in
// dBTP). RMS in dBFS weighs 50 Hz like 3 kHz and counts pauses; LUFS follows how loud
// listeners judge music and is what streaming services normalise to. Mono: channel weight
// 1.0. No LibTorch.
#include <array>

#include "audio/audio.hpp"

namespace tuneloop::audio {

// What silent, empty or too short audio reads, in LUFS, dBTP and dBFS alike: below anything
// measurable (the absolute gate is -70 LUFS), and the floor rms_dbfs uses.
inline constexpr double kLevelFloorDb = -120.0;

// The slowest rate the K-weighting is designed for. The bilinear transform squeezes the
// shelf (1.7 kHz) towards Nyquist: at 16 kHz a 1 kHz tone reads 0.05 LU under 48 kHz's, at
// 8 kHz 0.2 LU. Slower audio is upsampled to this rate before it is weighted.
inline constexpr int kMinLoudnessRate = 16000;

// One second-order section, y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2].
struct Biquad {
  double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
};

// The K-weighting for `sample_rate`: the high-shelf pre-filter (+4 dB above ~1.7 kHz, the
// head's effect) and the RLB high-pass (~38 Hz), in that order. Designed from their analog
// prototypes by the bilinear transform, so any rate from kMinLoudnessRate up gets the curve
// the standard tabulates for 48 kHz (within 0.05 dB up to 4 kHz). Throws AudioError for a
// rate below kMinLoudnessRate.
std::array<Biquad, 2> k_weighting_filters(int sample_rate);

// BS.1770-4 integrated loudness: K-weighted mean square over 400-ms blocks every 100 ms,
// blocks below -70 LUFS dropped, then those more than 10 LU below the mean of the rest,
// so pauses and fades don't pull a track down. Audio shorter than one block, or with no
// block above -70 LUFS, reads kLevelFloorDb. Audio slower than kMinLoudnessRate is
// resampled to it first. Throws AudioError for a sample rate below 1 Hz (empty audio
// excepted).
double integrated_loudness_lufs(const Audio& audio);

// BS.1770-4 Annex 2 true peak: the largest |x| of the signal oversampled 4x (2x from 96 kHz,
// none from 192 kHz) with a windowed-sinc interpolator, in dBTP. A sample peak can read
// 3 dB under what a DAC or lossy encoder actually produces; this catches inter-sample
// peaks. Silence reads kLevelFloorDb. Throws AudioError for a sample rate below 1 Hz.
double true_peak_dbtp(const Audio& audio);

// Largest |sample| in dBFS (kLevelFloorDb for silence).
double sample_peak_dbfs(const Audio& audio) noexcept;

struct Loudness {
  double integrated_lufs = kLevelFloorDb;  // BS.1770-4 integrated loudness
  double true_peak_dbtp = kLevelFloorDb;   // BS.1770-4 Annex 2, 4x oversampled
  double sample_peak_dbfs = kLevelFloorDb;
  double rms_dbfs = kLevelFloorDb;  // unweighted, ungated: AudioFeatures::loudness_db
};

// All four levels of a clip. Throws AudioError for a sample rate below 1 Hz (empty audio
// excepted).
Loudness measure_loudness(const Audio& audio);

}  // namespace tuneloop::audio

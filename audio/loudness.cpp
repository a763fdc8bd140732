#include "audio/loudness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

namespace tuneloop::audio {
namespace {

// BS.1770-4's offset: cancels the K-weighting's gain at 997 Hz, so a full-scale sine
// there reads -3.01 LUFS in one channel.
constexpr double kLoudnessOffset = -0.691;
constexpr double kAbsoluteGateLufs = -70.0;
constexpr double kRelativeGateLu = -10.0;

// The analog prototypes behind the standard's 48 kHz table, as fitted by libebur128 (the
// standard publishes only the digital coefficients): the pre-filter is a high shelf, the
// RLB filter a high-pass.
constexpr double kShelfHz = 1681.974450955533;
constexpr double kShelfGainDb = 3.999843853973347;
constexpr double kShelfQ = 0.7071752369554196;
constexpr double kShelfMidExponent = 0.4996667741545416;  // middle term = high gain^this
constexpr double kHighPassHz = 38.13547087602444;
constexpr double kHighPassQ = 0.5003270373238773;

double power_to_db(double power) {
  return power > 0.0 ? 10.0 * std::log10(power) : -std::numeric_limits<double>::infinity();
}

double amplitude_to_db(double amplitude) {
  return amplitude > 1e-6 ? 20.0 * std::log10(amplitude) : kLevelFloorDb;
}

void check_loudness_rate(int sample_rate) {
  if (sample_rate < kMinLoudnessRate) {
    throw AudioError("loudness: sample rate " + std::to_string(sample_rate) + " Hz is below the " +
                     std::to_string(kMinLoudnessRate) + " Hz the K-weighting is designed for");
  }
}

// Blocks of 400 ms start every 100 ms, so each is four consecutive 100-ms hops, whose
// energies are summed once. Hop k starts at sample round(k * rate / 10).
std::int64_t hop_start(std::int64_t k, std::int64_t rate) {
  return (k * rate + 5) / 10;
}

// The K-weighted signal's energy (sum of squares) in each whole hop. Filtered sample by
// sample in double, without a copy of the track.
std::vector<double> k_weighted_hop_energy(const Audio& audio) {
  const auto f = k_weighting_filters(audio.sample_rate);
  // Direct form I state of each section: x[n-1], x[n-2], y[n-1], y[n-2].
  std::array<std::array<double, 4>, 2> state{};
  const auto n = static_cast<std::int64_t>(audio.samples.size());
  std::vector<double> energy;
  std::int64_t i = 0;
  for (std::int64_t k = 0; hop_start(k + 1, audio.sample_rate) <= n; ++k) {
    double e = 0.0;
    for (const std::int64_t end = hop_start(k + 1, audio.sample_rate); i < end; ++i) {
      double v = audio.samples[i];
      for (int s = 0; s < 2; ++s) {
        auto& [x1, x2, y1, y2] = state[s];
        const double y0 = f[s].b0 * v + f[s].b1 * x1 + f[s].b2 * x2 - f[s].a1 * y1 - f[s].a2 * y2;
        x2 = x1;
        x1 = v;
        y2 = y1;
        y1 = y0;
        v = y0;
      }
      e += v * v;
    }
    energy.push_back(e);
  }
  return energy;
}

// Modified Bessel function of the first kind, order 0 (for the Kaiser window).
double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 50 && term > 1e-12 * sum; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
  }
  return sum;
}

// The interpolation taps for the points p/factor (p = 1 .. factor-1) after each sample:
// a Kaiser-windowed sinc cut off at the original Nyquist frequency, `half` taps either
// side. With 16 taps a side and beta 8 it passes to ~0.42 fs (20 kHz at 48 kHz), the
// band Annex 2's example filter keeps, and each phase's taps sum to 1 (DC is kept).
std::vector<std::vector<double>> interpolation_phases(int factor, int half) {
  constexpr double kBeta = 8.0;
  const double norm = bessel_i0(kBeta);
  std::vector<std::vector<double>> phases;
  for (int p = 1; p < factor; ++p) {
    std::vector<double> taps;  // taps[i] weighs x[n + i - half + 1]
    double sum = 0.0;
    for (int m = -half + 1; m <= half; ++m) {
      const double t = static_cast<double>(p) / factor - m;
      const double pt = std::numbers::pi * t;
      const double sinc = std::sin(pt) / pt;  // t is never 0: p/factor isn't whole
      const double r = t / half;
      const double window = bessel_i0(kBeta * std::sqrt(std::max(0.0, 1.0 - r * r))) / norm;
      taps.push_back(sinc * window);
      sum += taps.back();
    }
    for (double& tap : taps) tap /= sum;
    phases.push_back(std::move(taps));
  }
  return phases;
}

}  // namespace

std::array<Biquad, 2> k_weighting_filters(int sample_rate) {
  check_loudness_rate(sample_rate);
  const double fs = sample_rate;
  std::array<Biquad, 2> f;

  // High shelf by the bilinear transform, prewarped at f0.
  {
    const double k = std::tan(std::numbers::pi * kShelfHz / fs);
    const double vh = std::pow(10.0, kShelfGainDb / 20.0);
    const double vb = std::pow(vh, kShelfMidExponent);
    const double a0 = 1.0 + k / kShelfQ + k * k;
    f[0].b0 = (vh + vb * k / kShelfQ + k * k) / a0;
    f[0].b1 = 2.0 * (k * k - vh) / a0;
    f[0].b2 = (vh - vb * k / kShelfQ + k * k) / a0;
    f[0].a1 = 2.0 * (k * k - 1.0) / a0;
    f[0].a2 = (1.0 - k / kShelfQ + k * k) / a0;
  }

  // High-pass. The standard's table keeps the numerator 1, -2, 1 unnormalised, which leaves
  // a passband gain of 1 + K/Q + K² (+0.043 dB at 48 kHz) that the -0.691 dB offset was
  // calibrated with; that gain is held at every rate, so 16 kHz reads as 48 kHz does.
  {
    const double k = std::tan(std::numbers::pi * kHighPassHz / fs);
    const double a0 = 1.0 + k / kHighPassQ + k * k;
    const double k48 = std::tan(std::numbers::pi * kHighPassHz / 48000.0);
    const double gain48 = 1.0 + k48 / kHighPassQ + k48 * k48;
    const double g = gain48 / a0;
    f[1].b0 = g;
    f[1].b1 = -2.0 * g;
    f[1].b2 = g;
    f[1].a1 = 2.0 * (k * k - 1.0) / a0;
    f[1].a2 = (1.0 - k / kHighPassQ + k * k) / a0;
  }
  return f;
}

double integrated_loudness_lufs(const Audio& audio) {
  if (audio.samples.empty()) return kLevelFloorDb;
  if (audio.sample_rate < kMinLoudnessRate) {
    // Upsampling adds nothing to the signal; it gives the shelf room below Nyquist.
    return integrated_loudness_lufs(resample(audio, kMinLoudnessRate));
  }
  const std::vector<double> hop_energy = k_weighted_hop_energy(audio);
  if (hop_energy.size() < 4) return kLevelFloorDb;

  std::vector<double> block_power;  // z_j: the block's mean square
  for (std::size_t j = 0; j + 4 <= hop_energy.size(); ++j) {
    const auto k = static_cast<std::int64_t>(j);
    const double e = hop_energy[j] + hop_energy[j + 1] + hop_energy[j + 2] + hop_energy[j + 3];
    const std::int64_t samples =
        hop_start(k + 4, audio.sample_rate) - hop_start(k, audio.sample_rate);
    block_power.push_back(e / static_cast<double>(samples));
  }

  // Gated mean power of the blocks louder than `threshold_lufs` (0 if none is).
  auto gated_mean = [&block_power](double threshold_lufs) {
    double sum = 0.0;
    std::size_t count = 0;
    for (double z : block_power) {
      if (kLoudnessOffset + power_to_db(z) > threshold_lufs) {
        sum += z;
        ++count;
      }
    }
    return count > 0 ? sum / static_cast<double>(count) : 0.0;
  };
  const double absolute = gated_mean(kAbsoluteGateLufs);
  if (absolute <= 0.0) return kLevelFloorDb;
  const double relative_gate = kLoudnessOffset + power_to_db(absolute) + kRelativeGateLu;
  const double gated = gated_mean(std::max(kAbsoluteGateLufs, relative_gate));
  return gated > 0.0 ? kLoudnessOffset + power_to_db(gated) : kLevelFloorDb;
}

double true_peak_dbtp(const Audio& audio) {
  if (audio.samples.empty()) return kLevelFloorDb;
  if (audio.sample_rate < 1) {
    throw AudioError("true peak: sample rate must be positive (got " +
                     std::to_string(audio.sample_rate) + ")");
  }
  // Annex 2 asks for at least 192 kHz after oversampling, and 4x at the usual rates.
  const int factor = audio.sample_rate < 96000 ? 4 : audio.sample_rate < 192000 ? 2 : 1;
  constexpr int kHalf = 16;
  const auto& x = audio.samples;
  const auto n = static_cast<std::int64_t>(x.size());

  double peak = 0.0;
  for (float s : x) peak = std::max(peak, static_cast<double>(std::fabs(s)));
  const auto phases = interpolation_phases(factor, kHalf);
  for (const auto& taps : phases) {
    // Points between sample i and i + 1, from i = -1 (the ringing before the first sample)
    // to n - 1 (after the last); samples outside the clip are silence.
    for (std::int64_t i = -1; i < n; ++i) {
      const std::int64_t first = i - kHalf + 1;
      double v = 0.0;
      if (first >= 0 && first + 2 * kHalf <= n) {
        const float* p = x.data() + first;
        for (int t = 0; t < 2 * kHalf; ++t) v += taps[t] * p[t];
      } else {
        for (int t = 0; t < 2 * kHalf; ++t) {
          const std::int64_t at = first + t;
          if (at >= 0 && at < n) v += taps[t] * x[at];
        }
      }
      peak = std::max(peak, std::fabs(v));
    }
  }
  return amplitude_to_db(peak);
}

double sample_peak_dbfs(const Audio& audio) noexcept {
  float peak = 0.0f;
  for (float s : audio.samples) peak = std::max(peak, std::fabs(s));
  return amplitude_to_db(peak);
}

Loudness measure_loudness(const Audio& audio) {
  Loudness l;
  l.integrated_lufs = integrated_loudness_lufs(audio);
  l.true_peak_dbtp = true_peak_dbtp(audio);
  l.sample_peak_dbfs = sample_peak_dbfs(audio);
  l.rms_dbfs = audio::rms_dbfs(audio.samples);
  return l;
}

}  // namespace tuneloop::audio

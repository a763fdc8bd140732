#include "audio/sound_profile.hpp"

#include <algorithm>
#include <cmath>

#include "audio/fft.hpp"

namespace tuneloop::audio {

namespace {

constexpr int kRate = 16000;
constexpr std::size_t kFrame = 1024, kHop = 256;

double hz_to_mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double mel_to_hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

// Triangular mel filters over the FFT bins, kProfileBands × (kFrame/2 + 1).
const std::vector<std::vector<double>>& mel_filters() {
  static const auto filters = [] {
    const std::size_t bins = kFrame / 2 + 1;
    std::vector<double> edges;
    const double lo = hz_to_mel(50.0), hi = hz_to_mel(kRate / 2.0);
    for (int i = 0; i < kProfileBands + 2; ++i)
      edges.push_back(mel_to_hz(lo + (hi - lo) * i / (kProfileBands + 1)));
    std::vector<std::vector<double>> f(kProfileBands, std::vector<double>(bins, 0.0));
    for (int b = 0; b < kProfileBands; ++b)
      for (std::size_t k = 0; k < bins; ++k) {
        const double hz = static_cast<double>(k) * kRate / kFrame;
        if (hz > edges[b] && hz < edges[b + 2])
          f[b][k] = hz <= edges[b + 1] ? (hz - edges[b]) / (edges[b + 1] - edges[b])
                                       : (edges[b + 2] - hz) / (edges[b + 2] - edges[b + 1]);
      }
    return f;
  }();
  return filters;
}

}  // namespace

std::vector<double> sound_profile(const Audio& input) {
  if (input.samples.empty() || input.sample_rate <= 0) throw AudioError("sound profile: empty audio");
  const Audio a = input.sample_rate == kRate ? input : resample(input, kRate);
  const auto frames = magnitude_frames(a.samples, kFrame, kHop);
  const auto& filters = mel_filters();
  std::vector<std::vector<double>> level(kProfileBands, std::vector<double>(frames.size()));
  for (std::size_t t = 0; t < frames.size(); ++t)
    for (int b = 0; b < kProfileBands; ++b) {
      double power = 0;
      for (std::size_t k = 0; k < frames[t].size(); ++k) power += filters[b][k] * frames[t][k] * frames[t][k];
      // Floored at -100 dB so silence does not dominate the differences.
      level[b][t] = 10.0 * std::log10(std::max(power, 1e-10));
    }
  std::vector<double> out(3 * kProfileBands, 0.0);
  const double n = static_cast<double>(frames.size());
  double overall = 0;
  for (int b = 0; b < kProfileBands; ++b) {
    double mean = 0, var = 0, change = 0;
    for (double v : level[b]) mean += v / n;
    for (double v : level[b]) var += (v - mean) * (v - mean) / n;
    for (std::size_t t = 1; t < level[b].size(); ++t) change += std::fabs(level[b][t] - level[b][t - 1]);
    out[b] = mean;
    out[kProfileBands + b] = std::sqrt(var);
    out[2 * kProfileBands + b] = level[b].size() > 1 ? change / (n - 1) : 0.0;
    overall += mean / kProfileBands;
  }
  for (int b = 0; b < kProfileBands; ++b) out[b] -= overall;
  return out;
}

double profile_distance(const std::vector<double>& a, const std::vector<double>& b) noexcept {
  if (a.size() != b.size() || a.empty()) return 0.0;
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

BatchVariety batch_variety(const std::vector<std::vector<double>>& profiles, double near_db) {
  BatchVariety v;
  int near = 0;
  for (std::size_t i = 0; i < profiles.size(); ++i)
    for (std::size_t j = i + 1; j < profiles.size(); ++j) {
      const double d = profile_distance(profiles[i], profiles[j]);
      v.mean_distance += d;
      near += d < near_db;
      ++v.pairs;
    }
  if (v.pairs > 0) {
    v.mean_distance /= v.pairs;
    v.near_duplicate_share = static_cast<double>(near) / v.pairs;
  }
  return v;
}

}  // namespace tuneloop::audio

#include "audio/edge_brightness.hpp"

#include <cmath>
#include <string>

#include "audio/fft.hpp"

namespace tuneloop::audio {
namespace {

constexpr std::size_t kFrame = 1024;
constexpr std::size_t kHop = 512;

BandShare measure_span(const Audio& audio, std::size_t begin, std::size_t end, double cutoff_hz) {
  std::vector<float> span(audio.samples.begin() + static_cast<std::ptrdiff_t>(begin),
                          audio.samples.begin() + static_cast<std::ptrdiff_t>(end));
  const double bin_hz = static_cast<double>(audio.sample_rate) / kFrame;
  double total = 0, high = 0, weighted = 0;
  std::size_t frames = 0;
  for (const auto& magnitudes : magnitude_frames(span, kFrame, kHop)) {
    ++frames;
    for (std::size_t bin = 1; bin < magnitudes.size(); ++bin) {
      const double power = magnitudes[bin] * magnitudes[bin];
      const double hz = static_cast<double>(bin) * bin_hz;
      total += power;
      weighted += power * hz;
      if (hz >= cutoff_hz) high += power;
    }
  }
  BandShare share;
  if (total > 0) {
    share.high_share = high / total;
    share.centroid_hz = weighted / total;
  }
  share.energy = frames > 0 ? total / static_cast<double>(frames) : 0;
  return share;
}

double share_ratio(const BandShare& edge, const BandShare& body) noexcept {
  if (body.high_share <= 0) return edge.high_share <= 0 ? 1.0 : 1e9;
  return edge.high_share / body.high_share;
}

double centroid_change(const BandShare& edge, const BandShare& body) noexcept {
  if (body.centroid_hz <= 0) return edge.centroid_hz <= 0 ? 0.0 : 1e9;
  return std::abs(edge.centroid_hz / body.centroid_hz - 1.0);
}

}  // namespace

double EdgeBrightness::opening_share_ratio() const noexcept { return share_ratio(opening, body); }
double EdgeBrightness::ending_share_ratio() const noexcept { return share_ratio(ending, body); }
double EdgeBrightness::opening_centroid_change() const noexcept {
  return centroid_change(opening, body);
}
double EdgeBrightness::ending_centroid_change() const noexcept {
  return centroid_change(ending, body);
}

bool bright_burst(const BandShare& edge, const BandShare& body, double min_excess) noexcept {
  return edge.high_share > kMaxEdgeShareRatio * body.high_share &&
         edge.high_share - body.high_share > min_excess;
}

EdgeBrightness edge_brightness(const Audio& audio, double edge_seconds, double cutoff_hz) {
  if (audio.sample_rate <= 0 || audio.seconds() < 2 * edge_seconds + 0.5) {
    throw AudioError("edge brightness needs at least " + std::to_string(2 * edge_seconds + 0.5) +
                     " s of audio");
  }
  const auto edge = static_cast<std::size_t>(edge_seconds * audio.sample_rate);
  const std::size_t n = audio.samples.size();
  EdgeBrightness result;
  result.opening = measure_span(audio, 0, edge, cutoff_hz);
  result.body = measure_span(audio, edge, n - edge, cutoff_hz);
  result.ending = measure_span(audio, n - edge, n, cutoff_hz);
  return result;
}

}  // namespace tuneloop::audio

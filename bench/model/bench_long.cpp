// Long tracks: does a track far longer than the denoiser's 4-s training crops hold
// together? The engine generates any length in one pass (the UNet is convolutional in
// time), so there are no joins to hear; what could go wrong is drift (the music dissolving
// into noise or silence away from the edges) and abrupt changes. This prints, for N long
// untagged tracks (seeds 1..N):
//   - the features of each consecutive segment, averaged over tracks, next to short
//     tracks of the segment's length from the same seeds (the model's usual output), with
//     the BS.1770 integrated loudness (LUFS, mean) and true peak (dBTP, the highest of the
//     tracks: what would clip) beside the RMS level;
//   - within-track change: the standardised feature distance between neighbouring
//     segments of one track, next to the distance between two different short tracks;
//   - abruptness: the 99th percentile of the loudness step between neighbouring 250-ms
//     windows, long tracks against short ones.
//
// Usage: bench_long [weights_dir] [tracks=6] [seconds=40] [segment=5] [threads=1]
//        (weights_dir "" or "-" = the shipped weights)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "audio/features.hpp"
#include "audio/loudness.hpp"
#include "model/engine.hpp"
#include "progress/progress.hpp"

using namespace tuneloop;

namespace {

audio::Audio slice(const audio::Audio& a, std::size_t from, std::size_t count) {
  audio::Audio s;
  s.sample_rate = a.sample_rate;
  const std::size_t end = std::min(a.samples.size(), from + count);
  if (from < end) s.samples.assign(a.samples.begin() + from, a.samples.begin() + end);
  return s;
}

// Loudness steps (dB) between neighbouring 250-ms windows.
std::vector<double> loudness_steps(const audio::Audio& a) {
  const std::size_t w = static_cast<std::size_t>(a.sample_rate / 4);
  std::vector<double> db;
  for (std::size_t i = 0; i + w <= a.samples.size(); i += w) {
    double e = 0;
    for (std::size_t j = i; j < i + w; ++j) e += double(a.samples[j]) * a.samples[j];
    db.push_back(10.0 * std::log10(e / double(w) + 1e-10));
  }
  std::vector<double> steps;
  for (std::size_t i = 1; i < db.size(); ++i) steps.push_back(std::abs(db[i] - db[i - 1]));
  return steps;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * double(v.size() - 1))];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

void print_row(const std::string& label, const std::vector<audio::AudioFeatures>& set,
               const std::vector<audio::Loudness>& levels) {
  const auto m = audio::mean_features(set);
  std::vector<double> lufs;
  double true_peak = audio::kLevelFloorDb;
  for (const auto& l : levels) {
    lufs.push_back(l.integrated_lufs);
    true_peak = std::max(true_peak, l.true_peak_dbtp);
  }
  std::printf("| %s | %.2f | %.0f | %.0f | %.3f | %.1f | %.1f | %.1f | %.2f | %.3f |\n",
              label.c_str(), m.onset_rate, m.tempo_bpm, m.brightness, m.minorness, m.loudness_db,
              mean(lufs), true_peak, m.note_density, m.flatness);
}

}  // namespace

int main(int argc, char** argv) {
  std::string weights = argc > 1 ? argv[1] : "";
  if (weights == "-") weights.clear();
  const int n = argc > 2 ? std::atoi(argv[2]) : 6;
  const double seconds = argc > 3 ? std::atof(argv[3]) : 40.0;
  const double segment = argc > 4 ? std::atof(argv[4]) : 5.0;
  const int threads = argc > 5 ? std::atoi(argv[5]) : 1;
  if (n < 2 || segment <= 0 || seconds < 2 * segment || threads < 1) {
    std::fprintf(stderr,
                 "usage: bench_long [weights_dir] [tracks>=2] [seconds>=2*segment] [segment] [threads]\n");
    return 2;
  }
  std::unique_ptr<model::Engine> engine;
  try {
    engine = model::Engine::load({weights, "cpu", threads});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_long: %s\n", e.what());
    return 1;
  }

  const auto t0 = std::chrono::steady_clock::now();
  const int segments = static_cast<int>(seconds / segment);
  std::vector<std::vector<audio::AudioFeatures>> by_segment(segments);  // [segment][track]
  std::vector<std::vector<audio::Loudness>> levels_by_segment(segments);
  std::vector<audio::AudioFeatures> shorts;
  std::vector<audio::Loudness> short_levels;
  std::vector<double> long_steps, short_steps;
  double long_wall = 0;
  // A redrawn bar on a terminal, a line every 2 s in a log.
  std::optional<progress::ProgressDisplay> progress;
  progress.emplace("bench_long", n, progress::progress_style_for(stderr, false), stderr, "tracks");
  for (int i = 1; i <= n; ++i) {
    model::GenerateParams p;
    p.seed = static_cast<uint64_t>(i);
    p.seconds = seconds;
    const auto g0 = std::chrono::steady_clock::now();
    const auto track = engine->generate(p);
    long_wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count();
    const auto seg = static_cast<std::size_t>(segment * track.sample_rate);
    for (int s = 0; s < segments; ++s) {
      const auto piece = slice(track, s * seg, seg);
      by_segment[s].push_back(audio::measure(piece));
      levels_by_segment[s].push_back(audio::measure_loudness(piece));
    }
    const auto ls = loudness_steps(track);
    long_steps.insert(long_steps.end(), ls.begin(), ls.end());

    p.seconds = segment;
    const auto short_track = engine->generate(p);
    shorts.push_back(audio::measure(short_track));
    short_levels.push_back(audio::measure_loudness(short_track));
    const auto ss = loudness_steps(short_track);
    short_steps.insert(short_steps.end(), ss.begin(), ss.end());
    progress->update(i, 0);
  }
  progress.reset();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("Long tracks: %d untagged tracks of %.0f s (seeds 1..%d), %s weights, vocoder %s, "
              "%.1f s of wall per long track, %.0f s in all\n\n",
              n, seconds, n, weights.empty() ? "shipped" : weights.c_str(), engine->vocoder().c_str(),
              long_wall / n, elapsed);
  std::printf("| segment | onsets/s | tempo | centroid Hz | minorness | loudness dB | LUFS "
              "| max true peak dBTP | density | flatness |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  char label[64];
  for (int s = 0; s < segments; ++s) {
    std::snprintf(label, sizeof label, "%.0f–%.0f s", s * segment, (s + 1) * segment);
    print_row(label, by_segment[s], levels_by_segment[s]);
  }
  std::snprintf(label, sizeof label, "%.0f-s tracks", segment);
  print_row(label, shorts, short_levels);

  // Distances on the scale of everything measured, so no one feature dominates.
  std::vector<audio::AudioFeatures> all = shorts;
  for (const auto& s : by_segment) all.insert(all.end(), s.begin(), s.end());
  const auto scale = audio::fit_scale(all);
  std::vector<double> within, first_last, between;
  for (int t = 0; t < n; ++t) {
    for (int s = 1; s < segments; ++s)
      within.push_back(audio::feature_distance(by_segment[s - 1][t], by_segment[s][t], scale));
    first_last.push_back(audio::feature_distance(by_segment[0][t], by_segment[segments - 1][t], scale));
    for (int u = t + 1; u < n; ++u) between.push_back(audio::feature_distance(shorts[t], shorts[u], scale));
  }
  std::printf("\nfeature distance (standardised): neighbouring segments of one track %.2f, first to last "
              "segment %.2f, two different %.0f-s tracks %.2f\n",
              mean(within), mean(first_last), segment, mean(between));
  std::printf("loudness step between neighbouring 250-ms windows, 99th percentile: long tracks %.1f dB, "
              "%.0f-s tracks %.1f dB (median %.1f / %.1f dB)\n",
              percentile(long_steps, 0.99), segment, percentile(short_steps, 0.99), percentile(long_steps, 0.5),
              percentile(short_steps, 0.5));
  return 0;
}

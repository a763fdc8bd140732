// Does the base model obey its tags? Generates N clips per tag (that tag alone, seeds
// 1..N) and prints, as a Markdown table, the mean ± standard deviation of the audio
// features that each contrasting pair of tags should move, plus a one-sided test of the
// difference (Mann-Whitney U, normal approximation). A mode goes through the engine as any
// generation's does: with weights that know them it gets a key drawn from the seed and the
// scale word (Engine::conditioning_tags), so the mode row measures what a listener asking
// for it hears. Beside loudness_db (the RMS level) two rows give the same clips' BS.1770
// integrated loudness (LUFS) and true peak (dBTP); they are shown, not counted as contrasts.
//
// Usage: bench_tags [weights_dir] [clips_per_tag=50] [seconds=8] [threads=2] [only] [pre_roll]
//        (weights_dir "" or "-" = the shipped weights; only: measure just the contrasts
//        with that tag, e.g. minor)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "audio/features.hpp"
#include "audio/loudness.hpp"
#include "model/engine.hpp"
#include "progress/progress.hpp"

using namespace tuneloop;

namespace {

struct Contrast {
  std::string low_tag, high_tag;  // the feature should be higher for high_tag
  std::string feature;
};

// The pairs the corpus composer controls, and the feature each should move.
const std::vector<Contrast> kTagContrasts = {
    {"slow", "fast", "onset_rate"},   {"slow", "fast", "tempo_bpm"},
    {"major", "minor", "minorness"},  {"sparse", "dense", "note_density"},
    {"low", "high", "brightness"},    {"bass", "lead", "brightness"},
    {"piano", "brass", "brightness"}, {"nodrums", "drums", "flatness"},
    {"soft", "loud", "loudness_db"},  {"chords", "arpeggio", "onset_rate"},
};

double feature_value(const audio::AudioFeatures& f, const std::string& name) {
  const auto& names = audio::feature_names();
  const auto values = audio::as_vector(f);
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return values[i];
  std::fprintf(stderr, "bench_tags: unknown feature %s\n", name.c_str());
  std::exit(2);
}

struct Summary {
  double mean = 0, sd = 0;
};

Summary summarise(const std::vector<double>& v) {
  Summary s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

// One-sided p-value that `high` tends to exceed `low` (Mann-Whitney U, normal
// approximation with tie correction ignored: features are continuous).
double mann_whitney_p(const std::vector<double>& low, const std::vector<double>& high) {
  double u = 0;
  for (double h : high)
    for (double l : low) u += h > l ? 1.0 : (h == l ? 0.5 : 0.0);
  const double n1 = static_cast<double>(high.size()), n2 = static_cast<double>(low.size());
  const double mu = n1 * n2 / 2.0, sigma = std::sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0);
  const double z = (u - mu) / sigma;
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

}  // namespace

int main(int argc, char** argv) {
  std::string weights = argc > 1 ? argv[1] : "";
  if (weights == "-") weights.clear();
  const int n = argc > 2 ? std::atoi(argv[2]) : 50;
  const double seconds = argc > 3 ? std::atof(argv[3]) : 8.0;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const std::string only = argc > 5 ? argv[5] : "";
  // Seconds generated before each clip and cut off (GenerateParams::pre_roll_seconds).
  const double pre_roll = argc > 6 ? std::atof(argv[6]) : model::GenerateParams{}.pre_roll_seconds;
  if (n < 2 || seconds <= 0 || threads < 1) {
    std::fprintf(stderr,
                 "usage: bench_tags [weights_dir] [clips_per_tag>=2] [seconds] [threads] [only] [pre_roll]\n");
    return 2;
  }
  std::unique_ptr<model::Engine> engine;
  try {
    engine = model::Engine::load({weights, "cpu", threads});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tags: %s\n", e.what());
    return 1;
  }

  std::vector<Contrast> contrasts;
  for (const auto& c : kTagContrasts)
    if (only.empty() || c.low_tag == only || c.high_tag == only) contrasts.push_back(c);
  if (contrasts.empty()) {
    std::fprintf(stderr, "bench_tags: no contrast has the tag '%s'\n", only.c_str());
    return 2;
  }
  std::vector<std::string> tags;
  for (const auto& c : contrasts)
    for (const auto& t : {c.low_tag, c.high_tag})
      if (std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);

  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<audio::AudioFeatures>> measured;
  std::map<std::string, std::vector<audio::Loudness>> levels;
  int done = 0;
  const int total = n * static_cast<int>(tags.size());
  // A redrawn bar on a terminal, a line every 2 s in a log.
  std::optional<progress::ProgressDisplay> progress;
  progress.emplace("bench_tags", total, progress::progress_style_for(stderr, false), stderr, "clips");
  for (const auto& tag : tags) {
    for (int i = 1; i <= n; ++i) {
      model::GenerateParams p;
      p.tags = {tag};
      p.seconds = seconds;
      p.pre_roll_seconds = pre_roll;
      p.seed = static_cast<uint64_t>(i);
      const auto clip = engine->generate(p);
      measured[tag].push_back(audio::measure(clip));
      levels[tag].push_back(audio::measure_loudness(clip));
      progress->update(++done, 0);
    }
  }
  progress.reset();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("Tag obedience: %d clips of %.0f s per tag (seeds 1..%d, guidance %.1f, %d steps), "
              "%s weights, %.0f s in all\n\n",
              n, seconds, n, model::GenerateParams{}.guidance, model::GenerateParams{}.steps,
              weights.empty() ? "shipped" : weights.c_str(), elapsed);
  std::printf("| feature | tag A | mean ± sd | tag B | mean ± sd | B > A? | p (one-sided) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  // Prints one row; true when `hi` is higher at p < 0.01.
  auto print_contrast = [](const std::string& name, const Contrast& c,
                           const std::vector<double>& lo, const std::vector<double>& hi) {
    const auto a = summarise(lo), b = summarise(hi);
    const double p = mann_whitney_p(lo, hi);
    const bool ok = b.mean > a.mean && p < 0.01;
    std::printf("| %s | %s | %.3f ± %.3f | %s | %.3f ± %.3f | %s | %.2g |\n", name.c_str(),
                c.low_tag.c_str(), a.mean, a.sd, c.high_tag.c_str(), b.mean, b.sd,
                ok ? "yes" : "no", p);
    return ok;
  };
  int obeyed = 0;
  for (const auto& c : contrasts) {
    std::vector<double> lo, hi;
    for (const auto& f : measured[c.low_tag]) lo.push_back(feature_value(f, c.feature));
    for (const auto& f : measured[c.high_tag]) hi.push_back(feature_value(f, c.feature));
    obeyed += print_contrast(c.feature, c, lo, hi);
    if (c.feature != "loudness_db") continue;
    std::vector<double> lo_lufs, hi_lufs, lo_peak, hi_peak;
    for (const auto& l : levels[c.low_tag]) {
      lo_lufs.push_back(l.integrated_lufs);
      lo_peak.push_back(l.true_peak_dbtp);
    }
    for (const auto& l : levels[c.high_tag]) {
      hi_lufs.push_back(l.integrated_lufs);
      hi_peak.push_back(l.true_peak_dbtp);
    }
    print_contrast("integrated LUFS", c, lo_lufs, hi_lufs);
    print_contrast("true peak dBTP", c, lo_peak, hi_peak);
  }
  std::printf("\n%d of %zu contrasts in the expected direction at p < 0.01\n", obeyed,
              contrasts.size());
  return 0;
}

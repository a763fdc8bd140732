// The key result of the base model: a small LoRA fine-tune on ~40 clips that share
// one character moves the model's *untagged* generations toward that character, while they
// stay varied. Runs on the shipped weights (model/weights), a few minutes per character.
//
// For each character: render 40 corpus clips of that style (FluidSynth), generate kClips
// untagged clips from the base model, fine-tune an adapter on the 40 clips, generate the same
// seeds with the adapter. In feature space standardised over base generations and targets,
// each seed's clip must move toward the target clips' mean (a paired t test), the distance
// between the means must fall by at least half, and the adapted clips must not collapse onto
// one clip. The (noise-debiased) distance between the means, before and after, to the
// target clips and to the targets as the model's own autoencoder and decoder voice them, is
// printed: the figure the README reports.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "audio/features.hpp"
#include "corpus/corpus.hpp"
#include "model/engine.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::model {
namespace {

namespace fs = std::filesystem;

using tuneloop::testing::TempDir;

constexpr int kTargetClips = 40;
// Generations per condition (same seeds before and after). With 20 the share of the way moved
// by up to 22 points when seeds 21-40 were added: the features' sampling noise is as large as
// the effect.
constexpr int kClips = 40;
constexpr double kSeconds = 6.0;

struct Character {
  std::string name;   // for the test name
  std::string style;  // corpus style words
};

std::ostream& operator<<(std::ostream& os, const Character& c) { return os << c.style; }

struct Measured {
  // target: the clips as rendered; reachable: the same clips through the model's own audio
  // path (encode, then decode with strength 0), i.e. the character as this model can voice
  // it. The fine-tune moves only the denoiser, so the decoder's fixed colouring of every
  // clip (duller highs, smeared onsets) is no part of what it can be asked to move.
  std::vector<audio::AudioFeatures> target, reachable, base, adapted;
};

std::vector<double> centroid(const std::vector<audio::AudioFeatures>& set, const audio::FeatureScale& s) {
  return audio::standardise(audio::mean_features(set), s);
}

double distance(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(d);
}

double noise_of_mean(const std::vector<audio::AudioFeatures>& set, const audio::FeatureScale& s) {
  const auto m = centroid(set, s);
  double total = 0;
  for (const auto& f : set) {
    const auto z = audio::standardise(f, s);
    for (std::size_t i = 0; i < z.size(); ++i) total += (z[i] - m[i]) * (z[i] - m[i]);
  }
  const double n = static_cast<double>(set.size());
  return total / (n - 1) / n;  // trace of the sample covariance over n
}

// Seed by seed (the same seeds before and after), how far the adapted clip lies beyond the
// base clip along the line from the base generations' mean toward the target clips' mean, in
// standardised units. An adapter that changes nothing gives exact zeros.
std::vector<double> moves_toward_targets(const Measured& m, const audio::FeatureScale& s) {
  const auto zb = centroid(m.base, s), zt = centroid(m.target, s);
  const double length = distance(zt, zb);
  std::vector<double> moves;
  for (std::size_t k = 0; k < m.base.size(); ++k) {
    const auto a = audio::standardise(m.adapted[k], s), b = audio::standardise(m.base[k], s);
    double d = 0;
    for (std::size_t i = 0; i < zb.size(); ++i) d += (a[i] - b[i]) * (zt[i] - zb[i]) / length;
    moves.push_back(d);
  }
  return moves;
}

// One-sample t statistic of the mean against zero.
double t_statistic(const std::vector<double>& x) {
  const double n = static_cast<double>(x.size());
  double mean = 0, var = 0;
  for (double v : x) mean += v / n;
  for (double v : x) var += (v - mean) * (v - mean) / (n - 1);
  return var > 0 ? mean / std::sqrt(var / n) : 0.0;
}

// Distance between the means of two sets of clips in standardised feature space, with the
// part that sampling noise alone adds taken out: E|mean_a - mean_b|^2 exceeds the true
// squared distance by tr(cov_a)/n_a + tr(cov_b)/n_b, which with a few dozen clips and 7 noisy
// features is as large as the effect being measured. Signed square root (it can be < 0).
double debiased_distance(const std::vector<audio::AudioFeatures>& a, const std::vector<audio::AudioFeatures>& b,
                         const audio::FeatureScale& s) {
  const double d = distance(centroid(a, s), centroid(b, s));
  const double sq = d * d - noise_of_mean(a, s) - noise_of_mean(b, s);
  return sq < 0 ? -std::sqrt(-sq) : std::sqrt(sq);
}

// Mean pairwise distance within a set, and the smallest one.
std::pair<double, double> spread(const std::vector<audio::AudioFeatures>& set, const audio::FeatureScale& s) {
  double sum = 0, least = 1e300;
  int pairs = 0;
  for (std::size_t i = 0; i < set.size(); ++i)
    for (std::size_t j = i + 1; j < set.size(); ++j) {
      const double d = audio::feature_distance(set[i], set[j], s);
      sum += d;
      least = std::min(least, d);
      ++pairs;
    }
  return {pairs ? sum / pairs : 0.0, least};
}

class Steerability : public ::testing::TestWithParam<Character> {};

TEST_P(Steerability, AFineTuneOnFortyClipsMovesUntaggedGenerationsTowardTheirCharacter) {
  const Character& c = GetParam();
  const fs::path shipped = fs::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  ASSERT_TRUE(fs::exists(shipped / "denoiser.safetensors"))
      << "the shipped base model is missing from " << shipped;
  TempDir dir("tuneloop-steer");
  // TUNELOOP_STEER_SEED=S (default 1) measures another draw of everything random: the target
  // clips (corpus seed 6 + S), the fine-tune (seed S) and the generations (seeds
  // 40(S-1)+1 ... 40S). One run's share of the way moves by tens of points from draw to draw.
  const char* draw_env = std::getenv("TUNELOOP_STEER_SEED");
  const int draw = draw_env ? std::atoi(draw_env) : 1;
  ASSERT_GE(draw, 1) << "TUNELOOP_STEER_SEED must be a whole number >= 1";

  // One LibTorch thread: ctest runs tests side by side, and OpenMP threads that compete for a
  // core run several times slower than one.
  // TUNELOOP_STEER_WEIGHTS names another weights folder to measure (a candidate base model).
  const char* weights = std::getenv("TUNELOOP_STEER_WEIGHTS");
  auto engine = Engine::load({weights ? weights : "", "cpu", 1});

  // The target clips at the model's own rate, so they hold the band its generations do.
  corpus::CorpusOptions co;
  co.sample_rate = engine->sample_rate();
  co.count = kTargetClips;
  co.seed = static_cast<uint64_t>(6 + draw);
  co.style = c.style;
  co.out_dir = dir.file("target");
  co.seconds = 4.2;
  corpus::generate_corpus(co);
  Measured m;
  FineTuneRequest ft;
  for (int i = 0; i < kTargetClips; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/clips/%05d.wav", i);
    ft.examples.push_back({co.out_dir + name, 1.0});
    const auto clip = audio::read_audio(co.out_dir + name, engine->sample_rate());
    m.target.push_back(audio::measure(clip));
    GenerateParams p;
    p.seconds = clip.seconds();
    p.seed_latent = engine->encode(clip);
    p.strength = 0.0;
    m.reachable.push_back(audio::measure(engine->generate(p)));
  }
  // The adapter as trained (the daemon applies model.adapter_strength, 0.5 by default, to
  // keep its batches varied); TUNELOOP_STEER_STRENGTH measures another strength.
  const char* strength_override = std::getenv("TUNELOOP_STEER_STRENGTH");
  const double strength = strength_override ? std::atof(strength_override) : 1.0;
  auto generate_all = [&](std::vector<audio::AudioFeatures>& out) {
    for (int seed = (draw - 1) * kClips + 1; seed <= draw * kClips; ++seed) {
      GenerateParams p;
      p.adapter_strength = strength;
      p.seconds = kSeconds;
      // As the model draws them: the target clips open as every corpus clip does (a cymbal
      // crash on the first drum beat), which the engine's pre-roll cuts off tracks; compared
      // with the targets, generations keep their openings too.
      p.pre_roll_seconds = 0;
      p.seed = static_cast<uint64_t>(seed);
      p.steps = config::ModelConfig{}.steps;  // as the daemon generates
      p.vocoder = std::string(config::to_string(config::ModelConfig{}.vocoder));
      out.push_back(audio::measure(engine->generate(p)));
    }
  };
  generate_all(m.base);

  // The daemon's fine-tune settings (config defaults).
  const config::TrainingConfig training;
  ft.steps = training.steps;
  ft.rank = training.rank;
  ft.alpha = training.alpha;
  ft.lr = training.learning_rate;
  // TUNELOOP_STEER_STEPS and TUNELOOP_STEER_LR measure other training.steps and
  // training.learning_rate.
  if (const char* steps = std::getenv("TUNELOOP_STEER_STEPS")) ft.steps = std::atoi(steps);
  if (const char* lr = std::getenv("TUNELOOP_STEER_LR")) ft.lr = std::atof(lr);
  // TUNELOOP_STEER_RANK measures another training.rank (alpha scaled with it, as the scale
  // alpha / rank stays what the defaults give).
  if (const char* rank = std::getenv("TUNELOOP_STEER_RANK")) {
    const int r = std::atoi(rank);
    ASSERT_GE(r, 1) << "TUNELOOP_STEER_RANK must be a whole number >= 1";
    ft.alpha = ft.alpha * r / ft.rank;
    ft.rank = r;
  }
  ft.batch = training.batch_size;
  ft.dropout = training.dropout;
  // TUNELOOP_STEER_EMPHASIS measures another training.low_noise_emphasis.
  const char* emphasis = std::getenv("TUNELOOP_STEER_EMPHASIS");
  ft.low_noise_emphasis = emphasis ? std::atof(emphasis) : training.low_noise_emphasis;
  ft.targets = training.targets;
  // TUNELOOP_STEER_CALIBRATION_CLIPS measures another training.calibration_clips.
  const char* calibration_clips = std::getenv("TUNELOOP_STEER_CALIBRATION_CLIPS");
  ft.calibration_clips =
      calibration_clips ? std::atoi(calibration_clips) : training.calibration_clips;
  ft.strength_scales = training.strength_scales;
  // TUNELOOP_STEER_SCALES measures other training.strength_scales, e.g. "0.5,0.75,1".
  if (const char* scales = std::getenv("TUNELOOP_STEER_SCALES")) {
    ft.strength_scales.clear();
    for (const char* c = scales; *c;) {
      char* end = nullptr;
      ft.strength_scales.push_back(std::strtod(c, &end));
      ASSERT_NE(end, c) << "TUNELOOP_STEER_SCALES: not a list of numbers: " << scales;
      c = *end == ',' ? end + 1 : end;
    }
  }
  ft.calibration_seconds = kSeconds;  // as the daemon calibrates at its tracks' length
  ft.calibration_strength = strength;
  ft.output_path = dir.file(c.name + ".safetensors");
  ft.name = c.name;
  ft.seed = static_cast<uint64_t>(draw);
  std::atomic<bool> cancel{false};
  engine->fine_tune(ft, {}, cancel);
  engine->set_adapter(c.name);
  generate_all(m.adapted);

  // Distances in feature space standardised over the base generations and the targets.
  auto towards = [&](const std::vector<audio::AudioFeatures>& targets) {
    std::vector<audio::AudioFeatures> pooled = m.base;
    pooled.insert(pooled.end(), targets.begin(), targets.end());
    const auto scale = audio::fit_scale(pooled);
    return std::tuple{debiased_distance(m.base, targets, scale), debiased_distance(m.adapted, targets, scale),
                      scale};
  };
  const auto [before, after, scale] = towards(m.target);
  const auto [voiced_before, voiced_after, voiced_scale] = towards(m.reachable);
  const auto [target_spread, target_least] = spread(m.target, scale);
  const auto [base_spread, base_least] = spread(m.base, scale);
  const auto [adapted_spread, adapted_least] = spread(m.adapted, scale);

  // What the adapter's level calibration contributes: the same clips without its gain
  // (loudness is the one feature a gain moves; what the peak limiter took back is ignored).
  const double gain_db = engine->adapter_gain_db(c.name);
  std::vector<audio::AudioFeatures> uncalibrated = m.adapted;
  for (auto& f : uncalibrated) f.loudness_db -= gain_db;
  const double after_without_gain = debiased_distance(uncalibrated, m.target, scale);

  const auto moves = moves_toward_targets(m, scale);
  double mean_move = 0;
  for (double v : moves) mean_move += v / static_cast<double>(moves.size());
  const double t = t_statistic(moves);

  // The figures the README reports.
  const auto& names = audio::feature_names();
  std::printf(
      "steerability [%s, adapter strength %.2f, low-noise emphasis %.2f, %d steps at lr %g, "
      "draw %d]: distance to the target clips %.3f -> %.3f (%.0f %% of the way); "
      "to the targets as the model voices them %.3f -> %.3f (%.0f %%); spread target %.3f "
      "base %.3f adapted %.3f (closest pair %.3f)\n",
      c.style.c_str(), strength, ft.low_noise_emphasis, ft.steps, ft.lr, draw, before, after,
      100.0 * (1.0 - after / before), voiced_before, voiced_after,
      100.0 * (1.0 - voiced_after / voiced_before), target_spread, base_spread, adapted_spread,
      adapted_least);
  std::printf("  seed by seed, toward the target clips: %+.3f sd on average (paired t = %.1f, %zu seeds)\n",
              mean_move, t, moves.size());
  std::printf("  level calibration: %+.2f dB; without it the distance would be %.3f (%.0f %% of the way)\n",
              gain_db, after_without_gain, 100.0 * (1.0 - after_without_gain / before));
  std::printf("  strength calibration: scale %.2f of the %zu tried\n",
              engine->adapter_strength_scale(c.name), ft.strength_scales.size());
  // Per feature: the means, and how far base and adapted means lie from the target clips'
  // in standard deviations (which features carry the distance that is left).
  const auto zt = centroid(m.target, scale), zb = centroid(m.base, scale), za = centroid(m.adapted, scale);
  for (std::size_t i = 0; i < names.size(); ++i)
    std::printf("  %-13s target %9.3f  voiced %9.3f  base %9.3f  adapted %9.3f   off by (sd): base %+.2f "
                "adapted %+.2f\n",
                names[i].c_str(), audio::as_vector(audio::mean_features(m.target))[i],
                audio::as_vector(audio::mean_features(m.reachable))[i],
                audio::as_vector(audio::mean_features(m.base))[i],
                audio::as_vector(audio::mean_features(m.adapted))[i], zb[i] - zt[i], za[i] - zt[i]);

  // Seed by seed, the adapter's generations move toward the clips it was trained on, beyond
  // doubt (t >= 3: one-sided p < 0.003 if it did nothing).
  EXPECT_GE(t, 3.0) << "the adapter did not move generations toward " << c.style;
  // The target: the distance to the target clips falls by at least half. The share
  // is noisy from draw to draw (docs/results.md, "Steerability": at the defaults 16 of 18
  // character-draws reach it; the piano's draws 3 and 6 go 26 and 23 %), but a draw is
  // deterministic on one machine, and the suite's (draw 1) reaches 59 / 82 / 106 %.
  EXPECT_LE(after, 0.5 * before) << c.style << ": the adapter went "
                                 << 100.0 * (1.0 - after / before)
                                 << " % of the way to its target clips, not half";
  // Varied: no two adapted clips alike, and the set keeps a good part of the spread that
  // clips of one character have among themselves.
  EXPECT_GT(adapted_least, 0.05) << "two adapted generations are nearly the same clip";
  EXPECT_GE(adapted_spread, 0.4 * target_spread) << "adapted generations collapsed";
}

INSTANTIATE_TEST_SUITE_P(ThreeCharacters, Steerability,
                         ::testing::Values(Character{"slow_minor_piano", "slow minor piano"},
                                           Character{"fast_drums_dense", "fast drums dense"},
                                           Character{"high_lead_arpeggio", "high lead arpeggio"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace tuneloop::model

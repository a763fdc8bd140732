// The neural vocoder (model/vocoder.hpp): exact output length, training, file checks, and the
// engine's and reconstruct()'s use of it, on tiny fixture configurations.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include "adapters/tensor_file.hpp"
#include "fixtures.hpp"
#include "model/engine.hpp"
#include "model/model_files.hpp"
#include "model/vocoder.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::model {
namespace {

using tuneloop::testing::TempDir;
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

VocoderConfig fixture_with_phase(const std::string& phase) {
  auto c = fixture_vocoder_config();
  c.phase = phase;
  return c;
}

// A vocoder whose head ignores its input: every frame asks for one bin `bin` at magnitude
// `magnitude`, the other bins silent, and (integrated phases) a per-frame deviation
// `deviation`; locking stays on the bin itself.
Vocoder constant_tone_vocoder(const std::string& phase, int64_t bin, double magnitude,
                              double deviation) {
  Vocoder voc(fixture_with_phase(phase));
  torch::NoGradGuard ng;
  const int64_t bins = voc->frontend.bins();
  voc->head->weight.zero_();
  auto& b = voc->head->bias;
  b.zero_();
  b.narrow(0, 0, bins).fill_(-30.0);
  b[bin] = std::log(magnitude);
  if (phase != "direct") b.narrow(0, 2 * bins, bins).fill_(deviation);
  if (phase == "locked" || phase == "hybrid") b.narrow(0, 5 * bins, bins).fill_(60.0);  // own clock
  return voc;
}

// |DFT| of `wave` at `hz`.
double dft_magnitude(const torch::Tensor& wave, double hz, int rate) {
  auto n = torch::arange(wave.numel(), torch::kFloat64);
  auto w = wave.to(torch::kFloat64);
  auto arg = n * (2.0 * M_PI * hz / rate);
  return std::hypot((w * torch::cos(arg)).sum().item<double>(),
                    (w * torch::sin(arg)).sum().item<double>());
}

// The frequency in [lo, hi] (0.1 Hz steps) where `wave` has the most energy.
double peak_frequency(const torch::Tensor& wave, double lo, double hi, int rate) {
  double best = lo, best_mag = -1;
  for (double hz = lo; hz <= hi; hz += 0.1) {
    const double m = dft_magnitude(wave, hz, rate);
    if (m > best_mag) best_mag = m, best = hz;
  }
  return best;
}

TEST(Vocoder, AnIntegratedPhaseTurnsASteadyToneBetweenBinsWhereAPerFramePhaseCannot) {
  // Bin 28 of n_fft 1024 at 16 kHz is 437.5 Hz; a deviation of d radians a frame moves the
  // tone by d·rate/(2π·hop) Hz: 0.94 rad → 437.5 + 9.35 = 446.85 Hz, between bins 28 and 29.
  const int rate = 16000, hop = 256, length = 3 * rate;
  const double deviation = 0.94, expected = 28 * 15.625 + deviation * rate / (2 * M_PI * hop);
  auto mel = torch::zeros({16, length / hop + 1});
  torch::NoGradGuard ng;
  auto direct = constant_tone_vocoder("direct", 28, 100.0, 0.0)->forward(mel, length);
  // A phase made per frame repeats every hop in the steady middle: only multiples of
  // rate/hop = 62.5 Hz can come out, so no tone at 446.85 Hz.
  auto middle = direct.narrow(0, rate, rate);
  EXPECT_LT((middle - direct.narrow(0, rate + hop, rate)).abs().max().item<double>(),
            1e-4 * middle.abs().max().item<double>());
  // Hybrid's sixth choice, no clock, is the direct phase.
  auto free = constant_tone_vocoder("hybrid", 28, 100.0, deviation);
  const int64_t bins = free->frontend.bins();
  free->head->bias.narrow(0, 5 * bins, bins).fill_(0.0);
  free->head->bias.narrow(0, 8 * bins, bins).fill_(60.0);
  EXPECT_TRUE(torch::allclose(free->forward(mel, length), direct, 1e-4, 1e-5));
  for (const std::string phase : {"integrated", "locked", "hybrid"}) {
    auto wave = constant_tone_vocoder(phase, 28, 100.0, deviation)->forward(mel, length);
    auto steady = wave.narrow(0, rate / 2, 2 * rate);
    EXPECT_NEAR(peak_frequency(steady, 420.0, 470.0, rate), expected, 0.5) << phase;
    // Steady: the level of each hop-long piece stays within 15 % of the mean.
    auto rms = steady.view({-1, hop}).pow(2).mean(1).sqrt();
    EXPECT_LT((rms / rms.mean() - 1.0).abs().max().item<double>(), 0.15) << phase;
  }
}

TEST(Vocoder, OutputHasExactlyTheRequestedLengthForAnyInputLength) {
  for (const std::string phase : {"direct", "integrated", "locked", "hybrid"}) {
    torch::manual_seed(3);
    Vocoder voc(fixture_with_phase(phase));
    torch::NoGradGuard ng;
    for (int64_t length : {1, 100, 255, 256, 257, 1000, 4096, 16001}) {
      const int64_t frames = voc->frontend.frames(length);
      auto mel = torch::randn({voc->config.frontend.mels, frames}) - 4.0;
      auto wave = voc->render(mel, length);
      EXPECT_EQ(wave.dim(), 1);
      EXPECT_EQ(wave.numel(), length) << "length " << length;
      EXPECT_TRUE(torch::isfinite(wave).all().item<bool>());
      // A mel with too few or too many frames is fitted, not refused.
      EXPECT_EQ(voc->render(mel.narrow(1, 0, std::max<int64_t>(1, frames / 2)), length).numel(),
                length);
      EXPECT_EQ(voc->render(torch::cat({mel, mel}, 1), length).numel(), length);
    }
    auto batch = voc->render(torch::randn({3, voc->config.frontend.mels, 20}), 5000);
    EXPECT_EQ(batch.sizes().vec(), (std::vector<int64_t>{3, 5000}));
    EXPECT_THROW(voc->render(torch::randn({7, 20}), 5000), ModelError);
    EXPECT_THROW(voc->render(torch::randn({voc->config.frontend.mels, 20}), 0), ModelError);
  }
}

// Training options for the tiny corpus in `dir`/corpus: crops of 4,096 samples, one clip
// held out, one thread, no checkpoints between steps, no progress lines.
VocoderTrainOptions tiny_training(TempDir& dir, const VocoderConfig& config) {
  VocoderTrainOptions o;
  o.corpus = dir.file("corpus");
  o.config = config;
  o.threads = 1;
  o.crop_samples = 4096;
  o.held_out = 1;
  o.checkpoint_every = 0;
  o.quiet = true;
  return o;
}

// A few steps at batch 2 on the tiny corpus in `dir`, started from the vocoder file `init`
// (in `dir`), written to `out` (in `dir`).
VocoderTrainOptions short_run_from(TempDir& dir, const std::string& init, const std::string& out,
                                   int steps) {
  auto o = tiny_training(dir, fixture_with_phase("hybrid"));
  o.init = dir.file(init);
  o.out = dir.file(out);
  o.steps = steps;
  o.batch = 2;
  return o;
}

TEST(Vocoder, TrainingLowersTheLossOnAFixedBatchAndResumes) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  auto o = tiny_training(dir, fixture_vocoder_config());
  o.out = dir.file("voc");
  o.autoencoder = dir.file("weights/autoencoder.safetensors");
  o.steps = 40;
  o.batch = 4;
  o.lr = 3e-3;
  auto r = train_vocoder(o);
  EXPECT_EQ(r.step, 40);
  EXPECT_LT(r.final_eval_loss, r.initial_eval_loss * 0.9);
  auto voc = load_vocoder(r.weights);
  EXPECT_EQ(voc->config, o.config);

  o.steps = 45;
  o.resume = true;
  auto resumed = train_vocoder(o);
  EXPECT_EQ(resumed.step, 45);
  std::ifstream csv(dir.file("voc/losses.csv"));
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 1 + 45);

  // A fresh run from those weights with a hybrid phase: sizes from the file, the log-magnitude
  // and offset carried over, and training still lowers the loss.
  VocoderTrainOptions from = o;
  from.resume = false;
  from.init = r.weights;
  from.out = dir.file("voc-hybrid");
  from.config.phase = "hybrid";
  from.config.dim = 24;  // ignored: the file's sizes win
  from.steps = 40;
  auto hybrid = train_vocoder(from);
  EXPECT_LT(hybrid.final_eval_loss, hybrid.initial_eval_loss * 0.9);
  auto loaded = load_vocoder(hybrid.weights);
  EXPECT_EQ(loaded->config.phase, "hybrid");
  EXPECT_EQ(loaded->config.dim, o.config.dim);
}

// The distance between two vocoder files' tensors.
double weight_distance(const std::string& a, const std::string& b) {
  auto x = load_vocoder(a)->parameters(), y = load_vocoder(b)->parameters();
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += (x[i] - y[i]).pow(2).sum().item<double>();
  return std::sqrt(sum);
}

// One step at lr 1e-3 of a tiny hybrid vocoder, from a random one saved as o.init.
VocoderTrainOptions one_step_from_a_saved_start(TempDir& dir) {
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  torch::manual_seed(3);
  auto o = tiny_training(dir, fixture_with_phase("hybrid"));
  o.init = dir.file("start.safetensors");
  save_vocoder(Vocoder(o.config), o.init);
  o.steps = 1;
  o.batch = 2;
  o.lr = 1e-3;
  return o;
}

TEST(Vocoder, AWarmUpMakesAFreshOptimizersFirstStepsSmall) {
  TempDir dir("tuneloop-model");
  auto o = one_step_from_a_saved_start(dir);
  const auto start = o.init;
  std::vector<double> moved;
  for (int warmup : {0, 10}) {
    o.warmup = warmup;
    o.out = dir.file("warmup" + std::to_string(warmup));
    moved.push_back(weight_distance(start, train_vocoder(o).weights));
  }
  // AdamW's first step moves each weight by about lr (plus weight decay), so a tenth of the
  // learning rate moves the weights about a tenth as far.
  EXPECT_NEAR(moved[1] / moved[0], 0.1, 0.02);
  o.warmup = -1;
  EXPECT_NE(error_of([&] { train_vocoder(o); }).find("warmup"), std::string::npos);
}

TEST(Vocoder, ARunResumedInsideItsWarmUpCarriesOnWithTheRamp) {
  TempDir dir("tuneloop-model");
  auto o = one_step_from_a_saved_start(dir);
  o.warmup = 10;
  o.out = dir.file("ramp");
  const auto after_one = dir.file("after-one.safetensors");
  fs::copy_file(train_vocoder(o).weights, after_one);
  fs::copy(o.out, dir.file("no-ramp"), fs::copy_options::recursive);

  // The second step, from the same checkpoint and batch: with the ramp it runs at 2/10 of
  // the learning rate; a run resumed with no warm-up takes the full rate. AdamW's update and
  // its decoupled weight decay both scale with the rate.
  o.init.clear();
  o.resume = true;
  o.steps = 2;
  const double ramped = weight_distance(after_one, train_vocoder(o).weights);
  o.warmup = 0;
  o.out = dir.file("no-ramp");
  const double full = weight_distance(after_one, train_vocoder(o).weights);
  EXPECT_NEAR(ramped / full, 0.2, 0.01);
}

// The losses.csv column of step losses.
std::vector<double> step_losses(const std::string& csv_path) {
  std::ifstream csv(csv_path);
  std::vector<double> losses;
  std::string line;
  std::getline(csv, line);  // header
  while (std::getline(csv, line)) losses.push_back(std::stod(line.substr(line.find(',') + 1)));
  return losses;
}

// A hybrid fixture run on a tiny corpus whose batch of 5 splits into slices of 2 and 3.
VocoderTrainOptions two_slice_training(TempDir& dir, int steps) {
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  auto o = tiny_training(dir, fixture_with_phase("hybrid"));
  o.steps = steps;
  o.batch = 5;
  o.lr = 3e-3;
  return o;
}

TEST(Vocoder, TrainingSplitAcrossThreadsScoresAndStepsAsOneThreadDoes) {
  TempDir dir("tuneloop-model");
  auto o = two_slice_training(dir, 8);
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 2}) {
    o.threads = threads;
    o.out = dir.file("voc" + std::to_string(threads));
    train_vocoder(o);
    runs.push_back(step_losses(o.out + "/losses.csv"));
  }
  ASSERT_EQ(runs[0].size(), 8u);
  ASSERT_EQ(runs[1].size(), 8u);
  // The first step scores the same batch with the same weights: equal up to rounding.
  EXPECT_NEAR(runs[1][0], runs[0][0], 1e-5 * runs[0][0]);
  // Later steps follow the same gradients (up to the order of float sums).
  for (size_t i = 1; i < runs[0].size(); ++i)
    EXPECT_NEAR(runs[1][i], runs[0][i], 1e-3 * runs[0][i]) << i;
  EXPECT_LT(runs[0].back(), runs[0].front());
}

// A loss term whose weight is `field`: the first step's loss is linear in the weight, the
// term lies in (low, high) at weight 1, its gradient reaches the weights, two slices score
// and step as one thread does with it, and a negative weight is refused.
void expect_an_added_loss_term(double VocoderTrainOptions::*field, double low, double high) {
  TempDir dir("tuneloop-model");
  auto o = two_slice_training(dir, 3);
  auto run = [&](double weight, int threads) {
    o.*field = weight;
    o.threads = threads;
    o.out = dir.file("voc-" + std::to_string(weight) + "-" + std::to_string(threads));
    train_vocoder(o);
    return step_losses(o.out + "/losses.csv");
  };
  const auto off = run(0.0, 2), one = run(1.0, 2), three = run(3.0, 2), three_alone = run(3.0, 1);
  // Same start, same batches: only the term's gradient can make the weights differ.
  EXPECT_GT(weight_distance(dir.file("voc-0.000000-2/vocoder.safetensors"),
                            dir.file("voc-1.000000-2/vocoder.safetensors")),
            1e-4);
  // The first step: same weights, same batch; loss(w) = w × the term + everything else.
  const double term = one.at(0) - off.at(0);
  EXPECT_GT(term, low);
  EXPECT_LT(term, high);
  EXPECT_NEAR(three.at(0) - one.at(0), 2.0 * term,
              1e-5 * three.at(0) + 1e-4);  // 6 digits in the csv
  // Two slices score and step as one thread does (the term's gradients included).
  // (Further on, Adam at this lr magnifies the float sums' different order step by step.)
  ASSERT_EQ(three_alone.size(), three.size());
  EXPECT_NEAR(three[0], three_alone[0], 1e-5 * three_alone[0]);
  for (size_t i = 1; i < three.size(); ++i)
    EXPECT_NEAR(three[i], three_alone[i], 1e-3 * three_alone[i]) << i;
  o.*field = -1;
  EXPECT_NE(error_of([&] { train_vocoder(o); }).find("loss weights"), std::string::npos);
}

TEST(Vocoder, TheSpectralConvergenceWeightScalesItsShareOfTheLoss) {
  // loss(w) = w × (spectral convergence, averaged over resolutions) + everything else.
  expect_an_added_loss_term(&VocoderTrainOptions::sc_weight, 0.05, 3.0);
}

// One second at 16 kHz of two held tones, one between bins, and a decaying click train: [1, N].
torch::Tensor tones_and_clicks() {
  const int64_t n = 16000;
  auto t = torch::arange(n, torch::kFloat64) / 16000.0;
  auto wave = 0.2 * torch::sin(2 * M_PI * 440.0 * t) + 0.1 * torch::sin(2 * M_PI * 1234.5 * t);
  for (int64_t k = 1000; k < n; k += 4000)
    wave.narrow(0, k, 400) += 0.3 * torch::exp(-torch::arange(400, torch::kFloat64) / 60.0);
  return wave.to(torch::kFloat32).unsqueeze(0);
}

TEST(Vocoder, ThePhaseDerivativeLossIsZeroForTheTargetsPhaseAndGrowsWithItsErrors) {
  const auto target = tones_and_clicks();
  auto loss = [&](const torch::Tensor& out) {
    return phase_derivative_loss(out, target, 1024).item<double>();
  };
  EXPECT_LT(loss(target), 1e-6);
  EXPECT_LT(loss(0.3 * target), 1e-6);  // the gain does not matter
  EXPECT_LT(loss(-target), 1e-6);       // nor one constant offset (here π)
  // Late by 100 samples: for the held tones that is one constant offset each, but the clicks'
  // group delay is wrong.
  const auto late = torch::constant_pad_nd(target, {100, 0}).narrow(1, 0, target.size(1));
  const double shifted = loss(late);
  EXPECT_GT(shifted, 0.01);
  // A tone off by a quarter of a bin: every time step of its phase is wrong.
  auto t = torch::arange(16000, torch::kFloat64) / 16000.0;
  const auto detuned =
      (0.2 * torch::sin(2 * M_PI * 444.0 * t) + 0.1 * torch::sin(2 * M_PI * 1234.5 * t))
          .to(torch::kFloat32)
          .unsqueeze(0);
  EXPECT_GT(loss(detuned), 0.03);
  torch::manual_seed(3);
  const double noise = loss(0.1 * torch::randn_like(target));
  // Noise: its phase steps are random but for what the window's overlap makes them share
  // with any signal (neighbouring frames overlap by 3/4), hence about 0.55, not 1.
  EXPECT_GT(noise, 0.3);
  EXPECT_LT(noise, 1.2);
  EXPECT_LT(shifted, noise);
  EXPECT_LT(loss(detuned), noise);
  // Sums over slices of a batch make up the whole batch's.
  const auto batch = torch::cat({target, late});
  const auto whole = phase_derivative_sums(0.5 * batch, batch.flip(0), 1024);
  const auto a = phase_derivative_sums(0.5 * target, late, 1024);
  const auto b = phase_derivative_sums(0.5 * late, target, 1024);
  EXPECT_NEAR(whole.weight, a.weight + b.weight, 1e-6 * whole.weight);
  EXPECT_NEAR(whole.error.item<double>(), a.error.item<double>() + b.error.item<double>(),
              1e-4 * whole.error.item<double>());
}

TEST(Vocoder, ThePhaseWeightAddsItsLossAndSplitsAcrossThreadsAsOneThreadScoresIt) {
  expect_an_added_loss_term(&VocoderTrainOptions::phase_weight, 0.05, 1.5);
}

TEST(Vocoder, ThePredictedSpectrumWeightAddsItsLossAndSplitsAcrossThreadsAsOneThreadScoresIt) {
  // An untrained fixture's spectrum is off by several nepers a bin.
  expect_an_added_loss_term(&VocoderTrainOptions::spectrum_weight, 0.1, 20.0);
}

TEST(Vocoder, AWidenedVocoderStartsAsItsSourceAndItsChannelCopiesDriftApart) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  torch::manual_seed(5);
  Vocoder narrow(fixture_with_phase("hybrid"));
  {
    torch::NoGradGuard ng;  // every tensor non-trivial, layer scales and the branch included
    for (auto& p : narrow->parameters()) p.normal_(0.0, 0.3);
  }
  auto wide_config = narrow->config;
  wide_config.dim *= 2;
  wide_config.intermediate *= 2;
  Vocoder wide(wide_config);
  init_vocoder_from(wide, narrow, "narrow.safetensors");
  const auto mel = torch::randn({2, narrow->config.frontend.mels, 20});
  {
    torch::NoGradGuard ng;
    const auto a = narrow->spectrum(mel), b = wide->spectrum(mel);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-4 * a.abs().max().item<double>());
  }
  const int dim = narrow->config.dim;
  auto copies_differ = [dim](const Vocoder& v) {
    const auto w = v->named_parameters()["blocks.0.up.weight"];
    return (w.narrow(1, 0, dim) - w.narrow(1, dim, dim)).abs().max().item<double>();
  };
  EXPECT_GT(copies_differ(wide), 0.0);  // the random shares of what reads the copies

  // Trained on, the copies of a channel (identical at the start) take different paths.
  auto embed_copies_differ = [dim](const Vocoder& v) {
    const auto w = v->named_parameters()["embed.weight"];
    return (w.narrow(0, 0, dim) - w.narrow(0, dim, dim)).abs().max().item<double>();
  };
  EXPECT_EQ(embed_copies_differ(wide), 0.0);
  save_vocoder(narrow, dir.file("narrow.safetensors"));
  auto o = short_run_from(dir, "narrow.safetensors", "wide", 3);
  o.widen = 2;
  o.lr = 1e-3;
  auto trained = load_vocoder(train_vocoder(o).weights);
  EXPECT_EQ(trained->config.dim, 2 * dim);
  EXPECT_EQ(trained->config.intermediate, 2 * narrow->config.intermediate);
  EXPECT_GT(embed_copies_differ(trained), 1e-5);
  o.init.clear();
  EXPECT_NE(error_of([&] { train_vocoder(o); }).find("widen needs init"), std::string::npos);

  // Not a whole multiple: refused.
  auto odd = narrow->config;
  odd.dim += 8;
  Vocoder not_a_multiple(odd);
  EXPECT_NE(error_of([&] {
              init_vocoder_from(not_a_multiple, narrow, "narrow.safetensors");
            }).find("narrow.safetensors"),
            std::string::npos);
}

// Waveforms [N] of a few tones each (random pitches, a couple of harmonics) over soft noise.
std::vector<torch::Tensor> tone_mixtures(int count, int64_t samples, int rate) {
  std::vector<torch::Tensor> waves;
  auto t = torch::arange(samples, torch::kFloat32) / static_cast<float>(rate);
  for (int i = 0; i < count; ++i) {
    auto w = 0.01 * torch::randn({samples});
    for (int tone = 0; tone < 3; ++tone) {
      const double f0 = 100.0 + 900.0 * torch::rand({1}).item<double>();
      for (int h = 1; h <= 3; ++h) w = w + (0.2 / h) * torch::sin(2.0 * M_PI * f0 * h * t);
    }
    waves.push_back(w);
  }
  return waves;
}

TEST(Vocoder, AVocoderReadingMoreBandsStartsAsItsSourceFedTheMappedBands) {
  torch::manual_seed(21);
  // A per-frame phase: a running phase would carry the edges' differences into every frame.
  Vocoder coarse(fixture_with_phase("direct"));
  {
    torch::NoGradGuard ng;
    for (auto& p : coarse->parameters()) p.normal_(0.0, 0.3);
  }
  auto fine_config = coarse->config;
  fine_config.frontend.mels = 2 * coarse->config.frontend.mels;
  const int rate = fine_config.frontend.sample_rate;
  const auto map = fit_band_map(coarse->config.frontend, fine_config.frontend,
                                tone_mixtures(20, rate, rate), "coarse.safetensors");
  ASSERT_EQ(map.weight.sizes(), (torch::IntArrayRef{16, 32}));
  // Each coarse band is close to a mix of the fine ones (not exact: the log of a sum is not
  // a sum of logs), and the fit is what it reports.
  const MelFrontEnd coarse_fe(coarse->config.frontend), fine_fe(fine_config.frontend);
  const auto wave = tone_mixtures(1, rate, rate)[0];  // not among the fitted
  const auto fine_mel = fine_fe.log_mel(wave).unsqueeze(0);
  const auto coarse_mel = coarse_fe.log_mel(wave).unsqueeze(0);
  auto mapped = torch::einsum("ij,bjt->bit", {map.weight, fine_fe.normalise(fine_mel)}) +
                map.bias.view({1, -1, 1});
  const double error = (mapped - coarse_fe.normalise(coarse_mel)).pow(2).mean().sqrt().item<double>();
  const double spread = coarse_fe.normalise(coarse_mel).std().item<double>();
  EXPECT_GT(map.residual, 0.0);
  EXPECT_LT(map.residual, 0.25);
  EXPECT_LT(error, 0.4 * spread);  // measured: 0.23 of it

  Vocoder fine(fine_config);
  init_vocoder_from(fine, coarse, "coarse.safetensors", &map);
  {
    // Away from the edges (where the convolutions pad with zeros in different spaces) the
    // fine vocoder computes what the coarse one does from the mapped bands.
    torch::NoGradGuard ng;
    const auto a = fine->spectrum(fine_mel);
    const auto b = coarse->spectrum(coarse_fe.denormalise(mapped));
    const int64_t frames = a.size(-1), edge = 12;
    ASSERT_GT(frames, 3 * edge);
    const auto inner_a = a.narrow(-1, edge, frames - 2 * edge), inner_b = b.narrow(-1, edge, frames - 2 * edge);
    EXPECT_LT((inner_a - inner_b).abs().max().item<double>(), 1e-3 * inner_b.abs().max().item<double>());
  }

  // Refused: other bands without a map, or a front end that differs in more than its bands.
  EXPECT_NE(error_of([&] { init_vocoder_from(fine, coarse, "coarse.safetensors"); })
                .find("coarse.safetensors: it reads 16 mel bands at 16000 Hz, the vocoder being trained 32 at 16000 Hz"),
            std::string::npos);
  auto other = fine_config.frontend;
  other.fmax = 4000.0;
  EXPECT_NE(error_of([&] {
              fit_band_map(coarse->config.frontend, other, tone_mixtures(1, rate, rate), "coarse.safetensors");
            }).find("more than its bands"),
            std::string::npos);
}

TEST(Vocoder, TrainingFromAFileWithOtherBandsFitsTheMapOnTheCorpus) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  torch::manual_seed(22);
  save_vocoder(Vocoder(fixture_with_phase("hybrid")), dir.file("coarse.safetensors"));
  auto o = short_run_from(dir, "coarse.safetensors", "fine", 2);
  o.init_mels = 24;
  auto fine = load_vocoder(train_vocoder(o).weights);
  EXPECT_EQ(fine->config.frontend.mels, 24);
  EXPECT_EQ(fine->named_parameters()["embed.weight"].size(1), 24);

  // With an autoencoder the bands are its own; the scaling of the inputs stays the file's.
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  auto eight = fixture_with_phase("hybrid");
  eight.frontend.mels = 8;
  eight.frontend.mel_offset = -3.5;
  save_vocoder(Vocoder(eight), dir.file("eight.safetensors"));
  o.init = dir.file("eight.safetensors");
  o.init_mels = 0;
  o.autoencoder = dir.file("weights/autoencoder.safetensors");
  o.out = dir.file("through");
  auto through = load_vocoder(train_vocoder(o).weights);
  EXPECT_EQ(through->config.frontend.mels, 16);
  EXPECT_EQ(through->config.frontend.mel_offset, -3.5);
  o.init_mels = 24;  // not the autoencoder's
  o.out = dir.file("clash");
  EXPECT_NE(error_of([&] { train_vocoder(o); }).find("differs from the autoencoder's"), std::string::npos);

  o.init.clear();
  o.autoencoder.clear();
  o.out = dir.file("none");
  EXPECT_NE(error_of([&] { train_vocoder(o); }).find("init_mels needs init"), std::string::npos);
}

TEST(Vocoder, AVocoderAtAHigherRateStartsAsItsSourceBelowTheSourcesNyquistAndSilentAbove) {
  torch::manual_seed(23);
  Vocoder low(fixture_with_phase("direct"));  // 16 kHz, window 1024, hop 256
  {
    torch::NoGradGuard ng;
    for (auto& p : low->parameters()) p.normal_(0.0, 0.3);
  }
  auto high_config = low->config;
  high_config.frontend = at_rate(low->config.frontend, 24000, "test");
  ASSERT_EQ(high_config.frontend.n_fft, 1536);
  ASSERT_EQ(high_config.frontend.hop, 384);
  ASSERT_EQ(high_config.frontend.fmax, 12000.0);
  // Tones below 4 kHz, at the higher rate; the map is fitted from them read at each rate.
  const auto map = fit_band_map(low->config.frontend, high_config.frontend,
                                tone_mixtures(20, 24000, 24000), "low.safetensors");
  ASSERT_EQ(map.weight.sizes(), (torch::IntArrayRef{16, 16}));
  EXPECT_LT(map.residual, 0.25);

  Vocoder high(high_config);
  init_vocoder_from(high, low, "low.safetensors", &map);
  ASSERT_EQ(high->frontend.bins(), 769);
  {
    // Bin k is the same frequency at both rates: below 8 kHz the new vocoder predicts the
    // source's spectrum of the mapped bands, 1.5 times as large (its window holds 1.5 times
    // the samples); above, near silence.
    torch::NoGradGuard ng;
    const MelFrontEnd high_fe(high_config.frontend), low_fe(low->config.frontend);
    const auto high_mel = high_fe.log_mel(tone_mixtures(1, 24000, 24000)[0]).unsqueeze(0);
    auto mapped = torch::einsum("ij,bjt->bit", {map.weight, high_fe.normalise(high_mel)}) +
                  map.bias.view({1, -1, 1});
    const auto a = high->spectrum(high_mel);
    const auto b = low->spectrum(low_fe.denormalise(mapped));
    const int64_t frames = a.size(-1), edge = 12;
    ASSERT_GT(frames, 3 * edge);
    const auto below = a.narrow(1, 0, 513).narrow(-1, edge, frames - 2 * edge);
    const auto source = 1.5 * b.narrow(-1, edge, frames - 2 * edge);
    EXPECT_LT((below - source).abs().max().item<double>(), 1e-3 * source.abs().max().item<double>());
    const auto above = a.narrow(1, 513, 769 - 513).abs();
    EXPECT_LT(above.max().item<double>(), 1e-3 * source.abs().max().item<double>());
  }

  // Refused: a lower rate, a map-less start, and front ends whose frames differ.
  Vocoder back(low->config);
  EXPECT_NE(error_of([&] { init_vocoder_from(back, high, "high.safetensors", &map); }).find("not a higher one"),
            std::string::npos);
  EXPECT_NE(error_of([&] { init_vocoder_from(high, low, "low.safetensors"); })
                .find("reads 16 mel bands at 16000 Hz, the vocoder being trained 16 at 24000 Hz"),
            std::string::npos);
  auto other = high_config.frontend;
  other.hop = 256;
  EXPECT_NE(error_of([&] {
              fit_band_map(low->config.frontend, other, tone_mixtures(1, 24000, 24000), "low.safetensors");
            }).find("a frame and its window must last as long"),
            std::string::npos);
}

TEST(Vocoder, TrainingWithAnAutoencoderAtAHigherRateStartsFromAFileAtTheLowerOne) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  torch::manual_seed(24);
  save_vocoder(Vocoder(fixture_with_phase("hybrid")), dir.file("low.safetensors"));
  auto ae_config = fixture_autoencoder_config();
  ae_config.frontend = at_rate(ae_config.frontend, 32000, "test");
  save_autoencoder(Autoencoder(ae_config), dir.file("ae32.safetensors"));
  auto o = short_run_from(dir, "low.safetensors", "high", 2);
  o.autoencoder = dir.file("ae32.safetensors");
  auto high = load_vocoder(train_vocoder(o).weights);
  EXPECT_EQ(high->config.frontend, ae_config.frontend);
  EXPECT_EQ(high->frontend.bins(), 1025);
  EXPECT_EQ(high->config.phase, "hybrid");
}

TEST(Vocoder, AVocoderStartedFromAnotherKeepsItsMagnitudesAndRefusesOtherSizes) {
  torch::manual_seed(8);
  Vocoder direct(fixture_with_phase("direct"));
  Vocoder integrated(fixture_with_phase("integrated"));
  init_vocoder_from(integrated, direct, "direct.safetensors");
  {
    torch::NoGradGuard ng;
    integrated->head->weight.narrow(0, 2 * integrated->frontend.bins(), integrated->frontend.bins())
        .zero_();
    auto mel = torch::randn({1, 16, 30}) - 4.0;
    EXPECT_TRUE(
        torch::allclose(integrated->spectrum(mel).abs(), direct->spectrum(mel).abs(), 1e-4, 1e-6));
  }
  auto wider = fixture_vocoder_config();
  wider.dim = 24;
  Vocoder other(wider);
  EXPECT_NE(error_of([&] {
              init_vocoder_from(other, direct, "direct.safetensors");
            }).find("direct.safetensors"),
            std::string::npos);
}

// Writes `voc`'s tensors with `config` as its metadata (to write what older or broken
// files hold).
void save_with_config(const Vocoder& voc, const std::string& path, const nlohmann::json& config) {
  adapters::save_state_dict(
      *voc, path, {{"format", "tuneloop-model"}, {"kind", "vocoder"}, {"config", config.dump()}});
}

TEST(Vocoder, AHeadBranchAddedToAFileWithoutOneStartsAsThatFileAndThenLearns) {
  torch::manual_seed(9);
  TempDir dir("tuneloop-model");
  auto narrow_config = fixture_with_phase("hybrid");
  narrow_config.head_hidden = 0;
  Vocoder narrow(narrow_config);
  EXPECT_FALSE(narrow->head_wide);
  auto config = nlohmann::json::parse(to_json(narrow->config));
  config.erase("head_hidden");  // as written before the key existed
  const auto old = dir.file("old.safetensors");
  save_with_config(narrow, old, config);
  auto loaded = load_vocoder(old);
  EXPECT_EQ(loaded->config.head_hidden, 0);

  Vocoder wide(fixture_with_phase("hybrid"));
  ASSERT_GT(wide->config.head_hidden, 0);
  init_vocoder_from(wide, loaded, old);
  auto mel = torch::randn({2, 16, 40}) - 4.0;
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(
        torch::allclose(wide->forward(mel, 40 * 64), loaded->forward(mel, 40 * 64), 1e-5, 1e-6));
  }
  // It learns: a few steps toward a target move the branch off zero, and then the branch
  // changes the output.
  torch::optim::AdamW opt(wide->parameters(), torch::optim::AdamWOptions(1e-3));
  auto target = 0.1 * torch::randn({2, 40 * 64});
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    multi_resolution_stft_loss(wide->forward(mel, 40 * 64), target).backward();
    opt.step();
  }
  EXPECT_GT(wide->head_wide->weight.abs().sum().item<double>(), 0.0);
  EXPECT_GT(wide->head_up->weight.grad().abs().sum().item<double>(), 0.0);

  // A file whose branch has another width does not fit; a negative width is refused.
  auto other = fixture_with_phase("hybrid");
  other.head_hidden = 32;
  Vocoder different(other);
  EXPECT_NE(error_of([&] {
              init_vocoder_from(different, wide, "wide.safetensors");
            }).find("wide.safetensors"),
            std::string::npos);
  config["head_hidden"] = -1;
  const auto bad = dir.file("bad.safetensors");
  save_with_config(narrow, bad, config);
  EXPECT_NE(error_of([&] { load_vocoder(bad); }).find(bad), std::string::npos);
}

TEST(Vocoder, ItsOutputIsFittedToTheMelAsItsFileSaysAndAnOlderFileIsNot) {
  TempDir dir("tuneloop-model");
  torch::manual_seed(9);
  auto config = fixture_with_phase("hybrid");
  config.refine = 0;
  Vocoder plain(config);
  save_vocoder(plain, dir.file("plain.safetensors"));
  config.refine = 6;
  save_with_config(plain, dir.file("fitted.safetensors"), nlohmann::json::parse(to_json(config)));
  auto fitted = load_vocoder(dir.file("fitted.safetensors"));
  EXPECT_EQ(fitted->config.refine, 6);
  const auto mel = torch::randn({fitted->config.frontend.mels, 30}) - 3.0;
  torch::NoGradGuard ng;
  const auto raw = plain->render(mel, 7000), out = fitted->render(mel, 7000);
  EXPECT_EQ(out.numel(), 7000);
  EXPECT_TRUE(torch::equal(raw, fitted->forward(mel, 7000)));  // forward: the network alone
  EXPECT_EQ(fitted->render(mel, 300).numel(), 300);  // too short to fit: as it comes
  EXPECT_TRUE(torch::equal(fitted->frontend.fit_to_mel(raw, fit_frames(mel, fitted->frontend.frames(7000)), 6), out));
  const auto mel_error = [&](const torch::Tensor& w) {
    return (fitted->frontend.log_mel(w) - fit_frames(mel, fitted->frontend.frames(7000))).abs().mean().item<double>();
  };
  EXPECT_LT(mel_error(out), mel_error(raw));

  // Written before the key: no fitting. Out of range: refused, naming the file.
  auto old_json = nlohmann::json::parse(to_json(config));
  old_json.erase("refine");
  EXPECT_EQ(vocoder_config_from_json(old_json.dump(), "old.safetensors").refine, 0);
  old_json["refine"] = kMaxRefine + 1;
  EXPECT_NE(error_of([&] { vocoder_config_from_json(old_json.dump(), "old.safetensors"); })
                .find("old.safetensors"),
            std::string::npos);
}

TEST(Vocoder, AFileWithoutAPhaseReadsAsDirectAndAnUnknownPhaseIsRefused) {
  TempDir dir("tuneloop-model");
  Vocoder voc(fixture_with_phase("direct"));
  auto config = nlohmann::json::parse(to_json(voc->config));
  config.erase("phase");  // as written before the key existed
  const auto old = dir.file("old.safetensors");
  save_with_config(voc, old, config);
  EXPECT_EQ(load_vocoder(old)->config.phase, "direct");
  config["phase"] = "spiral";
  const auto bad = dir.file("bad.safetensors");
  save_with_config(voc, bad, config);
  const auto error = error_of([&] { load_vocoder(bad); });
  EXPECT_NE(error.find(bad), std::string::npos);
  EXPECT_NE(error.find("spiral"), std::string::npos);
}

TEST(Vocoder, ACorruptTruncatedOrMismatchedFileIsRefusedNamingTheFile) {
  TempDir dir("tuneloop-model");
  Vocoder voc(fixture_vocoder_config());
  const auto good = dir.file("vocoder.safetensors");
  save_vocoder(voc, good);
  EXPECT_NO_THROW(load_vocoder(good));

  const auto truncated = dir.file("truncated.safetensors");
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  EXPECT_NE(error_of([&] { load_vocoder(truncated); }).find(truncated), std::string::npos);

  const auto garbage = dir.file("garbage.safetensors");
  std::ofstream(garbage) << "this is not a safetensors file at all";
  EXPECT_NE(error_of([&] { load_vocoder(garbage); }).find(garbage), std::string::npos);

  // Tensors of one size under a configuration of another.
  const auto mismatched = dir.file("mismatched.safetensors");
  voc->config.dim = 24;
  save_vocoder(voc, mismatched);
  EXPECT_NE(error_of([&] { load_vocoder(mismatched); }).find(mismatched), std::string::npos);

  // Another part's file under the vocoder's name.
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  const auto ae = dir.file("weights/autoencoder.safetensors");
  EXPECT_NE(error_of([&] { load_vocoder(ae); }).find("not a tuneloop vocoder"), std::string::npos);

  // The engine refuses a weights folder with a broken vocoder instead of falling back.
  fs::copy_file(truncated, dir.file("weights/vocoder.safetensors"));
  EXPECT_NE(error_of([&] { Engine::load({dir.file("weights"), "cpu", 1}); }).find("vocoder.safetensors"),
            std::string::npos);
}

TEST(Vocoder, TheEngineUsesAVocoderInItsWeightsFolderAndFallsBackToGriffinLim) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  GenerateParams p;
  p.seconds = 0.7;
  p.steps = 2;
  p.seed = 4;
  {
    auto engine = Engine::load({dir.file("weights"), "cpu", 1});
    EXPECT_EQ(engine->vocoder(), "griffin-lim");
    p.vocoder = "neural";
    EXPECT_NE(error_of([&] { engine->generate(p); }).find("vocoder.safetensors"), std::string::npos);
  }
  torch::manual_seed(5);
  save_vocoder(Vocoder(fixture_vocoder_config()), dir.file("weights/vocoder.safetensors"));
  auto engine = Engine::load({dir.file("weights"), "cpu", 1});
  EXPECT_EQ(engine->vocoder(), "neural");
  p.vocoder = "auto";
  const auto automatic = engine->generate(p);
  p.vocoder = "neural";
  const auto neural = engine->generate(p);
  p.vocoder = "griffin-lim";
  const auto griffin_lim = engine->generate(p);
  EXPECT_EQ(automatic.samples.size(), 11200u);
  EXPECT_EQ(griffin_lim.samples.size(), 11200u);
  EXPECT_EQ(automatic.samples, neural.samples);
  EXPECT_NE(neural.samples, griffin_lim.samples);
  p.vocoder = "wavenet";
  EXPECT_NE(error_of([&] { engine->generate(p); }).find("wavenet"), std::string::npos);
}

TEST(Vocoder, EvaluationScoresBothPathsOrTrueFeaturesAloneWithTheVocodersOwnFrontEnd) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 4, 1.0);
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  save_vocoder(Vocoder(fixture_vocoder_config()), dir.file("weights/vocoder.safetensors"));
  ReconstructOptions o;
  o.weights_dir = dir.file("weights");
  o.threads = 1;
  o.griffin_lim_iterations = 2;
  const auto both = evaluate_vocoder(dir.file("corpus"), 3, o);
  EXPECT_EQ(both.clips, 3);
  EXPECT_TRUE(both.through_autoencoder);
  for (const auto* s : {&both.neural_true, &both.neural_autoencoder, &both.griffin_lim_true,
                        &both.griffin_lim_autoencoder}) {
    EXPECT_GT(s->spectral_convergence, 0.0);
    EXPECT_TRUE(std::isfinite(s->log_spectral_distance));
    EXPECT_GT(s->flatness_in, 0.0);
  }
  o.through_autoencoder = false;
  const auto alone = evaluate_vocoder(dir.file("corpus"), 3, o);
  EXPECT_FALSE(alone.through_autoencoder);
  EXPECT_NEAR(alone.neural_true.spectral_convergence, both.neural_true.spectral_convergence, 1e-9);
  EXPECT_EQ(alone.neural_autoencoder.spectral_convergence, 0.0);
  EXPECT_EQ(alone.griffin_lim_autoencoder.spectral_convergence, 0.0);
  // A vocoder that reads other features than the autoencoder: refused where the autoencoder
  // is used, scored where it is not.
  auto other = fixture_vocoder_config();
  other.frontend.mels = 24;
  save_vocoder(Vocoder(other), dir.file("other.safetensors"));
  o.vocoder = dir.file("other.safetensors");
  EXPECT_GT(evaluate_vocoder(dir.file("corpus"), 2, o).neural_true.spectral_convergence, 0.0);
  o.through_autoencoder = true;
  EXPECT_NE(error_of([&] { evaluate_vocoder(dir.file("corpus"), 2, o); }).find("other.safetensors"),
            std::string::npos);
}

TEST(Vocoder, ReconstructKeepsRateAndDurationOnEveryPath) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  save_vocoder(Vocoder(fixture_vocoder_config()), dir.file("weights/vocoder.safetensors"));
  audio::Audio in;
  in.sample_rate = 22050;
  in.samples = tuneloop::testing::tone(330.0, 0.8, 4.0, 22050);
  ReconstructOptions o;
  o.weights_dir = dir.file("weights");
  o.threads = 1;
  o.griffin_lim_iterations = 4;
  for (bool ae : {true, false}) {
    for (bool gl : {false, true}) {
      o.through_autoencoder = ae;
      o.griffin_lim = gl;
      auto out = reconstruct(in, o);
      EXPECT_EQ(out.sample_rate, 16000);
      EXPECT_NEAR(static_cast<double>(out.samples.size()), 0.8 * 16000, 2.0);
    }
  }
  o.vocoder = dir.file("missing.safetensors");
  o.griffin_lim = false;
  EXPECT_NE(error_of([&] { reconstruct(in, o); }).find("missing.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace tuneloop::model

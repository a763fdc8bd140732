// The neural vocoder (model/vocoder.hpp): exact output length, training, file checks, and the
// engine's and reconstruct()'s use of it, on tiny fixture configurations.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <torch/torch.h>

#include "fixtures.hpp"
#include "model/engine.hpp"
#include "model/model_files.hpp"
#include "model/vocoder.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::model {
namespace {

using tuneloop::test::TempDir;
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(Vocoder, OutputHasExactlyTheRequestedLengthForAnyInputLength) {
  torch::manual_seed(3);
  Vocoder voc(fixture_vocoder_config());
  torch::NoGradGuard ng;
  for (int64_t length : {1, 100, 255, 256, 257, 1000, 4096, 16001}) {
    const int64_t frames = voc->frontend.frames(length);
    auto mel = torch::randn({voc->config.frontend.mels, frames}) - 4.0;
    auto wave = voc->forward(mel, length);
    EXPECT_EQ(wave.dim(), 1);
    EXPECT_EQ(wave.numel(), length) << "length " << length;
    EXPECT_TRUE(torch::isfinite(wave).all().item<bool>());
    // A mel with too few or too many frames is fitted, not refused.
    EXPECT_EQ(voc->forward(mel.narrow(1, 0, std::max<int64_t>(1, frames / 2)), length).numel(), length);
    EXPECT_EQ(voc->forward(torch::cat({mel, mel}, 1), length).numel(), length);
  }
  auto batch = voc->forward(torch::randn({3, voc->config.frontend.mels, 20}), 5000);
  EXPECT_EQ(batch.sizes().vec(), (std::vector<int64_t>{3, 5000}));
  EXPECT_THROW(voc->forward(torch::randn({7, 20}), 5000), ModelError);
  EXPECT_THROW(voc->forward(torch::randn({voc->config.frontend.mels, 20}), 0), ModelError);
}

TEST(Vocoder, TrainingLowersTheLossOnAFixedBatchAndResumes) {
  TempDir dir("tuneloop-model");
  testing::write_tiny_corpus(dir.file("corpus"), 6, 1.5);
  testing::write_fixture_weights(dir.file("weights"));
  VocoderTrainOptions o;
  o.corpus = dir.file("corpus");
  o.out = dir.file("voc");
  o.autoencoder = dir.file("weights/autoencoder.safetensors");
  o.config = fixture_vocoder_config();
  o.steps = 40;
  o.batch = 4;
  o.lr = 3e-3;
  o.threads = 1;
  o.crop_samples = 4096;
  o.held_out = 1;
  o.checkpoint_every = 0;
  o.quiet = true;
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
  testing::write_fixture_weights(dir.file("weights"));
  const auto ae = dir.file("weights/autoencoder.safetensors");
  EXPECT_NE(error_of([&] { load_vocoder(ae); }).find("not a tuneloop vocoder"), std::string::npos);

  // The engine refuses a weights folder with a broken vocoder instead of falling back.
  fs::copy_file(truncated, dir.file("weights/vocoder.safetensors"));
  EXPECT_NE(error_of([&] { Engine::load({dir.file("weights"), "cpu", 1}); }).find("vocoder.safetensors"),
            std::string::npos);
}

TEST(Vocoder, TheEngineUsesAVocoderInItsWeightsFolderAndFallsBackToGriffinLim) {
  TempDir dir("tuneloop-model");
  testing::write_fixture_weights(dir.file("weights"));
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

TEST(Vocoder, ReconstructKeepsRateAndDurationOnEveryPath) {
  TempDir dir("tuneloop-model");
  testing::write_fixture_weights(dir.file("weights"));
  save_vocoder(Vocoder(fixture_vocoder_config()), dir.file("weights/vocoder.safetensors"));
  audio::Audio in;
  in.sample_rate = 22050;
  in.samples = testing::tone(330.0, 0.8, 4.0, 22050);
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

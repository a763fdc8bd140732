// The model's parts through their LibTorch interfaces, with tiny fixture configurations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "adapters/lora.hpp"
#include "adapters/tensor_file.hpp"
#include "audio/audio.hpp"
#include "fixtures.hpp"
#include "model/diffusion.hpp"
#include "model/frontend.hpp"
#include "model/model_files.hpp"
#include "model/networks.hpp"
#include "model/preference_losses.hpp"
#include "model/training.hpp"
#include "model/training_util.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::model {
namespace {

using tuneloop::testing::TempDir;

double snr_db(const torch::Tensor& reference, const torch::Tensor& estimate) {
  const double signal = reference.pow(2).sum().item<double>();
  const double noise = (reference - estimate).pow(2).sum().item<double>();
  return 10.0 * std::log10(signal / std::max(noise, 1e-30));
}

TEST(FrontEnd, StftThenInverseStftKeepsTheSignalAbove40DbSnr) {
  MelFrontEnd fe(FrontEndConfig{});
  torch::manual_seed(3);
  auto x = torch::randn({16000}) * 0.1;
  auto y = fe.istft(fe.stft(x), x.size(0));
  EXPECT_GT(snr_db(x, y), 40.0);
}

TEST(FrontEnd, LogMelHasOneFramePerHopPlusOne) {
  MelFrontEnd fe(FrontEndConfig{});
  auto mel = fe.log_mel(torch::zeros({16000}));
  EXPECT_EQ(mel.size(0), 64);
  EXPECT_EQ(mel.size(1), 16000 / 256 + 1);
}

TEST(FrontEnd, GriffinLimFromTheMelOfASineGivesTheSineFrequencyBack) {
  MelFrontEnd fe(FrontEndConfig{});
  const double hz = 440.0;
  auto t = torch::arange(16000, torch::kFloat32) / 16000.0;
  auto x = 0.5 * torch::sin(2 * M_PI * hz * t);
  auto y = fe.to_waveform(fe.log_mel(x), x.size(0), 32);
  auto spectrum = torch::fft_rfft(y * torch::hann_window(16000)).abs();
  const double peak = spectrum.argmax().item<int64_t>();  // 1 Hz per bin for 1 s
  EXPECT_NEAR(peak, hz, hz * 0.05);
}

// ‖|S| − |Ŝ|‖ / ‖|S|‖ at the front end's STFT.
double spectral_convergence(const MelFrontEnd& fe, const torch::Tensor& reference,
                            const torch::Tensor& estimate) {
  const auto a = fe.stft(reference).abs(), b = fe.stft(estimate).abs();
  return ((a - b).norm() / a.norm()).item<double>();
}

TEST(FrontEnd, FittingToAMelUndoesWrongBandGainsAndLeavesARightWaveformAlone) {
  MelFrontEnd fe(FrontEndConfig{});
  torch::manual_seed(6);
  auto t = torch::arange(16000, torch::kFloat32) / 16000.0;
  auto truth = 0.01 * torch::randn({16000});
  for (double hz : {196.0, 311.0, 440.0, 1250.0}) truth = truth + 0.2 * torch::sin(2 * M_PI * hz * t);
  // A rendering with every band's energy off by a random factor of 0.4–2.5 (the partials
  // and their phases right): what the fit is for.
  const auto gains = torch::exp((torch::rand({64, 1}) - 0.5) * 1.8);
  const auto bin_gain = torch::matmul(fe.filterbank().t(), gains) /
                        torch::clamp_min(fe.filterbank().sum(0).unsqueeze(-1), 1e-9);
  const auto off = fe.istft(fe.stft(truth) * torch::where(fe.filterbank().sum(0).unsqueeze(-1) > 0,
                                                          bin_gain, torch::ones_like(bin_gain)),
                            16000);
  const auto mel = fe.log_mel(truth);
  const double before = spectral_convergence(fe, truth, off);
  const double after4 = spectral_convergence(fe, truth, fe.fit_to_mel(off, mel, 4));
  EXPECT_GT(before, 0.2);
  EXPECT_LT(after4, 0.1 * before);
  EXPECT_LT((fe.log_mel(fe.fit_to_mel(off, mel, 16)) - mel).abs().mean().item<double>(),
            0.2 * (fe.log_mel(off) - mel).abs().mean().item<double>());

  // Already at its mel: left (nearly) as it is; no rounds: untouched; a batch fits alike.
  EXPECT_GT(snr_db(truth, fe.fit_to_mel(truth, mel, 8)), 30.0);
  EXPECT_TRUE(torch::equal(fe.fit_to_mel(off, mel, 0), off));
  const auto batch = fe.fit_to_mel(torch::stack({off, truth}), torch::stack({mel, mel}), 4);
  EXPECT_TRUE(torch::allclose(batch[0], fe.fit_to_mel(off, mel, 4), 1e-4, 1e-5));
}

TEST(FrontEnd, MelToMagnitudeIsNeverNegative) {
  MelFrontEnd fe(FrontEndConfig{});
  torch::manual_seed(4);
  auto mag = fe.mel_to_magnitude(fe.log_mel(torch::randn({8000})));
  EXPECT_GE(mag.min().item<double>(), 0.0);
  EXPECT_EQ(mag.size(0), 513);
}

TEST(Autoencoder, CompressesFourfoldOnBothAxesForSeveralLengths) {
  Autoencoder ae(fixture_autoencoder_config());
  torch::NoGradGuard ng;
  for (int64_t frames : {4, 16, 36, 100}) {
    auto x = torch::randn({2, 1, 16, frames});
    auto z = ae->encode(x);
    EXPECT_EQ(z.sizes(), torch::IntArrayRef({2, 4, 4, frames / 4}));
    EXPECT_EQ(ae->decode(z).sizes(), x.sizes());
  }
  Autoencoder full(AutoencoderConfig{});
  auto z = full->encode(torch::randn({1, 1, 64, 64}));
  EXPECT_EQ(z.sizes(), torch::IntArrayRef({1, 4, 16, 16}));
}

TEST(Autoencoder, ABandFoldKeepsTheLatentHeightOfACoarserMelAndEachBandItsOwnPlace) {
  auto config = fixture_autoencoder_config();
  config.frontend.mels = 32;
  config.band_fold = 2;
  config.latent_channels = 8;
  Autoencoder ae(config);
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 1, 32, 24});
  auto z = ae->encode(x);
  EXPECT_EQ(z.sizes(), torch::IntArrayRef({2, 8, 4, 6}));  // the height 16 bands give unfolded
  EXPECT_EQ(ae->decode(z).sizes(), x.sizes());
  EXPECT_EQ(config.latent_height(), 4);

  // Band f·r + i goes to channel i, row r, and comes back where it was.
  const auto folded = fold_bands(x, 2);
  EXPECT_EQ(folded.sizes(), torch::IntArrayRef({2, 2, 16, 24}));
  EXPECT_TRUE(torch::equal(folded[1][1][5], x[1][0][2 * 5 + 1]));
  EXPECT_TRUE(torch::equal(folded[0][0][7], x[0][0][2 * 7]));
  EXPECT_TRUE(torch::equal(unfold_bands(folded, 2), x));

  // A fold that does not divide the bands, or is not 1, 2 or 4, is refused naming the file.
  auto json = nlohmann::json::parse(to_json(config));
  EXPECT_EQ(json.at("band_fold"), 2);
  json["band_fold"] = 3;
  EXPECT_THROW(autoencoder_config_from_json(json.dump(), "ae.safetensors"), ModelError);
  json["band_fold"] = 4;
  json["frontend"]["mels"] = 40;
  try {
    autoencoder_config_from_json(json.dump(), "ae.safetensors");
    ADD_FAILURE() << "40 bands folded by 4 at factor 4 accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("ae.safetensors: mels (40)"), std::string::npos) << e.what();
  }
  // Files from before the key read as 1.
  json.erase("band_fold");
  json["frontend"]["mels"] = 16;
  EXPECT_EQ(autoencoder_config_from_json(json.dump(), "ae.safetensors").band_fold, 1);
}

TEST(Denoiser, KeepsTheLatentShapeForSeveralLengths) {
  Denoiser dn(fixture_denoiser_config({"a", "b"}));
  torch::NoGradGuard ng;
  for (int64_t length : {2, 6, 16, 30}) {
    auto x = torch::randn({3, 4, 4, length});
    auto v = dn->forward(x, torch::rand({3}), torch::ones({3, 2}));
    EXPECT_EQ(v.sizes(), x.sizes());
  }
  Denoiser full(DenoiserConfig{});
  auto v = full->forward(torch::randn({1, 4, 16, 20}), torch::rand({1}), {});
  EXPECT_EQ(v.sizes(), torch::IntArrayRef({1, 4, 16, 20}));
}

Denoiser noisy_fixture_denoiser() {
  torch::manual_seed(5);
  Denoiser dn(fixture_denoiser_config({"a", "b"}));
  torch::NoGradGuard ng;
  dn->conv_out->base_weight().normal_(0.0, 0.05);
  return dn;
}

// An adapter trained with a preference objective on two made-up styles (latents around +1
// liked, around -1 disliked); returns the mean implicit reward (reference loss minus the
// adapter's, at shared draws) of the liked and of the disliked examples afterwards.
std::pair<double, double> implicit_rewards_after(const std::string& objective, double lr, int steps) {
  auto dn = noisy_fixture_denoiser();
  adapters::add_adapter(*dn, "pref", adapters::LoraConfig{4, 4.0, 0.0, {".*"}});
  adapters::set_active_adapter(*dn, "pref");
  adapters::freeze_base(*dn);
  auto params = adapters::adapter_parameters(*dn, "pref");
  for (auto& p : params) p.set_requires_grad(true);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).weight_decay(0.0));
  torch::manual_seed(3);
  const auto liked = torch::randn({4, 4, 4, 8}) * 0.3 + 1.0;
  const auto disliked = torch::randn({4, 4, 4, 8}) * 0.3 - 1.0;
  const double beta = calibrated_beta(dn, "pref", liked, disliked, draw_diffusion_noise(liked));
  for (int step = 0; step < steps; ++step) {
    PreferenceLoss p;
    if (objective == "dpo") {
      p = dpo_loss(dn, "pref", liked, disliked, draw_diffusion_noise(liked), beta);
    } else {
      const auto x0 = torch::cat({liked, disliked});
      const auto label = torch::cat({torch::ones({4}, torch::kBool), torch::zeros({4}, torch::kBool)});
      p = kto_loss(dn, "pref", x0, label, draw_diffusion_noise(x0), beta);
    }
    opt.zero_grad();
    p.loss.backward();
    opt.step();
  }
  torch::NoGradGuard ng;
  torch::manual_seed(99);
  const auto draws = draw_diffusion_noise(liked);
  auto reward = [&](const torch::Tensor& x) {
    return (reference_losses(dn, "pref", x, draws) -
            diffusion_loss_per_example(dn, x, torch::Tensor(), draws))
        .mean()
        .item<double>();
  };
  return {reward(liked), reward(disliked)};
}

TEST(PreferenceObjectives, KtoAndDpoRaiseTheImplicitRewardOfLikedOverDislikedAgainstTheBase) {
  for (const std::string objective : {"kto", "dpo"}) {
    const auto [liked, disliked] = implicit_rewards_after(objective, 1e-2, 40);
    EXPECT_GT(liked - disliked, 0.0) << objective << ": liked " << liked << ", disliked " << disliked;
  }
}

TEST(PreferenceObjectives, LeaveTheModelAsTheBaseAtZeroLearningRate) {
  for (const std::string objective : {"kto", "dpo"}) {
    const auto [liked, disliked] = implicit_rewards_after(objective, 0.0, 5);
    EXPECT_EQ(liked, 0.0) << objective;  // the adapter's B factors are still exactly 0
    EXPECT_EQ(disliked, 0.0) << objective;
  }
}

TEST(Sampler, IsDeterministicForASeedAndDiffersAcrossSeeds) {
  auto dn = noisy_fixture_denoiser();
  auto tags = torch::tensor({{1.0f, 0.0f}});
  for (auto [solver, schedule] :
       {std::pair{Solver::ddim, Schedule::uniform}, std::pair{Solver::dpmpp_2m, Schedule::uniform},
        std::pair{Solver::dpmpp_2m, Schedule::karras}}) {
    SampleOptions o;
    o.solver = solver;
    o.schedule = schedule;
    o.steps = 6;
    o.seed = 42;
    auto a = sample(dn, 8, tags, o);
    auto b = sample(dn, 8, tags, o);
    o.seed = 43;
    auto c = sample(dn, 8, tags, o);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::allclose(a, c));
    EXPECT_FALSE(torch::isnan(a).any().item<bool>());
  }
}

TEST(Sampler, StepTimesRunFromTheStartDownToZeroAndKarrasCrowdsThemAtLowNoise) {
  for (double t_start : {1.0, 0.6}) {
    for (auto schedule : {Schedule::uniform, Schedule::karras}) {
      const auto times = sample_times(t_start, 25, schedule);
      ASSERT_EQ(times.size(), 26u);
      EXPECT_EQ(times.front(), t_start);
      EXPECT_EQ(times.back(), 0.0);
      for (size_t i = 1; i < times.size(); ++i) EXPECT_LT(times[i], times[i - 1]) << "step " << i;
    }
    auto below = [](const std::vector<double>& times, double t) {
      return std::count_if(times.begin(), times.end(), [t](double x) { return x < t; });
    };
    // Below noise-to-signal ratio 0.1 (t ≈ 0.063) from t = 1: 2 of the 26 uniform times, 7 of
    // Karras's.
    EXPECT_GE(below(sample_times(t_start, 25, Schedule::karras), 0.063),
              below(sample_times(t_start, 25, Schedule::uniform), 0.063) + 4);
  }
  EXPECT_EQ(sample_times(1.0, 1, Schedule::karras), (std::vector<double>{1.0, 0.0}));
  // A start too close to 0 for Karras's range falls back to even steps, still decreasing.
  EXPECT_EQ(sample_times(0.001, 2, Schedule::karras), (std::vector<double>{0.001, 0.0005, 0.0}));
  EXPECT_THROW(schedule_from_name("cosine"), ModelError);
}

TEST(Sampler, Img2ImgWithStrengthZeroReturnsTheSeedAndSmallStrengthStaysClose) {
  auto dn = noisy_fixture_denoiser();
  torch::manual_seed(6);
  auto seed = torch::randn({1, 4, 4, 8});
  SampleOptions o;
  o.init = seed;
  o.strength = 0.0;
  EXPECT_TRUE(torch::equal(sample(dn, 8, {}, o), seed));
  o.strength = 0.02;
  const double near = (sample(dn, 8, {}, o) - seed).norm().item<double>() / seed.norm().item<double>();
  o.strength = 1.0;
  const double far = (sample(dn, 8, {}, o) - seed).norm().item<double>() / seed.norm().item<double>();
  EXPECT_LT(near, 0.1);
  EXPECT_GT(far, near);
}

TEST(Slerp, OfOneLatentIsItselfAndOfTwoHasANormBetweenTheirs) {
  torch::manual_seed(7);
  auto a = torch::randn({1, 4, 4, 8});
  auto b = 3.0 * torch::randn({1, 4, 4, 10});
  EXPECT_TRUE(torch::allclose(slerp_all({a}), a));
  auto m = slerp_all({a, b});
  EXPECT_EQ(m.size(-1), 8);
  const double na = a.norm().item<double>(), nb = b.narrow(-1, 0, 8).norm().item<double>();
  const double nm = m.norm().item<double>();
  EXPECT_GT(nm, std::min(na, nb));
  EXPECT_LT(nm, std::max(na, nb));
  EXPECT_TRUE(torch::allclose(slerp(a, b.narrow(-1, 0, 8), 0.0), a, 1e-5, 1e-5));
}

TEST(ModelFiles, SaveThenLoadGivesIdenticalOutputs) {
  TempDir dir("tuneloop-model");
  torch::manual_seed(8);
  Autoencoder ae(fixture_autoencoder_config());
  auto dn = noisy_fixture_denoiser();
  save_autoencoder(ae, dir.file("ae.safetensors"));
  save_denoiser(dn, dir.file("dn.safetensors"), "abc");
  auto ae2 = load_autoencoder(dir.file("ae.safetensors"));
  std::string hash;
  auto dn2 = load_denoiser(dir.file("dn.safetensors"), &hash);
  EXPECT_EQ(hash, "abc");
  EXPECT_EQ(dn2->config, dn->config);
  torch::NoGradGuard ng;
  ae->eval();
  dn->eval();
  auto x = torch::randn({1, 1, 16, 32});
  EXPECT_TRUE(torch::equal(ae->forward(x), ae2->forward(x)));
  auto z = torch::randn({1, 4, 4, 8});
  auto t = torch::full({1}, 0.5);
  auto tags = torch::tensor({{0.0f, 1.0f}});
  EXPECT_TRUE(torch::equal(dn->forward(z, t, tags), dn2->forward(z, t, tags)));
}

void expect_model_error_naming(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ModelFiles, CorruptTruncatedOrMismatchedFilesAreRejectedWithTheFileNamed) {
  TempDir dir("tuneloop-model");
  Autoencoder ae(fixture_autoencoder_config());
  const auto good = dir.file("ae.safetensors");
  save_autoencoder(ae, good);

  const auto garbage = dir.file("garbage.safetensors");
  std::ofstream(garbage) << "this is not a model";
  expect_model_error_naming([&] { load_autoencoder(garbage); }, garbage);

  const auto truncated = dir.file("truncated.safetensors");
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  expect_model_error_naming([&] { load_autoencoder(truncated); }, truncated);

  expect_model_error_naming([&] { load_denoiser(good); }, "expected a denoiser");
  expect_model_error_naming([&] { load_autoencoder(dir.file("missing.safetensors")); }, "missing");

  // Tensors of one configuration under the metadata of another.
  auto big = fixture_autoencoder_config();
  big.channels = {8, 32};
  Autoencoder other(big);
  const auto lying = dir.file("lying.safetensors");
  adapters::save_state_dict(*other, lying,
                            {{"format", "tuneloop-model"}, {"kind", "autoencoder"},
                             {"config", to_json(fixture_autoencoder_config())}});
  expect_model_error_naming([&] { load_autoencoder(lying); }, lying);
}

TEST(Adapters, AZeroInitialisedAdapterLeavesSamplingUnchanged) {
  auto dn = noisy_fixture_denoiser();
  SampleOptions o;
  o.steps = 4;
  o.seed = 9;
  auto before = sample(dn, 8, torch::tensor({{1.0f, 0.0f}}), o);
  adapters::add_adapter(*dn, "fresh", adapters::LoraConfig{4, 4.0, 0.0, {".*"}});
  adapters::set_active_adapter(*dn, "fresh");
  auto after = sample(dn, 8, torch::tensor({{1.0f, 0.0f}}), o);
  EXPECT_TRUE(torch::allclose(before, after, 1e-6, 1e-6));
}

// Denoiser training on the tiny corpus in `corpus`: 8 latent frames, batch 8, lr 2e-3,
// one thread, no progress lines.
DenoiserTrainOptions tiny_denoiser_training(const std::string& corpus, const std::string& out,
                                            const std::string& autoencoder, int steps) {
  DenoiserTrainOptions o;
  o.corpus = corpus;
  o.out = out;
  o.autoencoder = autoencoder;
  o.steps = steps;
  o.batch = 8;
  o.lr = 2e-3;
  o.crop_latent = 8;
  o.quiet = true;
  o.threads = 1;
  return o;
}

AutoencoderTrainOptions tiny_autoencoder_training(const std::string& corpus, const std::string& out,
                                                  int steps) {
  AutoencoderTrainOptions o;
  o.corpus = corpus;
  o.out = out;
  o.config = fixture_autoencoder_config();
  o.steps = steps;
  o.batch = 4;
  o.crop_frames = 32;
  o.quiet = true;
  o.threads = 1;
  return o;
}

TEST(Training, AFewAutoencoderAndDenoiserStepsLowerTheLoss) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"));
  AutoencoderTrainOptions ao;
  ao.corpus = dir.file("corpus");
  ao.out = dir.file("out");
  ao.config = fixture_autoencoder_config();
  ao.steps = 40;
  ao.batch = 4;
  ao.crop_frames = 32;
  ao.checkpoint_every = 25;
  ao.quiet = true;
  ao.threads = 1;
  auto ar = train_autoencoder(ao);
  EXPECT_EQ(ar.step, 40);
  EXPECT_LT(ar.final_eval_loss, ar.initial_eval_loss);

  auto dopt = tiny_denoiser_training(ao.corpus, ao.out, ar.weights, 60);
  dopt.config = fixture_denoiser_config({});
  auto dr = train_denoiser(dopt);
  EXPECT_LT(dr.final_eval_loss, dr.initial_eval_loss);
  auto dn = load_denoiser(dr.weights);
  EXPECT_EQ(dn->config.tags, (std::vector<std::string>{"fast", "high", "low", "slow"}));

  // Resuming continues from the checkpoint's step rather than starting over.
  dopt.resume = true;
  dopt.steps = 65;
  EXPECT_EQ(train_denoiser(dopt).step, 65);

  // A fresh run started from those weights keeps their tags and begins where they left off,
  // well below a random start's loss on the same evaluation batch.
  DenoiserTrainOptions again = dopt;
  again.resume = false;
  again.out = dir.file("again");
  again.init = dr.weights;
  again.config.channels = {4, 8};  // ignored: the channels come from the weights
  again.steps = 1;
  auto ar2 = train_denoiser(again);
  EXPECT_LT(ar2.initial_eval_loss, 0.9 * dr.initial_eval_loss);
  EXPECT_EQ(load_denoiser(ar2.weights)->config, dn->config);

  // A vocabulary with words the weights lack (e.g. key tags added later): the new words start
  // with a zero embedding and the known ones keep theirs wherever the vocabulary puts them,
  // so with nothing learnt (lr 0) the widened denoiser predicts what the old one did.
  DenoiserTrainOptions widen = again;
  widen.out = dir.file("widened");
  widen.vocabulary = {"slow", "key-a", "fast", "low", "high"};
  widen.lr = 0.0;
  auto reference = load_denoiser(widen.init);  // the file as the resumed run left it
  auto widened = load_denoiser(train_denoiser(widen).weights);
  EXPECT_EQ(widened->config.tags, widen.vocabulary);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    const auto x =
        torch::randn({2, reference->config.latent_channels, reference->config.latent_height, 8});
    const auto t = torch::tensor({0.3f, 0.8f});
    const std::vector<std::string> tags{"slow", "high"};
    const auto before = reference->forward(
        x, t, multi_hot(tags, reference->config.tags).unsqueeze(0).expand({2, -1}));
    const auto after =
        widened->forward(x, t, multi_hot(tags, widened->config.tags).unsqueeze(0).expand({2, -1}));
    EXPECT_TRUE(torch::allclose(before, after, 1e-5, 1e-6));
    const auto with_key = std::vector<std::string>{"slow", "high", "key-a"};
    EXPECT_TRUE(torch::allclose(
        after,
        widened->forward(x, t,
                         multi_hot(with_key, widened->config.tags).unsqueeze(0).expand({2, -1})),
        1e-5, 1e-6));
  }
  // A vocabulary that drops one of the weights' words is refused, naming the weights.
  widen.vocabulary = {"slow", "fast", "low"};
  widen.out = dir.file("narrowed");
  try {
    train_denoiser(widen);
    ADD_FAILURE() << "a vocabulary without 'high' was accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(dr.weights), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'high'"), std::string::npos) << e.what();
  }

  // Weights made for another autoencoder are refused, naming the file.
  ao.out = dir.file("other-ae");
  ao.steps = 1;
  ao.seed = 99;
  again.autoencoder = train_autoencoder(ao).weights;
  again.out = dir.file("refused");
  try {
    train_denoiser(again);
    ADD_FAILURE() << "weights made for another autoencoder were accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(dr.weights), std::string::npos) << e.what();
  }
}

TEST(Training, AStopRequestCheckpointsAndResumeContinuesFromThere) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 4);
  std::atomic<bool> stop{true};
  AutoencoderTrainOptions ao;
  ao.corpus = dir.file("corpus");
  ao.out = dir.file("out");
  ao.config = fixture_autoencoder_config();
  ao.steps = 10;
  ao.batch = 2;
  ao.crop_frames = 16;
  ao.quiet = true;
  ao.threads = 1;
  ao.stop = &stop;
  auto r = train_autoencoder(ao);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.step, 0);
  stop = false;
  ao.resume = true;
  EXPECT_EQ(train_autoencoder(ao).step, 10);
}

TEST(Training, ADecoderOnlyRunKeepsEveryLatentSoTheDenoisersMadeForItsInitStillFit) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6);
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  const auto init_file = dir.file("weights/autoencoder.safetensors");
  auto denoiser_run = tiny_denoiser_training(dir.file("corpus"), dir.file("dn"), init_file, 5);
  denoiser_run.init = dir.file("weights/denoiser.safetensors");
  const auto denoiser = train_denoiser(denoiser_run).weights;

  auto ao = tiny_autoencoder_training(dir.file("corpus"), dir.file("decoder"), 30);
  ao.config.frontend.mels = 8;  // ignored: the configuration comes from the init
  ao.flux_weight = 2.0;
  ao.held_out = 2;
  ao.decoder_only = true;
  EXPECT_THROW(train_autoencoder(ao), ModelError);  // no --init: no encoder to keep
  ao.init = init_file;
  const auto r = train_autoencoder(ao);
  EXPECT_EQ(r.step, 30);
  EXPECT_LT(r.final_eval_loss, r.initial_eval_loss);

  auto before = load_autoencoder(init_file);
  auto after = load_autoencoder(r.weights);
  EXPECT_EQ(after->config, before->config);  // the mel normalisation too
  EXPECT_EQ(after->latent_of, adapters::model_hash(*before));
  EXPECT_EQ(latent_identity(after), latent_identity(before));
  EXPECT_NE(adapters::model_hash(*after), adapters::model_hash(*before));
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    const auto mel = torch::randn({2, 1, before->config.frontend.mels, 32});
    const auto z = before->encode(mel);
    EXPECT_TRUE(torch::equal(after->encode(mel), z));
    EXPECT_FALSE(torch::allclose(after->decode(z), before->decode(z)));
  }

  // The init's denoiser is scored with the new decoder's autoencoder, and a denoiser run
  // from it with that autoencoder starts from it.
  DenoiserEvaluationOptions e;
  e.corpus = dir.file("corpus");
  e.denoiser = denoiser;
  e.autoencoder = r.weights;
  e.levels = 2;
  e.threads = 1;
  EXPECT_EQ(evaluate_denoiser(e).clips, 6);
  auto on = tiny_denoiser_training(dir.file("corpus"), dir.file("dn2"), r.weights, 1);
  on.init = denoiser;
  EXPECT_NO_THROW(train_denoiser(on));

  // Resumed, a decoder-only run stays one (and keeps what it says its latents are).
  ao.resume = true;
  ao.init.clear();
  ao.decoder_only = false;
  ao.steps = 35;
  EXPECT_EQ(train_autoencoder(ao).step, 35);
  auto resumed = load_autoencoder(r.weights);
  EXPECT_EQ(resumed->latent_of, after->latent_of);
  {
    torch::NoGradGuard no_grad;
    const auto mel = torch::randn({1, 1, before->config.frontend.mels, 32});
    EXPECT_TRUE(torch::equal(resumed->encode(mel), before->encode(mel)));
  }

  // Held out: every clip is too many.
  AutoencoderTrainOptions all = ao;
  all.resume = false;
  all.out = dir.file("none");
  all.held_out = 6;
  EXPECT_THROW(train_autoencoder(all), ModelError);
}

TEST(Training, AnAnchoredRunMovesTheLatentsLessAndTheInitsDenoisersCanBeTrainedOnWithIt) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6);
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  const auto init_file = dir.file("weights/autoencoder.safetensors");
  auto ao = tiny_autoencoder_training(dir.file("corpus"), dir.file("refused"), 30);
  ao.lr = 3e-3;
  ao.init = init_file;
  ao.latent_anchor = 10.0;
  ao.decoder_only = true;
  EXPECT_THROW(train_autoencoder(ao), ModelError);  // decoder-only keeps the latents exactly
  ao.decoder_only = false;
  ao.out = dir.file("anchored");
  const auto anchored_file = train_autoencoder(ao).weights;
  ao.latent_anchor = 0.0;
  ao.out = dir.file("free");
  const auto free_file = train_autoencoder(ao).weights;

  auto init = load_autoencoder(init_file);
  auto anchored = load_autoencoder(anchored_file);
  auto free = load_autoencoder(free_file);
  EXPECT_EQ(anchored->anchored_to, latent_identity(init));
  EXPECT_TRUE(free->anchored_to.empty());
  EXPECT_TRUE(anchored->latent_of.empty());  // its latents are not the init's
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(4);
    const auto mel = torch::randn({2, 1, init->config.frontend.mels, 32});
    const auto z = init->encode(mel);
    const double moved_anchored = (anchored->encode(mel) - z).pow(2).mean().item<double>();
    const double moved_free = (free->encode(mel) - z).pow(2).mean().item<double>();
    EXPECT_GT(moved_anchored, 0.0);
    EXPECT_LT(moved_anchored, 0.5 * moved_free);
  }

  // The init's denoiser is trained on with the anchored autoencoder, not with the free one,
  // and does not generate with either until it has been.
  auto on = tiny_denoiser_training(dir.file("corpus"), dir.file("dn"), anchored_file, 1);
  on.init = dir.file("weights/denoiser.safetensors");
  EXPECT_NO_THROW(train_denoiser(on));
  on.autoencoder = free_file;
  on.out = dir.file("dn-free");
  EXPECT_THROW(train_denoiser(on), ModelError);
  DenoiserEvaluationOptions e;
  e.corpus = dir.file("corpus");
  e.denoiser = dir.file("weights/denoiser.safetensors");
  e.autoencoder = anchored_file;
  e.levels = 1;
  e.threads = 1;
  EXPECT_THROW(evaluate_denoiser(e), ModelError);
}

TEST(Training, AnAutoencoderAtAHigherRateAnchoredToItsInitKeepsTheFramesAndTheLatents) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6);
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  const auto init_file = dir.file("weights/autoencoder.safetensors");
  auto ao = tiny_autoencoder_training(dir.file("corpus"), dir.file("anchored"), 30);
  ao.lr = 3e-3;
  ao.init = init_file;
  ao.rate = 24000;
  ao.latent_anchor = 10.0;
  const auto anchored_file = train_autoencoder(ao).weights;
  ao.latent_anchor = 0.0;
  ao.out = dir.file("free");
  const auto free_file = train_autoencoder(ao).weights;

  auto init = load_autoencoder(init_file);
  auto anchored = load_autoencoder(anchored_file);
  auto free = load_autoencoder(free_file);
  const auto& fe = anchored->config.frontend;
  EXPECT_EQ(fe.sample_rate, 24000);
  EXPECT_EQ(fe.n_fft, 1536);
  EXPECT_EQ(fe.hop, 384);
  EXPECT_EQ(fe.fmax, 12000.0);
  EXPECT_EQ(fe.mels, init->config.frontend.mels);
  EXPECT_NE(fe.mel_offset, init->config.frontend.mel_offset);  // measured on the new bands
  EXPECT_EQ(anchored->anchored_to, latent_identity(init));
  {
    // One clip read at each rate: the anchored latents stay nearer the init's.
    torch::NoGradGuard no_grad;
    const auto clip = dir.file("corpus/clips/1.wav");
    const auto mel_of = [&](const FrontEndConfig& c) {
      const MelFrontEnd f(c);
      auto a = audio::read_audio(clip, c.sample_rate);
      auto w = torch::from_blob(a.samples.data(), {static_cast<int64_t>(a.samples.size())}, torch::kFloat32);
      return f.normalise(f.log_mel(w)).narrow(-1, 0, 32).view({1, 1, c.mels, 32});
    };
    const auto z = init->encode(mel_of(init->config.frontend));
    const double moved_anchored = (anchored->encode(mel_of(fe)) - z).pow(2).mean().item<double>();
    const double moved_free = (free->encode(mel_of(free->config.frontend)) - z).pow(2).mean().item<double>();
    EXPECT_LT(moved_anchored, 0.5 * moved_free);
  }
  // The init's denoiser is trained on with it.
  auto on = tiny_denoiser_training(dir.file("corpus"), dir.file("dn"), anchored_file, 1);
  on.init = dir.file("weights/denoiser.safetensors");
  EXPECT_NO_THROW(train_denoiser(on));

  // A rate whose hop is not a whole number of samples is refused, saying which rates work.
  ao.rate = 22050;
  ao.out = dir.file("refused");
  try {
    train_autoencoder(ao);
    ADD_FAILURE() << "22050 Hz accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("a multiple of 125 Hz"), std::string::npos) << e.what();
  }
}

TEST(Training, EvaluateDenoiserScoresATrainedDenoiserBelowItsStartWithTheSameDrawsEachTime) {
  TempDir dir("tuneloop-model");
  tuneloop::testing::write_tiny_corpus(dir.file("corpus"), 6);
  tuneloop::testing::write_fixture_weights(dir.file("weights"));
  auto t = tiny_denoiser_training(dir.file("corpus"), dir.file("trained"),
                                  dir.file("weights/autoencoder.safetensors"), 60);
  t.init = dir.file("weights/denoiser.safetensors");
  const auto trained = train_denoiser(t).weights;

  DenoiserEvaluationOptions o;
  o.corpus = dir.file("corpus");
  o.weights_dir = dir.file("weights");
  o.levels = 4;
  o.threads = 1;
  const auto start = evaluate_denoiser(o);
  EXPECT_EQ(start.clips, 6);
  ASSERT_EQ(start.t.size(), 4u);
  EXPECT_DOUBLE_EQ(start.t[0], 0.125);
  ASSERT_EQ(start.untagged.size(), 4u);
  ASSERT_EQ(start.tagged.size(), 4u);
  const auto again = evaluate_denoiser(o);
  EXPECT_EQ(again.untagged, start.untagged);  // fixed draws: the very same figures
  EXPECT_EQ(again.tagged, start.tagged);

  o.denoiser = trained;
  const auto after = evaluate_denoiser(o);
  EXPECT_LT(after.mean_untagged, 0.9 * start.mean_untagged);
  EXPECT_LT(after.mean_tagged, 0.9 * start.mean_tagged);
  o.clips = 2;
  EXPECT_EQ(evaluate_denoiser(o).clips, 2);

  // Swapping two tags rescores the clips that carry one of them (every tiny clip is "low" or
  // "high"), the own-tag column being the tagged one on those clips; an unknown tag is refused.
  o.clips = 0;
  o.swap = {"low", "high"};
  const auto swap = evaluate_denoiser(o);
  EXPECT_EQ(swap.swapped_clips, 6);
  EXPECT_EQ(swap.own_tags, swap.tagged);
  EXPECT_NE(swap.swapped_tags, swap.own_tags);
  o.swap = {"low", "lowest"};
  EXPECT_THROW(evaluate_denoiser(o), ModelError);
  o.swap = {};

  // A denoiser made for another autoencoder is refused, naming it.
  tuneloop::testing::write_fixture_weights(dir.file("other"), 7);
  o.autoencoder = dir.file("other/autoencoder.safetensors");
  try {
    evaluate_denoiser(o);
    ADD_FAILURE() << "a denoiser made for another autoencoder was scored";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(trained), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tuneloop::model

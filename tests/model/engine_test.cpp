// The narrow interface (model/engine.hpp) over fixture weights written to a temp folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "adapters/tensor_file.hpp"
#include "fixtures.hpp"
#include "model/engine.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::model {
namespace {

using tuneloop::testing::TempDir;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tuneloop::testing::write_fixture_weights(dir.file("weights"));
    engine = Engine::load({dir.file("weights"), "cpu", 1});
  }
  audio::Audio song(double hz, double seconds = 1.5) {
    audio::Audio a;
    a.sample_rate = 16000;
    a.samples = tuneloop::testing::tone(hz, seconds, 4.0);
    return a;
  }
  // A fine-tune request on one example (a 1.5-s tone written to ex.wav).
  FineTuneRequest one_example(int steps, int batch, const std::string& output) {
    const auto path = dir.file("ex.wav");
    audio::write_audio(path, song(330.0));
    FineTuneRequest r;
    r.examples = {{path, 1.0}};
    r.steps = steps;
    r.batch = batch;
    r.output_path = dir.file(output);
    return r;
  }
  // Each training step's batch loss of a fine-tune on an engine with `threads` threads.
  std::vector<double> train_losses(int threads, const FineTuneRequest& r) {
    auto e = Engine::load({dir.file("weights"), "cpu", threads});
    std::vector<double> losses;
    std::atomic<bool> cancel{false};
    e->fine_tune(
        r,
        [&](const Progress& p) {
          if (p.phase == "train") losses.push_back(p.loss);
        },
        cancel);
    return losses;
  }
  TempDir dir{"tuneloop-model"};
  std::unique_ptr<Engine> engine;
};

TEST_F(EngineTest, GenerationIsDeterministicForASeedAndDiffersAcrossSeeds) {
  GenerateParams p;
  p.seconds = 1.0;
  p.steps = 4;
  p.seed = 1;
  p.tags = {"low", "fast"};
  auto a = engine->generate(p);
  auto b = engine->generate(p);
  p.seed = 2;
  auto c = engine->generate(p);
  EXPECT_EQ(a.sample_rate, 16000);
  EXPECT_EQ(a.samples.size(), 16000u);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_NE(a.samples, c.samples);
}

TEST_F(EngineTest, GenerateAllOverTwoThreadsMakesWhatGenerateMakesOneByOneWithTheAdapterApplied) {
  FineTuneRequest r = one_example(3, 2, "all.safetensors");
  r.lr = 0.05;  // a change big enough to hear in one clip
  std::atomic<bool> cancel{false};
  engine->fine_tune(r, {}, cancel);
  std::vector<GenerateParams> params;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    GenerateParams p;
    p.seconds = 1.0;
    p.steps = 4;
    p.seed = seed;
    p.tags = {"low"};
    p.adapter = "all";
    p.adapter_strength = 0.5;
    params.push_back(p);
  }
  std::vector<int> reports;
  const auto all = engine->generate_all(params, 2, [&](int done) {
    reports.push_back(done);
    return true;
  });
  ASSERT_EQ(all.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(all[i].samples, engine->generate(params[i]).samples) << "clip " << i;
  }
  EXPECT_EQ(reports.back(), 5);  // the calling thread made clips 0, 2, 4; the count ends at all
  EXPECT_TRUE(std::is_sorted(reports.begin(), reports.end()));
  // The adapter was applied in every thread, and the engine is as it was after.
  GenerateParams base = params[1];
  base.adapter = "";
  EXPECT_NE(all[1].samples, engine->generate(base).samples);
  EXPECT_EQ(engine->adapter(), "");

  // Stopped after the first clip: Cancelled, and the weights are the base model's again.
  const auto before = engine->generate(base).samples;
  EXPECT_THROW(engine->generate_all(params, 2, [](int) { return false; }), Cancelled);
  EXPECT_EQ(engine->generate(base).samples, before);
  params[3].adapter_strength = 1.0;
  EXPECT_THROW(engine->generate_all(params, 2), ModelError);
  EXPECT_TRUE(engine->generate_all({}, 2).empty());
}

TEST_F(EngineTest, APreRollIsCutOffTheTrackWhichKeepsItsLengthAndFadesIn) {
  GenerateParams p;
  p.seconds = 1.0;
  p.steps = 4;
  p.seed = 1;
  p.pre_roll_seconds = 0;
  const auto drawn = engine->generate(p);
  p.pre_roll_seconds = 0.5;
  const auto cut = engine->generate(p);
  ASSERT_EQ(cut.samples.size(), 16000u);
  EXPECT_NE(cut.samples, drawn.samples);
  EXPECT_EQ(cut.samples.front(), 0.0f);  // the fade starts from silence
  EXPECT_EQ(engine->generate(p).samples, cut.samples);
  // The preview pools only what is heard, so its size does not depend on the pre-roll.
  GenerateParams no_pre_roll = p;
  no_pre_roll.pre_roll_seconds = 0;
  EXPECT_EQ(engine->preview(p, 2).size(), engine->preview(no_pre_roll, 2).size());
  for (double bad : {-0.5, 31.0, std::nan("")}) {
    p.pre_roll_seconds = bad;
    EXPECT_THROW(engine->generate(p), ModelError) << bad;
  }
}

TEST_F(EngineTest, UnknownTagsAndBadParametersAreRefusedWithAMessage) {
  GenerateParams p;
  p.seconds = 1.0;
  p.tags = {"polka"};
  try {
    engine->generate(p);
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("polka"), std::string::npos);
  }
  p.tags = {};
  p.seconds = -1;
  EXPECT_THROW(engine->generate(p), ModelError);
  p.seconds = 1;
  p.solver = "euler";
  EXPECT_THROW(engine->generate(p), ModelError);
  p.solver = "ddim";
  p.schedule = "exponential";
  EXPECT_THROW(engine->generate(p), ModelError);
}

TEST_F(EngineTest, MissingOrMismatchedWeightsAreRefusedNamingTheFile) {
  try {
    Engine::load({dir.file("nowhere"), "cpu", 1});
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos);
  }
  // A denoiser trained with another autoencoder.
  tuneloop::testing::write_fixture_weights(dir.file("other"), 2);
  std::filesystem::copy_file(dir.file("other/autoencoder.safetensors"),
                             dir.file("weights/autoencoder.safetensors"),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_THROW(Engine::load({dir.file("weights"), "cpu", 1}), ModelError);
}

TEST_F(EngineTest, EncodedSongsMergeAndSeedGenerationAndStrengthZeroKeepsTheSeed) {
  auto a = engine->encode(song(220));
  auto b = engine->encode(song(440, 2.0));
  auto merged = engine->slerp({a, b});
  EXPECT_NEAR(merged.seconds(), 1.5, 1e-9);
  GenerateParams p;
  p.seconds = 1.0;
  p.steps = 4;
  p.seed_latent = merged;
  p.strength = 0.0;
  auto kept = engine->generate(p);
  p.seed = 5;
  auto kept_again = engine->generate(p);
  EXPECT_EQ(kept.samples, kept_again.samples);  // no noise enters at strength 0
  p.strength = 1.0;
  EXPECT_NE(engine->generate(p).samples, kept.samples);

  engine->save_latent(merged, dir.file("merged.safetensors"));
  auto loaded = engine->load_latent(dir.file("merged.safetensors"));
  p.seed_latent = loaded;
  p.strength = 0.0;
  EXPECT_EQ(engine->generate(p).samples, kept.samples);
}

// Loud and soft liked tracks must stay loud and soft for a fine-tune to learn loudness; only
// levels outside the corpus's range are brought into it.
TEST_F(EngineTest, EncodingKeepsALevelInsideTheCorpusRangeAndClampsOneOutsideIt) {
  int n = 0;
  // A sine (its level is reachable without clipping) over a little white noise, so that no
  // mel band holds only FFT rounding noise, which the log would blow up.
  auto latent_at = [&](double dbfs) {
    audio::Audio a;
    a.sample_rate = 16000;
    uint32_t state = 1;
    for (int i = 0; i < 32000; ++i) {
      state = state * 1664525u + 1013904223u;
      const double noise = static_cast<double>(state) / 4294967296.0 - 0.5;
      a.samples.push_back(static_cast<float>(std::sin(0.13 * i) + 0.05 * noise));
    }
    audio::normalise_loudness(a, dbfs);
    EXPECT_NEAR(audio::rms_dbfs(a.samples), dbfs, 0.01);
    const auto path = dir.file("latent" + std::to_string(n++) + ".safetensors");
    engine->save_latent(engine->encode(a), path);
    return adapters::load_tensors(path).begin()->second;
  };
  auto difference = [](const torch::Tensor& x, const torch::Tensor& y) {
    return (x - y).abs().max().item<float>() / y.abs().max().item<float>();
  };
  const auto loud = latent_at(-17.0), soft = latent_at(-23.0);
  const auto too_loud = latent_at(-6.0), loudest = latent_at(-14.0);
  const auto too_quiet = latent_at(-40.0), quietest = latent_at(-26.0);
  EXPECT_GT(difference(loud, soft), 1e-3f) << "a -17 and a -23 dBFS clip encoded alike";
  EXPECT_LT(difference(too_loud, loudest), 1e-4f) << "-6 dBFS was not brought to -14";
  EXPECT_LT(difference(too_quiet, quietest), 1e-4f) << "-40 dBFS was not brought to -26";
}

TEST_F(EngineTest, ASoundProfileHearsABrighterToneInAHigherBandAndALouderOneInItsLevel) {
  constexpr std::size_t kGroups = 16, kLevel = kGroups;  // means first: 16 band groups, then the level
  const auto low = song(220.0, 2.0), high = song(2500.0, 2.0);
  auto louder = low;
  for (auto& x : louder.samples) x *= 4.0f;  // +12 dB
  const auto p_low = engine->profile(low, false), p_high = engine->profile(high, false);
  const auto p_louder = engine->profile(louder, false);
  ASSERT_EQ(p_low.size(), 3 * (kGroups + 1));
  for (float v : p_low) EXPECT_TRUE(std::isfinite(v));
  // Where each tone's energy sits: the brightest group the high tone fills above the low one's.
  auto centre = [&](const std::vector<float>& p) {
    double num = 0, den = 0;
    for (std::size_t g = 0; g < kGroups; ++g) {
      const double w = std::exp(static_cast<double>(p[g]));
      num += w * static_cast<double>(g);
      den += w;
    }
    return num / den;
  };
  EXPECT_GT(centre(p_high), centre(p_low) + 1.0);
  // Four times the amplitude: the log-mel magnitude's level rises by ln 4 (1.39).
  EXPECT_NEAR(p_louder[kLevel] - p_low[kLevel], std::log(4.0), 0.2);
  const auto through = engine->profile(low, true);
  ASSERT_EQ(through.size(), p_low.size());
  for (float v : through) EXPECT_TRUE(std::isfinite(v));
  audio::Audio tiny;
  tiny.sample_rate = 16000;
  tiny.samples.assign(100, 0.1f);
  EXPECT_THROW(engine->profile(tiny, false), ModelError);
  EXPECT_THROW(engine->profile(tiny, true), ModelError);
}

TEST_F(EngineTest, FineTuneLowersTheLossAndWritesAnAdapterThatLoads) {
  std::vector<WeightedExample> examples;
  for (int i = 0; i < 3; ++i) {
    audio::Audio a = song(300.0 + 50 * i);
    const auto path = dir.file("ex" + std::to_string(i) + ".wav");
    audio::write_audio(path, a);
    examples.push_back({path, 1.0 + i});
  }
  FineTuneRequest r;
  r.examples = examples;
  r.steps = 40;
  r.rank = 4;
  r.alpha = 4;
  r.lr = 5e-3;
  r.batch = 4;
  r.output_path = dir.file("liked.safetensors");
  std::vector<double> evaluations;
  int train_reports = 0;
  std::atomic<bool> cancel{false};
  const auto out = engine->fine_tune(
      r,
      [&](const Progress& p) {
        if (p.phase == "evaluate") evaluations.push_back(p.loss);
        if (p.phase == "train") ++train_reports;
      },
      cancel);
  EXPECT_EQ(out, r.output_path);
  EXPECT_EQ(train_reports, 40);
  ASSERT_EQ(evaluations.size(), 2u);
  EXPECT_LT(evaluations[1], evaluations[0]);

  auto fresh = Engine::load({dir.file("weights"), "cpu", 1});
  const auto name = fresh->load_adapter(out);
  EXPECT_EQ(name, "liked");
  GenerateParams p;
  p.seconds = 1.0;
  p.steps = 4;
  auto base = fresh->generate(p);
  p.adapter = name;
  auto adapted = fresh->generate(p);
  EXPECT_NE(base.samples, adapted.samples);
  EXPECT_EQ(fresh->adapter(), "");  // a per-call adapter does not stick

  // Adapter strength: 0 is the base model, 1 the adapter as trained, 2 goes further.
  p.adapter_strength = 0.0;
  EXPECT_EQ(fresh->generate(p).samples, base.samples);
  p.adapter_strength = 1.0;
  EXPECT_EQ(fresh->generate(p).samples, adapted.samples);
  p.adapter_strength = 2.0;
  const auto further = fresh->generate(p);
  EXPECT_NE(further.samples, adapted.samples);
  // The adapter's weights are restored after each call: strength 1 again gives the same clip.
  p.adapter_strength = 1.0;
  EXPECT_EQ(fresh->generate(p).samples, adapted.samples);
  p.adapter_strength = 4.5;
  EXPECT_THROW(fresh->generate(p), ModelError);
  p.adapter_strength = -0.1;
  EXPECT_THROW(fresh->generate(p), ModelError);
}

TEST_F(EngineTest, AFineTuneSplitAcrossThreadsTrainsAsOneThreadDoesAndRepeatsExactly) {
  struct Run {
    std::vector<double> losses;  // each step's batch loss
    std::map<std::string, torch::Tensor> factors;
  };
  auto fine_tune_with = [&](int threads, const std::string& name) {
    FineTuneRequest r = one_example(6, 5, name + ".safetensors");  // 5 splits unevenly in two
    r.calibration_clips = 0;
    Run run;
    run.losses = train_losses(threads, r);
    run.factors = adapters::load_tensors(r.output_path);
    return run;
  };
  const auto one = fine_tune_with(1, "one"), two = fine_tune_with(2, "two"),
             again = fine_tune_with(2, "again");
  // The same batches and noise: the same losses step by step, but for rounding (two half-batch
  // gradients summed round differently from one; Adam magnifies that in factors whose
  // gradients are near zero, so the losses are compared, not those factors).
  ASSERT_EQ(one.losses.size(), 6u);
  ASSERT_EQ(two.losses.size(), 6u);
  for (size_t i = 0; i < one.losses.size(); ++i)
    EXPECT_NEAR(two.losses[i], one.losses[i], 1e-4 * std::abs(one.losses[i])) << "step " << i + 1;
  EXPECT_NE(one.losses.front(), one.losses.back());
  // Two runs on two threads give the same adapter to the bit.
  ASSERT_EQ(two.factors.size(), again.factors.size());
  for (const auto& [key, t] : two.factors)
    EXPECT_TRUE(torch::equal(t, again.factors.at(key)))
        << key << " differs between two 2-thread runs";
}

TEST_F(EngineTest, AKtoOrDpoFineTuneSplitAcrossThreadsTrainsAsOneThreadDoes) {
  const auto disliked = dir.file("disliked.wav");
  audio::write_audio(disliked, song(220.0));
  auto losses_with = [&](const std::string& objective, int threads, int batch) {
    FineTuneRequest r = one_example(
        5, batch, objective + std::to_string(threads) + "-" + std::to_string(batch) + ".safetensors");
    r.objective = objective;
    r.undesirable = {{disliked, 1.0}};
    r.calibration_clips = 0;
    return train_losses(threads, r);
  };
  for (const std::string objective : {"kto", "dpo"}) {
    // Three threads: kto's six examples and dpo's three pairs (six losses) in slices of two,
    // so a dpo pair's liked and disliked halves land on different threads.
    const auto one = losses_with(objective, 1, 6), three = losses_with(objective, 3, 6);
    ASSERT_EQ(one.size(), 5u) << objective;
    ASSERT_EQ(three.size(), 5u) << objective;
    for (size_t i = 0; i < one.size(); ++i)
      EXPECT_NEAR(three[i], one[i], 1e-4 * std::abs(one[i]) + 1e-7) << objective << ", step " << i + 1;
    EXPECT_NE(one[1], one[4]) << objective << ": the adapter did not move";
    // A batch of 3 is one liked and one disliked example: a thread has nothing to do.
    const auto small_one = losses_with(objective, 1, 3), small_three = losses_with(objective, 3, 3);
    ASSERT_EQ(small_three.size(), small_one.size()) << objective;
    for (size_t i = 0; i < small_one.size(); ++i)
      EXPECT_NEAR(small_three[i], small_one[i], 1e-4 * std::abs(small_one[i]) + 1e-7)
          << objective << ", batch 3, step " << i + 1;
  }
}

TEST_F(EngineTest, LowNoiseEmphasisChangesWhatTheFineTuneLearnsAndAnOutOfRangeValueIsRefused) {
  auto factors_with = [&](double emphasis, const std::string& name) {
    FineTuneRequest r = one_example(4, 4, name + ".safetensors");
    r.calibration_clips = 0;
    r.low_noise_emphasis = emphasis;
    std::atomic<bool> cancel{false};
    engine->fine_tune(r, {}, cancel);
    return adapters::load_tensors(r.output_path);
  };
  const auto uniform = factors_with(1.0, "uniform"), low = factors_with(2.0, "low");
  const auto again = factors_with(1.0, "uniform_again");
  bool differs = false;
  for (const auto& [key, t] : uniform) {
    EXPECT_TRUE(torch::equal(t, again.at(key))) << key;  // the same setting repeats exactly
    differs = differs || !torch::equal(t, low.at(key));
  }
  EXPECT_TRUE(differs)
      << "drawing the noise levels as u^2 trained the same adapter as uniform draws";
  for (double bad : {0.0, 0.1, 9.0}) {
    FineTuneRequest r = one_example(1, 1, "bad.safetensors");
    r.low_noise_emphasis = bad;
    std::atomic<bool> cancel{false};
    try {
      engine->fine_tune(r, {}, cancel);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("low_noise_emphasis"), std::string::npos) << e.what();
    }
  }
}

TEST_F(EngineTest, FineTuneAdaptsOnlyTheLayersItsTargetsNameAndRefusesPatternsThatMatchNone) {
  FineTuneRequest r = one_example(2, 2, "mid.safetensors");
  r.dropout = 0.1;
  r.targets = {"mid?.*"};
  std::atomic<bool> cancel{false};
  engine->fine_tune(r, {}, cancel);
  std::map<std::string, std::string> meta;
  const auto tensors = adapters::load_tensors(r.output_path, &meta);
  ASSERT_FALSE(tensors.empty());
  for (const auto& [key, tensor] : tensors) EXPECT_EQ(key.rfind("mid", 0), 0u) << key;
  EXPECT_NE(meta["dropout"].find("0.1"), std::string::npos) << meta["dropout"];

  r.targets = {"no_such_layer*"};
  r.output_path = dir.file("none.safetensors");
  try {
    engine->fine_tune(r, {}, cancel);
    FAIL() << "a pattern that matches no layer was accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_layer"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(r.output_path));
  r.targets = {"*"};
  r.dropout = 1.0;
  EXPECT_THROW(engine->fine_tune(r, {}, cancel), ModelError);
}

// Cached fine-tune latents are reused only when they were encoded the current way: one
// written before levels were kept (or by hand) is encoded again and the cache file replaced.
TEST_F(EngineTest, ACachedLatentEncodedAnotherWayIsEncodedAgain) {
  FineTuneRequest r = one_example(1, 1, "a.safetensors");
  r.latent_cache_dir = dir.file("latents");
  std::atomic<bool> cancel{false};
  engine->fine_tune(r, {}, cancel);
  const auto cache_file = dir.file("latents/" + audio::sha256_file(r.examples[0].audio_path) + ".safetensors");
  std::map<std::string, std::string> meta;
  const auto fresh = adapters::load_tensors(cache_file, &meta).at("latent");
  ASSERT_FALSE(meta["encoding"].empty());

  // The same base model, but no record of how it was encoded, and a latent of zeros.
  meta.erase("encoding");
  adapters::save_tensors(cache_file, {{"latent", torch::zeros_like(fresh)}}, meta);
  auto other = Engine::load({dir.file("weights"), "cpu", 1});  // no in-memory cache
  r.output_path = dir.file("b.safetensors");
  other->fine_tune(r, {}, cancel);
  std::map<std::string, std::string> again_meta;
  const auto again = adapters::load_tensors(cache_file, &again_meta).at("latent");
  EXPECT_FALSE(again_meta["encoding"].empty());
  EXPECT_TRUE(torch::equal(again, fresh)) << "the stale cached latent was used";
}

TEST(ShippedEngineTest, AModeAskedForWithoutAKeyIsGeneratedInTheKeyItsSeedDraws) {
  const auto shipped = std::filesystem::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  ASSERT_TRUE(std::filesystem::exists(shipped / "denoiser.safetensors"))
      << "no shipped base model in " << shipped;
  auto engine = Engine::load({"", "cpu", 1});
  GenerateParams p;
  p.tags = {"minor"};
  p.seconds = 1.0;
  p.steps = 4;
  p.seed = 3;
  const auto used = engine->conditioning_tags(p);
  ASSERT_GE(used.size(), 2u);  // and the scale word, with weights that know scales
  EXPECT_EQ(used[0], "minor");
  ASSERT_EQ(used[1].rfind("key-", 0), 0u) << used[1];
  const auto asked = engine->generate(p);

  // The same clip as asking for that key outright, and not the clip of another key.
  GenerateParams with_key = p;
  with_key.tags = used;
  EXPECT_EQ(engine->generate(with_key).samples, asked.samples);
  with_key.tags = {"minor", used[1] == "key-c" ? "key-f#" : "key-c"};
  EXPECT_NE(engine->generate(with_key).samples, asked.samples);

  // A key already given is kept; without a mode nothing is added.
  p.tags = {"minor", "key-a"};
  EXPECT_EQ(engine->conditioning_tags(p)[1], "key-a");
  p.tags = {"slow", "piano"};
  EXPECT_EQ(engine->conditioning_tags(p), p.tags);
}

// The same clips made on two threads: the same gain (to rounding: the fine-tune's own two
// slices add their gradients in another order than one thread does).
TEST(ShippedEngineTest, ALevelCalibrationSplitAcrossThreadsSetsTheGainOneThreadSets) {
  const auto shipped = std::filesystem::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  ASSERT_TRUE(std::filesystem::exists(shipped / "denoiser.safetensors")) << "no shipped base model in " << shipped;
  TempDir dir("tuneloop-level-threads");
  audio::Audio example;
  example.sample_rate = 16000;
  example.samples = tuneloop::testing::tone(330.0, 4.2, 3.0);
  audio::normalise_loudness(example, -15.0);
  audio::write_audio(dir.file("level.wav"), example);
  FineTuneRequest r;
  r.examples = {{dir.file("level.wav"), 1.0}};
  r.steps = 1;
  r.batch = 2;
  r.output_path = dir.file("level.safetensors");
  r.calibration_clips = 5;
  r.calibration_seconds = 1.0;
  r.calibration_steps = 6;
  std::atomic<bool> cancel{false};
  auto gain_with = [&](int threads) {
    auto e = Engine::load({"", "cpu", 1, threads});
    std::vector<int> reports;
    e->fine_tune(
        r, [&](const Progress& p) { if (p.phase == "calibrate") reports.push_back(p.step); }, cancel);
    EXPECT_FALSE(reports.empty());
    if (!reports.empty()) EXPECT_EQ(reports.back(), 5) << threads << " thread(s)";
    return e->adapter_gain_db("level");
  };
  const double one = gain_with(1), two = gain_with(2);
  std::printf("gain: %+.4f dB on one thread, %+.4f dB on two\n", one, two);
  EXPECT_GT(std::abs(one), 0.5);  // a level to correct, or the comparison says nothing
  EXPECT_NEAR(two, one, 1e-3);
}

// The level calibration measures the examples' level and the adapter's own output and sets
// the gain between them: two adapters trained (one step, so alike) on the same tone at
// -18 and -24 dBFS generate several dB apart, each near its examples' level. 16 clips each
// way: with 8, seed-to-seed level noise alone put the shipped weights 2.7 dB off. With 16
// both adapters still read about 2 dB loud, and that is the seeds too: the base model's 2-s
// clips average -21.1 dBFS over seeds 1-16 (these) and -22.7 over the calibration's
// 1000003-1000018, one of which is a quiet clip (-36 dBFS, with notes in it).
// On the shipped base model: the fixture's random decoder is near silent (about -94 dBFS),
// which the calibration leaves alone.
TEST(ShippedEngineTest, ALevelCalibratedAdapterGeneratesAtItsExamplesLevel) {
  const auto shipped = std::filesystem::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  ASSERT_TRUE(std::filesystem::exists(shipped / "denoiser.safetensors")) << "no shipped base model in " << shipped;
  TempDir dir("tuneloop-level");
  auto engine = Engine::load({"", "cpu", 1});
  std::atomic<bool> cancel{false};
  std::vector<int> calibration_reports;
  auto adapter_at = [&](double dbfs, const std::string& name) {
    audio::Audio a;
    a.sample_rate = 16000;
    a.samples = tuneloop::testing::tone(330.0, 4.2, 3.0);
    audio::normalise_loudness(a, dbfs);
    const auto path = dir.file(name + ".wav");
    audio::write_audio(path, a);
    FineTuneRequest r;
    r.examples = {{path, 1.0}};
    r.steps = 1;
    r.batch = 1;
    r.calibration_clips = 16;
    r.calibration_seconds = 2.0;
    r.output_path = dir.file(name + ".safetensors");
    engine->fine_tune(
        r, [&](const Progress& p) { if (p.phase == "calibrate") calibration_reports.push_back(p.step); }, cancel);
    return r.output_path;
  };
  auto mean_level = [&](const std::string& adapter) {
    double sum = 0;
    for (uint64_t seed = 1; seed <= 16; ++seed) {
      GenerateParams p;
      p.seconds = 2.0;
      p.seed = seed;
      p.adapter = adapter;
      sum += audio::rms_dbfs(engine->generate(p).samples) / 16;
    }
    return sum;
  };
  const auto loud = adapter_at(-18.0, "loud");
  adapter_at(-24.0, "soft");
  std::vector<int> expected_reports;
  for (int adapter = 0; adapter < 2; ++adapter)
    for (int k = 1; k <= 16; ++k) expected_reports.push_back(k);
  EXPECT_EQ(calibration_reports, expected_reports);
  // At least the 6 dB between the examples; more where the limiter turns loud clips down.
  EXPECT_GE(engine->adapter_gain_db("loud") - engine->adapter_gain_db("soft"), 5.5);
  // Other seeds than the calibration's (a clip's level varies by a few dB from seed to seed),
  // and the peak limiter turns some loud clips down; uncalibrated, both read alike.
  const double loud_level = mean_level("loud"), soft_level = mean_level("soft");
  std::printf("calibrated levels: %.2f and %.2f dBFS (gains %+.2f and %+.2f dB)\n", loud_level, soft_level,
              engine->adapter_gain_db("loud"), engine->adapter_gain_db("soft"));
  EXPECT_NEAR(loud_level, -18.0, 2.5);
  EXPECT_NEAR(soft_level, -24.0, 2.5);
  EXPECT_GT(loud_level - soft_level, 4.0);

  // The gain travels in the adapter file.
  std::map<std::string, std::string> meta;
  adapters::load_tensors(loud, &meta);
  EXPECT_NEAR(std::stod(meta.at("output_gain_db")), engine->adapter_gain_db("loud"), 1e-3);
  auto fresh = Engine::load({"", "cpu", 1});
  EXPECT_NEAR(fresh->adapter_gain_db(fresh->load_adapter(loud)), engine->adapter_gain_db("loud"), 1e-3);
}

TEST_F(EngineTest, AnAdapterFileWithAnImpossibleGainIsRefusedAndLeavesTheLoadedOneInPlace) {
  FineTuneRequest r = one_example(1, 1, "liked.safetensors");
  r.calibration_clips = 2;
  r.calibration_seconds = 1.0;
  std::atomic<bool> cancel{false};
  engine->fine_tune(r, {}, cancel);
  const double gain = engine->adapter_gain_db("liked");
  std::map<std::string, std::string> meta;
  const auto tensors = adapters::load_tensors(r.output_path, &meta);
  for (const std::string bad : {"40", "nan", "loud"}) {
    meta["output_gain_db"] = bad;
    const auto path = dir.file("bad/liked.safetensors");
    std::filesystem::create_directories(dir.file("bad"));
    adapters::save_tensors(path, tensors, meta);
    try {
      engine->load_adapter(path);
      ADD_FAILURE() << "gain '" << bad << "' was accepted";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("output_gain_db"), std::string::npos) << e.what();
    }
    EXPECT_EQ(engine->adapter_gain_db("liked"), gain);
  }
  r.calibration_clips = 0;
  r.output_path = dir.file("plain.safetensors");
  engine->fine_tune(r, {}, cancel);
  EXPECT_EQ(engine->adapter_gain_db("plain"), 0.0);
  r.calibration_seconds = 0.0;
  EXPECT_THROW(engine->fine_tune(r, {}, cancel), ModelError);
}

TEST_F(EngineTest, AStrengthCalibratedAdapterKeepsOneOfItsScalesAndGenerationAppliesIt) {
  FineTuneRequest r = one_example(1, 1, "cal.safetensors");
  r.calibration_clips = 2;
  r.calibration_seconds = 1.0;
  r.strength_scales = {0.5, 1.0};
  std::atomic<bool> cancel{false};
  int calibration_total = 0, calibration_reports = 0;
  engine->fine_tune(
      r,
      [&](const Progress& p) {
        if (p.phase != "calibrate") return;
        ++calibration_reports;
        calibration_total = p.total;
      },
      cancel);
  EXPECT_EQ(calibration_reports, 4);  // two clips at each of the two scales
  EXPECT_EQ(calibration_total, 4);
  const double scale = engine->adapter_strength_scale("cal");
  EXPECT_TRUE(scale == 0.5 || scale == 1.0) << scale;
  std::map<std::string, std::string> meta;
  const auto tensors = adapters::load_tensors(r.output_path, &meta);
  EXPECT_EQ(std::stod(meta.at("strength_scale")), scale);
  auto fresh = Engine::load({dir.file("weights"), "cpu", 1});
  EXPECT_EQ(fresh->adapter_strength_scale("cal"), 1.0);  // not loaded there yet
  EXPECT_EQ(fresh->adapter_strength_scale(fresh->load_adapter(r.output_path)), scale);

  // One scale is kept without a choice. Generation multiplies the strength it is asked for
  // by the scale: the same clip as the adapter without its scale at strength = scale.
  r.strength_scales = {0.5};
  r.output_path = dir.file("half.safetensors");
  engine->fine_tune(r, {}, cancel);
  EXPECT_EQ(engine->adapter_strength_scale("half"), 0.5);
  GenerateParams p;
  p.seconds = 1.0;
  p.seed = 4;
  p.adapter = "half";
  p.adapter_strength = 1.0;
  const auto scaled = engine->generate(p).samples;
  p.adapter_strength = 0.5;
  EXPECT_NE(engine->generate(p).samples, scaled);  // the scale is applied once, not twice
  meta.clear();
  const auto half = adapters::load_tensors(r.output_path, &meta);
  meta.erase("strength_scale");
  std::filesystem::create_directories(dir.file("unscaled"));
  adapters::save_tensors(dir.file("unscaled/half.safetensors"), half, meta);
  EXPECT_EQ(engine->load_adapter(dir.file("unscaled/half.safetensors")), "half");
  EXPECT_EQ(engine->adapter_strength_scale("half"), 1.0);
  EXPECT_EQ(engine->generate(p).samples, scaled);
  p.adapter_strength = 1.0;
  EXPECT_NE(engine->generate(p).samples, scaled);

  // A file with an impossible scale is refused, naming the file and the key.
  for (const std::string bad : {"0", "9", "-1", "strong"}) {
    meta["strength_scale"] = bad;
    std::filesystem::create_directories(dir.file("bad"));
    adapters::save_tensors(dir.file("bad/cal.safetensors"), tensors, meta);
    try {
      engine->load_adapter(dir.file("bad/cal.safetensors"));
      ADD_FAILURE() << "scale '" << bad << "' was accepted";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("bad/cal.safetensors"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("strength_scale"), std::string::npos) << e.what();
    }
  }
  // So is a request without a scale or with one out of range, before training.
  for (const std::vector<double>& scales :
       {std::vector<double>{}, std::vector<double>{0.0, 1.0}, std::vector<double>{1.0, 5.0}}) {
    r.strength_scales = scales;
    int trained = 0;
    EXPECT_THROW(engine->fine_tune(
                     r, [&](const Progress& q) { trained += q.phase == "train"; }, cancel),
                 ModelError);
    EXPECT_EQ(trained, 0);
  }
}

// The calibration clips are sampled as the tracks will be: a way back to audio or a step
// count that generate() would refuse is refused before any training, naming the setting.
TEST_F(EngineTest, AFineTuneRefusesCalibrationSettingsThatGenerateWouldRefuseBeforeTraining) {
  FineTuneRequest r = one_example(2, 1, "x.safetensors");
  r.calibration_clips = 1;
  r.calibration_seconds = 1.0;
  std::atomic<bool> cancel{false};
  auto message_of = [&](const FineTuneRequest& req) {
    int trained = 0;
    try {
      engine->fine_tune(req, [&](const Progress& p) { trained += p.phase == "train"; }, cancel);
    } catch (const ModelError& e) {
      EXPECT_EQ(trained, 0) << "it trained before refusing";
      return std::string(e.what());
    }
    ADD_FAILURE() << "accepted";
    return std::string();
  };
  r.calibration_vocoder = "wavenet";
  EXPECT_NE(message_of(r).find("unknown vocoder 'wavenet'"), std::string::npos);
  r.calibration_vocoder = "neural";  // the fixture weights have no vocoder
  EXPECT_NE(message_of(r).find("vocoder.safetensors"), std::string::npos);
  r.calibration_vocoder = "griffin-lim";
  r.calibration_steps = 0;
  EXPECT_NE(message_of(r).find("calibration_steps"), std::string::npos);
  r.calibration_steps = 3;
  EXPECT_TRUE(std::filesystem::exists(engine->fine_tune(r, {}, cancel)));
  // Without a calibration the settings are unused, so not checked.
  r.calibration_clips = 0;
  r.calibration_vocoder = "wavenet";
  EXPECT_TRUE(std::filesystem::exists(engine->fine_tune(r, {}, cancel)));
}

TEST_F(EngineTest, ACancelledFineTuneResumesFromItsCheckpoint) {
  FineTuneRequest r = one_example(6, 2, "a.safetensors");
  r.checkpoint_path = dir.file("a.ckpt.safetensors");
  std::atomic<bool> cancel{false};
  int last_step = 0;
  auto stop_at_3 = [&](const Progress& p) {
    if (p.phase == "train") {
      last_step = p.step;
      if (p.step == 3) cancel = true;
    }
  };
  EXPECT_THROW(engine->fine_tune(r, stop_at_3, cancel), Cancelled);
  EXPECT_TRUE(std::filesystem::exists(r.checkpoint_path));
  EXPECT_FALSE(std::filesystem::exists(r.output_path));
  cancel = false;
  int first_step = -1;
  engine->fine_tune(
      r, [&](const Progress& p) { if (p.phase == "train" && first_step < 0) first_step = p.step; },
      cancel);
  EXPECT_EQ(first_step, 4);
  EXPECT_TRUE(std::filesystem::exists(r.output_path));
  EXPECT_FALSE(std::filesystem::exists(r.checkpoint_path));
}

}  // namespace
}  // namespace tuneloop::model

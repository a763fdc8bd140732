// Feedback -> next batch ready: rates a first batch like a listener would, then times one
// iteration (dataset -> LoRA fine-tune -> N tracks on disk and in the store) with the
// default config, phase by phase. Target: 16 tracks in <= 120 s on 2 cores.
//
//   bench_loop [WEIGHTS_DIR] [--threads N] [--training-threads N] [--steps N] [--batch N]
//              [--sampler-steps N] [--tracks N] [--seconds S]
//
// WEIGHTS_DIR: default model/weights (the shipped model) when it has files, else a fixture
// model (the figures then say so). Options override the config defaults, to find where
// the time goes; without them the run is the default settings.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "loop/iteration_runner.hpp"
#include "model/engine.hpp"
#include "store/store.hpp"
#include "tests/model/fixtures.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace tuneloop;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

namespace {

// Wall time per phase of one iteration, from its progress reports (the phase of a report
// lasts until the next report of another phase), plus the generator's own split.
struct PhaseClock {
  Clock::time_point start = Clock::now(), last = start;
  std::string phase = "start";
  std::map<std::string, double> seconds;
  std::vector<std::pair<int, double>> train_loss;  // (step, loss)
  std::vector<std::pair<int, double>> eval_loss;
  model::GenerateTimings gen{};
  int generated = 0;
  model::Engine* engine = nullptr;

  void on(const loop::IterationProgress& p) {
    const auto now = Clock::now();
    seconds[phase] += std::chrono::duration<double>(now - last).count();
    last = now;
    phase = p.phase;
    if (p.phase == "train") train_loss.emplace_back(p.step, p.loss);
    if (p.phase == "evaluate") eval_loss.emplace_back(p.step, p.loss);
    if (p.phase == "generate" && p.step > 0) add_generated();
  }
  void add_generated() {
    const auto& t = engine->last_timings();
    gen.denoise += t.denoise;
    gen.decode += t.decode;
    gen.vocoder += t.vocoder;
    ++generated;
  }
  void finish(int tracks) {
    seconds[phase] += since(last);
    if (tracks > 0) add_generated();
  }
  void print() const {
    std::printf("  phases (wall s):");
    for (const char* ph : {"start", "encode", "evaluate", "train", "calibrate", "save", "candidates", "generate"})
      if (seconds.count(ph)) std::printf("  %s %.2f", ph, seconds.at(ph));
    std::printf("\n");
    if (generated > 0)
      std::printf("  generation, %d tracks: denoise %.2f s, decode %.2f s, vocoder %.2f s (%.2f s a track)\n",
                  generated, gen.denoise, gen.decode, gen.vocoder,
                  (gen.denoise + gen.decode + gen.vocoder) / generated);
    if (!train_loss.empty()) {
      // The per-step loss is noisy (random timesteps): mean over windows of 25 steps.
      std::printf("  train loss, mean per 25 steps:");
      double sum = 0;
      int n = 0;
      for (const auto& [step, loss] : train_loss) {
        sum += loss;
        ++n;
        if (step % 25 == 0 || step == train_loss.back().first) {
          std::printf(" %d:%.4f", step, sum / n);
          sum = 0;
          n = 0;
        }
      }
      std::printf("\n");
    }
    for (const auto& [step, loss] : eval_loss) std::printf("  eval loss at step %d: %.4f\n", step, loss);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_loop: feedback -> the next batch of tracks ready, phase by phase"};
  std::string weights;
  int threads = 0, training_threads = 0, steps = 0, batch = 0, sampler_steps = 0, tracks = 0;
  double seconds = 0;
  std::string objective;
  app.add_option("weights", weights, "base-model weights folder (default: model/weights, else a fixture)");
  app.add_option("--threads", threads, "LibTorch threads for generation and the fine-tune (model.threads and training.threads)");
  app.add_option("--training-threads", training_threads, "fine-tune workers only (training.threads; default: the config's)");
  app.add_option("--steps", steps, "fine-tune steps (default: training.steps)");
  app.add_option("--batch", batch, "fine-tune batch (default: training.batch_size)");
  app.add_option("--sampler-steps", sampler_steps, "sampler steps per track (default: model.steps)");
  app.add_option("--tracks", tracks, "tracks per iteration (default: generation.tracks_per_iteration)");
  app.add_option("--seconds", seconds, "seconds per track (default: generation.seconds)");
  app.add_option("--objective", objective, "sft | kto | dpo | rwr (default: training.objective)")
      ->check(CLI::IsMember({"sft", "kto", "dpo", "rwr"}));
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they come, also in a log file

  tuneloop::testing::TempDir dir("tuneloop-bench");
  config::Config cfg;  // the defaults
  cfg.paths.data_dir = dir.path();
  const fs::path shipped = fs::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  bool fixture = false;
  if (!weights.empty()) {
    cfg.paths.weights_dir = fs::absolute(weights);
  } else if (fs::exists(shipped / "denoiser.safetensors")) {
    cfg.paths.weights_dir = shipped;
  } else {
    fixture = true;
    tuneloop::testing::write_fixture_weights(dir.file("weights"));
    cfg.paths.weights_dir = dir.file("weights");
  }
  if (threads > 0) cfg.training.threads = cfg.model.threads = threads;
  if (training_threads > 0) cfg.training.threads = training_threads;
  if (steps > 0) cfg.training.steps = steps;
  if (batch > 0) cfg.training.batch_size = batch;
  if (sampler_steps > 0) cfg.model.steps = sampler_steps;
  if (tracks > 0) cfg.generation.tracks_per_iteration = tracks;
  if (seconds > 0) cfg.generation.seconds = seconds;
  for (auto o : {config::Objective::sft, config::Objective::kto, config::Objective::dpo, config::Objective::rwr})
    if (objective == config::to_string(o)) cfg.training.objective = o;
  std::printf("model: %s\n", fixture ? "FIXTURE (no weights given, model/weights/ is empty; figures are not the target's)"
                                     : cfg.paths.weights_dir.c_str());
  std::printf("config: %d tracks x %.1f s, %d fine-tune steps (batch %d, rank %d), %d sampler steps, "
              "%d generation thread(s), %d fine-tune worker(s)\n",
              cfg.generation.tracks_per_iteration, cfg.generation.seconds, cfg.training.steps,
              cfg.training.batch_size, cfg.training.rank, cfg.model.steps, cfg.model.threads, cfg.training.threads);

  auto store = store::Store::open(dir.file("tuneloop.db"));
  const store::Id listener = store.ensure_listener("bench").id;
  model::EngineOptions eo;
  eo.weights_dir = cfg.paths.weights_dir.string();
  eo.device = "cpu";
  eo.threads = cfg.model.threads;
  eo.fine_tune_threads = cfg.training.threads;
  auto t0 = Clock::now();
  auto engine = model::Engine::load(eo);
  std::printf("load: %.2f s\n", since(t0));

  // Iteration 0: the first batch, then ratings on it.
  std::atomic<bool> cancel{false};
  t0 = Clock::now();
  PhaseClock c0;
  c0.engine = engine.get();
  auto p0 = loop::prepare_iteration(store, cfg, listener, store::now_ms());
  auto o0 = loop::run_iteration(*engine, p0, [&](const loop::IterationProgress& p) { c0.on(p); }, cancel);
  c0.finish(static_cast<int>(o0.tracks.size()));
  const auto ids = loop::finish_iteration(store, p0, o0, since(t0));
  std::printf("iteration 0 (no training, %zu tracks): %.2f s\n", ids.size(), since(t0));
  c0.print();
  for (std::size_t i = 0; i < ids.size(); ++i) store.rate(ids[i], i % 4 == 0 ? 5.0 : i % 4 == 1 ? 4.0 : 2.0);

  // Feedback -> the next batch ready.
  t0 = Clock::now();
  PhaseClock c1;
  c1.engine = engine.get();
  auto p1 = loop::prepare_iteration(store, cfg, listener, store::now_ms());
  auto o1 = loop::run_iteration(*engine, p1, [&](const loop::IterationProgress& p) { c1.on(p); }, cancel);
  c1.finish(static_cast<int>(o1.tracks.size()));
  const auto ids1 = loop::finish_iteration(store, p1, o1, since(t0));
  const double total = since(t0);
  std::printf("iteration 1: dataset %d items, fine-tune %.2f s (final loss %.4f), generate %zu tracks %.2f s\n",
              p1.dataset_size, o1.train_seconds, o1.final_loss.value_or(-1), ids1.size(), o1.generate_seconds);
  std::printf("  objective %s, reward model on %zu tracks %.2f s (leave-one-out pairwise accuracy %s), "
              "%d candidates previewed in %.2f s\n",
              std::string(config::to_string(cfg.training.objective)).c_str(), p1.feedback.size(), o1.reward_seconds,
              o1.reward_accuracy ? std::to_string(*o1.reward_accuracy).c_str() : "n/a", o1.candidates,
              o1.preview_seconds);
  c1.print();
  std::printf("feedback -> %zu new tracks ready: %.2f s (target <= 120 s; %d generation thread(s), "
              "%d fine-tune worker(s))\n",
              ids1.size(), total, cfg.model.threads, cfg.training.threads);
  return 0;
}

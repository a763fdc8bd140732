// Feedback -> next batch ready: rates a first batch like a listener would, then times one
// iteration (dataset -> LoRA fine-tune -> N tracks on disk and in the store) with the
// default config. Target (issue 6): 16 tracks in <= 120 s on 2 cores.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "config/config.hpp"
#include "loop/iteration_runner.hpp"
#include "model/engine.hpp"
#include "store/store.hpp"
#include "tests/model/fixtures.hpp"

namespace fs = std::filesystem;
using namespace tuneloop;

static double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  model::testing::TempDir dir;
  config::Config cfg;  // the defaults: 16 tracks, 300 steps, batch 8, 25 sampler steps
  cfg.paths.data_dir = dir.path();
  const fs::path shipped = fs::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  const bool fixture = !fs::exists(shipped / "denoiser.safetensors");
  if (fixture) {
    model::testing::write_fixture_weights(dir.file("weights"));
    cfg.paths.weights_dir = dir.file("weights");
  } else {
    cfg.paths.weights_dir = shipped;
  }
  if (argc > 1) cfg.training.steps = std::stoi(argv[1]);
  std::printf("model: %s\n", fixture ? "FIXTURE (model/weights/ is empty; figures are not the target's)"
                                     : shipped.c_str());
  std::printf("config: %d tracks x %.1f s, %d fine-tune steps (batch %d, rank %d), %d sampler steps, %d threads\n",
              cfg.generation.tracks_per_iteration, cfg.generation.seconds, cfg.training.steps,
              cfg.training.batch_size, cfg.training.rank, cfg.model.steps, cfg.training.threads);

  auto store = store::Store::open(dir.file("tuneloop.db"));
  const store::Id listener = store.ensure_listener("bench").id;
  model::EngineOptions eo;
  eo.weights_dir = cfg.paths.weights_dir.string();
  eo.device = "cpu";
  eo.threads = cfg.training.threads;
  auto t0 = std::chrono::steady_clock::now();
  auto engine = model::Engine::load(eo);
  std::printf("load: %.2f s\n", since(t0));

  // Iteration 0: the first batch, then ratings on it.
  std::atomic<bool> cancel{false};
  t0 = std::chrono::steady_clock::now();
  auto p0 = loop::prepare_iteration(store, cfg, listener, store::now_ms());
  auto o0 = loop::run_iteration(*engine, p0, {}, cancel);
  const auto ids = loop::finish_iteration(store, p0, o0, since(t0));
  std::printf("iteration 0 (no training, %zu tracks): %.2f s\n", ids.size(), since(t0));
  for (std::size_t i = 0; i < ids.size(); ++i) store.rate(ids[i], i % 4 == 0 ? 5.0 : i % 4 == 1 ? 4.0 : 2.0);

  // Feedback -> the next batch ready.
  t0 = std::chrono::steady_clock::now();
  auto p1 = loop::prepare_iteration(store, cfg, listener, store::now_ms());
  auto o1 = loop::run_iteration(*engine, p1, {}, cancel);
  const auto ids1 = loop::finish_iteration(store, p1, o1, since(t0));
  const double total = since(t0);
  std::printf("iteration 1: dataset %d items, fine-tune %.2f s (final loss %.4f), generate %zu tracks %.2f s\n",
              p1.dataset_size, o1.train_seconds, o1.final_loss.value_or(-1), ids1.size(), o1.generate_seconds);
  std::printf("feedback -> %zu new tracks ready: %.2f s (target <= 120 s)\n", ids1.size(), total);
  return 0;
}

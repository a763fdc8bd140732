// Prints the model's speed figures: SGEMM peak, generation real-time factor (10 s, with and
// without tags, per part), LoRA fine-tune step time and its achieved GFLOP/s.
// Usage: bench_model [weights_dir] [threads] [solver_steps]   (default: shipped weights,
// 2 threads, the engine's default steps; without weights a randomly initialised model of the
// default configuration is timed).
// TUNELOOP_PROFILE=FILE also writes a trace of the LoRA fine-tune (LibTorch's profiler,
// chrome://tracing JSON; per-operator times show where a step goes; the times printed then
// include the profiler's own overhead).
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <unistd.h>

#include "adapters/lora.hpp"
#include "model/engine.hpp"
#include "model/model_files.hpp"
#include "model/networks.hpp"
#include "model/vocoder.hpp"

using namespace tuneloop;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Multiply-accumulates of one denoiser forward pass, mirroring DenoiserImpl's structure:
// those of the frozen base convolutions and those of rank-`rank` LoRA factors on each of them
// (A: in -> rank with the layer's kernel, B: rank -> out, 1x1). The small Linear layers of the
// embeddings are left out (under 0.1 % of the arithmetic).
struct ForwardMacs {
  double base = 0;
  double lora = 0;
};

static ForwardMacs denoiser_forward_macs(const model::DenoiserConfig& c, int64_t batch, int64_t length,
                                         int rank) {
  const auto& ch = c.channels;
  const int levels = static_cast<int>(ch.size());
  auto pos = [&](int level) {
    return static_cast<double>(c.latent_height >> level) * static_cast<double>(length >> level) *
           static_cast<double>(batch);
  };
  ForwardMacs m;
  auto conv = [&](int level, int in, int out, int k) {
    m.base += pos(level) * in * out * k * k;
    m.lora += pos(level) * (static_cast<double>(in) * k * k * rank + static_cast<double>(rank) * out);
  };
  auto res = [&](int level, int in, int out) {
    conv(level, in, out, 3);
    conv(level, out, out, 3);
    if (in != out) conv(level, in, out, 1);
  };
  conv(0, c.latent_channels, ch[0], 3);
  std::vector<int> skips{ch[0]};
  int w = ch[0];
  for (int l = 0; l < levels; ++l) {
    for (int b = 0; b < c.blocks; ++b) {
      res(l, w, ch[l]);
      w = ch[l];
      skips.push_back(w);
    }
    if (l + 1 < levels) {
      conv(l + 1, w, w, 3);
      skips.push_back(w);
    }
  }
  res(levels - 1, w, w);
  res(levels - 1, w, w);
  for (int l = levels - 1; l >= 0; --l) {
    for (int b = 0; b < c.blocks + 1; ++b) {
      res(l, w + skips.back(), ch[l]);
      skips.pop_back();
      w = ch[l];
    }
    if (l > 0) {
      conv(l - 1, w, ch[l - 1], 3);
      w = ch[l - 1];
    }
  }
  conv(0, w, c.latent_channels, 3);
  return m;
}

int main(int argc, char** argv) {
  std::string weights = argc > 1 ? argv[1] : "";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int solver_steps = argc > 3 ? std::atoi(argv[3]) : model::GenerateParams{}.steps;
  torch::set_num_threads(threads);
  std::printf("threads: %d, solver steps: %d\n", threads, solver_steps);

  // SGEMM peak: a large square matrix product.
  double sgemm_gflops = 0;
  {
    const int64_t n = 2048;
    auto a = torch::randn({n, n}), b = torch::randn({n, n});
    torch::mm(a, b);
    const int reps = 5;
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) torch::mm(a, b);
    const double s = seconds_since(t0) / reps;
    const double mm_gflops = 2.0 * n * n * n / s / 1e9;
    // The same GEMM as a 1x1 convolution (2048 channels -> 2048 over 2048 positions), which
    // LibTorch hands to oneDNN rather than to BLAS: on CPUs whose AVX-512 the BLAS does not
    // use (Debian's OpenBLAS 0.3.21 on AMD Zen 4) it runs faster than torch::mm; the
    // convolutions of a training step go to oneDNN too.
    auto x = torch::randn({1, n, n, 1}), w = torch::randn({n, n, 1, 1});
    torch::conv2d(x, w);
    t0 = Clock::now();
    for (int i = 0; i < reps; ++i) torch::conv2d(x, w);
    const double sc = seconds_since(t0) / reps;
    const double conv_gflops = 2.0 * n * n * n / sc / 1e9;
    sgemm_gflops = std::max(mm_gflops, conv_gflops);
    std::printf("SGEMM %lldx%lld: torch::mm %.1f ms, %.1f GFLOP/s; as a 1x1 convolution %.1f ms, %.1f GFLOP/s "
                "(peak reference: the faster, %.1f GFLOP/s)\n",
                static_cast<long long>(n), static_cast<long long>(n), s * 1e3, mm_gflops, sc * 1e3, conv_gflops,
                sgemm_gflops);
  }

  fs::path tmp = fs::temp_directory_path() / ("tuneloop-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  if (weights.empty() && !fs::exists(fs::path(TUNELOOP_SOURCE_DIR) / "model/weights/denoiser.safetensors")) {
    std::printf("no shipped weights: timing a randomly initialised default-size model\n");
    torch::manual_seed(1);
    model::Autoencoder ae(model::AutoencoderConfig{});
    model::DenoiserConfig dc;
    dc.tags = {"slow", "minor", "piano", "fast", "major", "drums"};
    model::Denoiser dn(dc);
    model::save_autoencoder(ae, (tmp / model::kAutoencoderFile).string());
    model::save_denoiser(dn, (tmp / model::kDenoiserFile).string(), adapters::model_hash(*ae));
    weights = tmp.string();
  }
  auto engine = model::Engine::load({weights, "cpu", threads});
  {
    auto dc = model::load_denoiser(fs::path(weights.empty() ? fs::path(TUNELOOP_SOURCE_DIR) / "model/weights"
                                                            : fs::path(weights)) / model::kDenoiserFile);
    auto ac = model::load_autoencoder(fs::path(weights.empty() ? fs::path(TUNELOOP_SOURCE_DIR) / "model/weights"
                                                               : fs::path(weights)) / model::kAutoencoderFile);
    std::printf("denoiser: %lld parameters, channels", static_cast<long long>(model::parameter_count(*dc)));
    for (int c : dc->config.channels) std::printf(" %d", c);
    std::printf(", blocks %d; autoencoder: %lld parameters\n", dc->config.blocks,
                static_cast<long long>(model::parameter_count(*ac)));
  }

  // Generation real-time factor.
  for (int with_tags = 0; with_tags < 2; ++with_tags) {
    model::GenerateParams p;
    p.seconds = 10.0;
    p.steps = solver_steps;
    if (with_tags) {
      const auto vocab = engine->tag_vocabulary();
      for (size_t i = 0; i < std::min<size_t>(3, vocab.size()); ++i) p.tags.push_back(vocab[i]);
    }
    engine->generate(p);  // warm-up
    const int reps = 3;
    model::GenerateTimings sum;
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) {
      p.seed = i;
      engine->generate(p);
      const auto& t = engine->last_timings();
      sum.denoise += t.denoise / reps;
      sum.decode += t.decode / reps;
      sum.vocoder += t.vocoder / reps;
    }
    const double wall = seconds_since(t0) / reps;
    const std::string vocoder = engine->vocoder() == "neural"
                                    ? std::string("neural vocoder")
                                    : "Griffin-Lim x" + std::to_string(p.griffin_lim_iterations);
    std::printf("generate 10 s, %d steps dpm++2m, %s: %.3f s wall (denoise %.3f, AE decode %.3f, "
                "%s %.3f) -> %.1fx real time\n",
                p.steps, with_tags ? "3 tags, guidance (batch 2)" : "untagged, no guidance", wall,
                sum.denoise, sum.decode, vocoder.c_str(), sum.vocoder, 10.0 / wall);
  }

  // LoRA fine-tune step (rank 8 on every layer, batch 8, 64 latent frames ≈ 4.1 s).
  {
    std::vector<model::WeightedExample> examples;
    for (int i = 0; i < 4; ++i) {
      audio::Audio a;
      a.sample_rate = 16000;
      a.samples.resize(16000 * 5);
      for (size_t k = 0; k < a.samples.size(); ++k) {
        a.samples[k] = 0.3f * std::sin(2 * M_PI * (200.0 + 100 * i) * k / 16000.0) *
                       static_cast<float>(std::exp(-4.0 * std::fmod(k / 16000.0, 0.5)));
      }
      const auto path = (tmp / ("ex" + std::to_string(i) + ".wav")).string();
      audio::write_audio(path, a);
      examples.push_back({path, 1.0});
    }
    model::FineTuneRequest r;
    r.examples = examples;
    r.steps = 20;
    r.batch = 8;
    r.calibration_clips = 0;  // timed here: the steps (bench_loop times the calibration)
    r.output_path = (tmp / "bench-adapter.safetensors").string();
    Clock::time_point start;
    int first = -1;
    double total = 0;
    std::atomic<bool> cancel{false};
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    if (const char* trace = std::getenv("TUNELOOP_PROFILE")) profile.emplace(std::string(trace));
    engine->fine_tune(
        r,
        [&](const model::Progress& pr) {
          if (pr.phase != "train") return;
          if (pr.step == 5) {
            start = Clock::now();
            first = pr.step;
          } else if (pr.step == r.steps && first > 0) {
            total = seconds_since(start) / (pr.step - first);
          }
        },
        cancel);
    profile.reset();  // writes the trace
    auto dn = model::load_denoiser((fs::path(weights.empty() ? fs::path(TUNELOOP_SOURCE_DIR) / "model/weights"
                                                             : fs::path(weights)) / model::kDenoiserFile).string());
    const auto macs = denoiser_forward_macs(dn->config, r.batch, 64, r.rank);
    // Frozen base: forward + gradient w.r.t. activations = 2x its forward (no weight
    // gradients). LoRA factors: forward + activation gradients + weight gradients = 3x theirs.
    const double base_flops = 2.0 * 2.0 * macs.base;
    const double step_flops = base_flops + 3.0 * 2.0 * macs.lora;
    std::printf("LoRA step (rank %d, all layers, batch %d x 64 latent frames): %.1f ms, %.2f GFLOP/step "
                "(base %.2f + LoRA factors %.2f) -> %.1f GFLOP/s = %.0f %% of SGEMM "
                "(base arithmetic alone: %.1f GFLOP/s = %.0f %%)\n",
                r.rank, r.batch, total * 1e3, step_flops / 1e9, base_flops / 1e9,
                (step_flops - base_flops) / 1e9, step_flops / total / 1e9,
                100.0 * step_flops / total / 1e9 / sgemm_gflops, base_flops / total / 1e9,
                100.0 * base_flops / total / 1e9 / sgemm_gflops);

    // Generation with that adapter active, as every iteration after the first generates.
    engine->set_adapter(adapters::adapter_name_from_path(r.output_path));
    model::GenerateParams p;
    p.seconds = 10.0;
    p.steps = solver_steps;
    engine->generate(p);  // warm-up
    double wall = 0, denoise = 0;
    for (int i = 0; i < 3; ++i) {
      p.seed = i;
      const auto t0 = Clock::now();
      engine->generate(p);
      wall += seconds_since(t0) / 3;
      denoise += engine->last_timings().denoise / 3;
    }
    engine->set_adapter("");
    std::printf("generate 10 s, %d steps, untagged, LoRA adapter active: %.3f s wall (denoise %.3f)\n",
                p.steps, wall, denoise);
  }
  // Neural vocoder real-time factor: 10 s of log-mel → waveform (the shipped or trained
  // vocoder.safetensors next to the weights when present, else a random default-size one).
  {
    const fs::path dir = weights.empty() ? fs::path(TUNELOOP_SOURCE_DIR) / "model/weights" : fs::path(weights);
    const bool trained = fs::exists(dir / model::kVocoderFile);
    torch::manual_seed(1);
    auto voc = trained ? model::load_vocoder((dir / model::kVocoderFile).string())
                       : model::Vocoder(model::VocoderConfig{});
    voc->eval();
    torch::NoGradGuard ng;
    const int64_t samples = 10 * voc->config.frontend.sample_rate;
    auto mel = torch::randn({voc->config.frontend.mels, voc->frontend.frames(samples)}) - 5.0;
    voc->render(mel, samples);  // warm-up
    const int reps = 5;
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) voc->render(mel, samples);
    const double s = seconds_since(t0) / reps;
    std::printf("neural vocoder (%s, %lld parameters): 10 s of audio in %.1f ms -> %.0fx real time\n",
                trained ? "trained" : "random default-size", static_cast<long long>(model::parameter_count(*voc)),
                s * 1e3, 10.0 / s);
  }
  fs::remove_all(tmp);
  return 0;
}

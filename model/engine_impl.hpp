#pragma once
// What the engine's two halves share (engine.cpp: loading and generation;
// engine_fine_tune.cpp: training an adapter): the Impl, the latent data, the limits and
// small helpers. Private to model/.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include "adapters/lora.hpp"
#include "adapters/tensor_file.hpp"
#include "audio/features.hpp"
#include "corpus/tags.hpp"
#include "model/diffusion.hpp"
#include "model/frontend.hpp"
#include "model/model_files.hpp"
#include "model/preference_losses.hpp"
#include "model/shard_workers.hpp"
#include "model/training_util.hpp"
#include "model/vocoder.hpp"
#include "model/engine.hpp"

namespace tuneloop::model {
namespace fs = std::filesystem;

// A latent already divided by the denoiser's latent_scale: [1, C, H, L] on the CPU.
struct LatentData {
  torch::Tensor latent;
  double seconds = 0.0;
};

namespace engine_detail {

// The levels the base model learned: the corpus renders "loud" at -17 and "soft" at
// -23 dBFS RMS. Audio encoded for img2img or a fine-tune keeps its level inside this range
// (so a fine-tune on loud or soft clips can teach loudness) and is brought to the nearer
// bound outside it.
constexpr double kQuietestDbfs = -26.0;
constexpr double kLoudestDbfs = -14.0;
// Recorded with every cached fine-tune latent: a latent encoded another way (e.g. with
// every example normalised to -20 dBFS) is encoded again, not reused.
constexpr const char* kLatentEncoding = "level kept in -26..-14 dBFS";
// The largest level correction a calibration may set, either way: a gain beyond it means
// the adapter is broken, not quiet.
constexpr double kMaxGainDb = 12.0;
constexpr const char* kGainKey = "output_gain_db";
constexpr const char* kStrengthScaleKey = "strength_scale";
// Past this an adapter's extrapolated weights are far outside anything it was trained at.
constexpr double kMaxAdapterStrength = 4.0;
// No generated clip's true peak (BS.1770, between the samples too, where a DAC or a lossy
// encoder clips) passes this: a louder one is turned down as a whole (EBU R 128's ceiling).
constexpr double kTruePeakLimitDbtp = -1.0;

// Raises the first `length` samples from silence along a half cosine (a cut mid-note
// would click).
inline void fade_in(std::vector<float>& samples, std::size_t length) {
  length = std::min(length, samples.size());
  for (std::size_t i = 0; i < length; ++i) {
    samples[i] *= static_cast<float>(0.5 - 0.5 * std::cos(M_PI * static_cast<double>(i) /
                                                           static_cast<double>(length)));
  }
}

// Shell-style layer patterns ("*", "?") as the whole-path regexes LoraConfig takes.
inline std::vector<std::string> glob_to_regex(const std::vector<std::string>& globs) {
  std::vector<std::string> out;
  for (const auto& g : globs) {
    std::string re;
    for (char c : g) {
      if (c == '*') re += ".*";
      else if (c == '?') re += '.';
      else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') re += c;
      else re += std::string("\\") + c;
    }
    out.push_back(re);
  }
  return out;
}

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Repeats or crops a latent along time to `length` frames.
inline torch::Tensor fit_length(const torch::Tensor& latent, int64_t length) {
  auto x = latent;
  while (x.size(-1) < length) x = torch::cat({x, latent}, -1);
  return x.narrow(-1, 0, length).contiguous();
}

template <typename F>
auto as_model_error(const std::string& where, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const ModelError&) {
    throw;
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(e.what());
  } catch (const std::logic_error& e) {
    throw ModelError(where + ": " + e.what());
  }
}

}  // namespace engine_detail
using namespace engine_detail;

struct Engine::Impl {
  torch::Device device{torch::kCPU};
  Autoencoder ae{nullptr};
  Denoiser denoiser{nullptr};
  Vocoder vocoder{nullptr};  // null = Griffin-Lim
  std::unique_ptr<MelFrontEnd> frontend;
  std::string base_hash;
  GenerateTimings timings;
  std::map<std::string, torch::Tensor> latent_cache;  // by content hash of the audio file
  std::map<std::string, double> adapter_gain_db;      // level calibration, by adapter name
  std::map<std::string, double> adapter_scale;        // strength calibration, by adapter name
  std::map<std::string, double> level_cache;          // dBFS RMS as encoded, by content hash
  std::map<std::string, audio::AudioFeatures> feature_cache;  // of the file, by content hash
  int threads = 2;
  int fine_tune_threads = 2;

  int64_t latent_multiple() const { return denoiser->config.length_multiple(); }
  int factor() const { return ae->config.factor(); }
  int sample_rate() const { return ae->config.frontend.sample_rate; }

  torch::Tensor tags_vector(const std::vector<std::string>& tags) const {
    const auto& vocab = denoiser->config.tags;
    std::vector<std::string> unknown;
    auto v = multi_hot(tags, vocab, &unknown);
    if (!unknown.empty()) {
      std::string known;
      for (const auto& t : vocab) known += " " + t;
      throw ModelError("unknown tag '" + unknown.front() + "'; the model knows:" + known);
    }
    return v.unsqueeze(0).to(device);
  }

  // Mono audio already at the model's rate, as a waveform [N] on the device.
  torch::Tensor wave_of(audio::Audio& a) const {
    return torch::from_blob(a.samples.data(), {static_cast<int64_t>(a.samples.size())}, torch::kFloat32)
        .clone()
        .to(device);
  }

  // Scaled latent [1, C, H, L] of mono audio at the model's rate.
  torch::Tensor encode_audio(audio::Audio a) {
    torch::NoGradGuard ng;
    if (a.sample_rate != sample_rate()) a = audio::resample(a, sample_rate());
    audio::clamp_loudness(a, kQuietestDbfs, kLoudestDbfs);
    const auto& fc = frontend->config();
    if (a.samples.size() < static_cast<size_t>(fc.hop * factor() * 2 + fc.n_fft)) {
      throw ModelError("audio too short to encode (" + std::to_string(a.seconds()) + " s)");
    }
    auto z = encode_log_mel(ae, *frontend, frontend->log_mel(wave_of(a)), factor());
    return (z / denoiser->config.latent_scale).unsqueeze(0).to(torch::kCPU);
  }
};


// A way back to audio that generate() can take with these weights, or a ModelError.
inline void check_vocoder(const std::string& name, bool have_neural) {
  if (name != "auto" && name != "neural" && name != "griffin-lim") {
    throw ModelError("unknown vocoder '" + name + "' (use auto, neural or griffin-lim)");
  }
  if (name == "neural" && !have_neural) {
    throw ModelError("vocoder 'neural' requested but the weights folder has no " + std::string(kVocoderFile));
  }
}

inline void check_adapter_strength(double strength) {
  if (!(strength >= 0.0 && strength <= kMaxAdapterStrength)) {
    char message[96];
    std::snprintf(message, sizeof message, "adapter strength must be in [0, %g], got %g",
                  kMaxAdapterStrength, strength);
    throw ModelError(message);
  }
}


}  // namespace tuneloop::model

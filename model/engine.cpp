#include "model/engine.hpp"

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

namespace tuneloop::model {
namespace fs = std::filesystem;

// A latent already divided by the denoiser's latent_scale: [1, C, H, L] on the CPU.
struct LatentData {
  torch::Tensor latent;
  double seconds = 0.0;
};

double LatentHandle::seconds() const noexcept { return data_ ? data_->seconds : 0.0; }

namespace {

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
// No generated clip peaks above this (it is turned down as a whole instead).
constexpr float kPeakLimit = 0.99f;

float peak_of(const std::vector<float>& samples) {
  float peak = 0.0f;
  for (float s : samples) peak = std::max(peak, std::abs(s));
  return peak;
}

// Shell-style layer patterns ("*", "?") as the whole-path regexes LoraConfig takes.
std::vector<std::string> glob_to_regex(const std::vector<std::string>& globs) {
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
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Repeats or crops a latent along time to `length` frames.
torch::Tensor fit_length(const torch::Tensor& latent, int64_t length) {
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

}  // namespace

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

  // Scaled latent [1, C, H, L] of mono audio at the model's rate.
  torch::Tensor encode_audio(audio::Audio a) {
    torch::NoGradGuard ng;
    if (a.sample_rate != sample_rate()) a = audio::resample(a, sample_rate());
    audio::clamp_loudness(a, kQuietestDbfs, kLoudestDbfs);
    const auto& fc = frontend->config();
    if (a.samples.size() < static_cast<size_t>(fc.hop * factor() * 2 + fc.n_fft)) {
      throw ModelError("audio too short to encode (" + std::to_string(a.seconds()) + " s)");
    }
    auto wave = torch::from_blob(a.samples.data(), {static_cast<int64_t>(a.samples.size())},
                                 torch::kFloat32)
                    .clone()
                    .to(device);
    auto z = encode_log_mel(ae, *frontend, frontend->log_mel(wave), factor());
    return (z / denoiser->config.latent_scale).unsqueeze(0).to(torch::kCPU);
  }
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  auto& m = *engine->impl_;
  if (options.threads < 1) throw ModelError("threads must be at least 1");
  if (options.fine_tune_threads < 0) throw ModelError("fine_tune_threads must be 0 (= threads) or more");
  m.threads = options.threads;
  m.fine_tune_threads = options.fine_tune_threads > 0 ? options.fine_tune_threads : options.threads;
  torch::set_num_threads(options.threads);
  if (options.device == "cuda" || (options.device == "auto" && torch::cuda::is_available())) {
    if (!torch::cuda::is_available()) {
      throw ModelError("device 'cuda' requested but this LibTorch has no CUDA device available");
    }
    m.device = torch::Device(torch::kCUDA);
  } else if (options.device != "cpu" && options.device != "auto") {
    throw ModelError("unknown device '" + options.device + "' (use cpu, cuda or auto)");
  }
  const auto ae_path = weights_file(options.weights_dir, "", kAutoencoderFile);
  const auto dn_path = weights_file(options.weights_dir, "", kDenoiserFile);
  m.ae = load_autoencoder(ae_path);
  std::string trained_with;
  m.denoiser = load_denoiser(dn_path, &trained_with);
  if (!trained_with.empty() && trained_with != latent_identity(m.ae)) {
    throw ModelError(dn_path + ": the denoiser was trained with another autoencoder than " + ae_path);
  }
  if (m.denoiser->config.latent_channels != m.ae->config.latent_channels ||
      m.denoiser->config.latent_height != m.ae->config.latent_height()) {
    throw ModelError(dn_path + ": latent shape does not match the autoencoder in " + ae_path);
  }
  m.frontend = std::make_unique<MelFrontEnd>(m.ae->config.frontend);
  if (const auto voc_path = weights_file(options.weights_dir, "", kVocoderFile);
      fs::exists(voc_path)) {
    m.vocoder = load_vocoder(voc_path);
    const auto &a = m.ae->config.frontend, &v = m.vocoder->config.frontend;
    if (a.sample_rate != v.sample_rate || a.n_fft != v.n_fft || a.hop != v.hop || a.mels != v.mels ||
        a.fmin != v.fmin || a.fmax != v.fmax) {
      throw ModelError(voc_path + ": the vocoder reads other features than the autoencoder in " + ae_path);
    }
    m.vocoder->to(m.device);
    for (auto& p : m.vocoder->parameters()) p.set_requires_grad(false);
  }
  m.base_hash = adapters::model_hash(*m.denoiser);
  m.ae->to(m.device);
  m.denoiser->to(m.device);
  m.ae->eval();
  m.denoiser->eval();
  for (auto& p : m.ae->parameters()) p.set_requires_grad(false);
  return engine;
}

const GenerateTimings& Engine::last_timings() const noexcept { return impl_->timings; }

namespace {

// A way back to audio that generate() can take with these weights, or a ModelError.
void check_vocoder(const std::string& name, bool have_neural) {
  if (name != "auto" && name != "neural" && name != "griffin-lim") {
    throw ModelError("unknown vocoder '" + name + "' (use auto, neural or griffin-lim)");
  }
  if (name == "neural" && !have_neural) {
    throw ModelError("vocoder 'neural' requested but the weights folder has no " + std::string(kVocoderFile));
  }
}

void check_adapter_strength(double strength) {
  if (!(strength >= 0.0 && strength <= kMaxAdapterStrength)) {
    char message[96];
    std::snprintf(message, sizeof message, "adapter strength must be in [0, %g], got %g",
                  kMaxAdapterStrength, strength);
    throw ModelError(message);
  }
}

}  // namespace

struct Engine::Denoised {
  torch::Tensor z;      // scaled latent [1, C, H, L]
  std::string adapter;  // the adapter that was applied ("" = none)
  int64_t samples = 0, frames = 0;
  bool neural = false;
};

namespace {

// Mean and standard deviation over time of each (channel, band) of a latent [1, C, H, L].
Embedding pool_latent(const torch::Tensor& z) {
  auto flat = z.to(torch::kCPU).to(torch::kFloat32).squeeze(0).flatten(0, 1);  // [C·H, L]
  auto pooled = torch::cat({flat.mean(-1), flat.std(-1, /*unbiased=*/false)}).contiguous();
  return Embedding(pooled.data_ptr<float>(), pooled.data_ptr<float>() + pooled.numel());
}

}  // namespace

Embedding Engine::embed(const audio::Audio& a) { return pool_latent(impl_->encode_audio(a)); }

Embedding Engine::preview(const GenerateParams& p, int preview_steps) {
  if (preview_steps < 1) throw ModelError("preview_steps must be at least 1");
  return pool_latent(denoise(p, preview_steps).z / impl_->denoiser->config.latent_scale);
}

audio::Audio Engine::generate(const GenerateParams& p) {
  auto& m = *impl_;
  Denoised d = denoise(p, 0);
  torch::NoGradGuard ng;
  const auto& fc = m.frontend->config();
  const int64_t samples = d.samples, frames = d.frames;
  const bool neural = d.neural;
  auto z = d.z;
  auto t0 = Clock::now();
  auto mel = m.frontend->denormalise(m.ae->decode(z)).squeeze(0).squeeze(0);  // [mels, T]
  m.timings.decode = since(t0);
  t0 = Clock::now();
  auto wave = (neural ? m.vocoder->render(mel, samples)
                     : m.frontend->to_waveform(mel.narrow(-1, 0, std::min(frames, mel.size(-1))),
                                               samples, p.griffin_lim_iterations))
                  .to(torch::kCPU)
                  .contiguous();
  m.timings.vocoder = since(t0);

  audio::Audio out;
  out.sample_rate = fc.sample_rate;
  out.samples.assign(wave.data_ptr<float>(), wave.data_ptr<float>() + wave.numel());
  if (const double gain_db = adapter_gain_db(d.adapter); gain_db != 0.0) {
    const auto gain = static_cast<float>(std::pow(10.0, gain_db / 20.0));
    for (float& s : out.samples) s *= gain;
  }
  if (const float peak = peak_of(out.samples); peak > kPeakLimit) {
    for (float& s : out.samples) s *= kPeakLimit / peak;
  }
  return out;
}

Engine::Denoised Engine::denoise(const GenerateParams& p, int stop_after) {
  auto& m = *impl_;
  if (!(p.seconds > 0.0) || p.seconds > 600.0) throw ModelError("seconds must be in (0, 600]");
  if (p.griffin_lim_iterations < 0 || p.griffin_lim_iterations > 1000) {
    throw ModelError("griffin_lim_iterations must be in 0..1000");
  }
  check_vocoder(p.vocoder, !m.vocoder.is_empty());
  check_adapter_strength(p.adapter_strength);
  const bool neural = m.vocoder && p.vocoder != "griffin-lim";
  torch::set_num_threads(m.threads);
  torch::NoGradGuard ng;
  const auto& fc = m.frontend->config();
  const int64_t samples = static_cast<int64_t>(std::llround(p.seconds * fc.sample_rate));
  const int64_t frames = m.frontend->frames(samples);
  const int64_t jm = m.latent_multiple();
  const int64_t length = ((frames + m.factor() - 1) / m.factor() + jm - 1) / jm * jm;

  SampleOptions o;
  o.steps = p.steps;
  o.guidance = p.guidance;
  o.solver = solver_from_name(p.solver);
  o.schedule = schedule_from_name(p.schedule);
  o.seed = p.seed;
  o.strength = p.strength;
  if (p.seed_latent) {
    if (!p.seed_latent->valid()) throw ModelError("seed latent is empty");
    o.init = fit_length(p.seed_latent->data()->latent, length).to(m.device);
  }
  auto tags = p.tags.empty() ? torch::Tensor() : m.tags_vector(conditioning_tags(p));

  const auto previous = adapters::active_adapter(*m.denoiser);
  if (p.adapter) set_adapter(*p.adapter);
  // Strength 0 is the base model: no weight change and no output gain of the adapter's.
  const bool base_only =
      p.adapter_strength == 0.0 && !adapters::active_adapter(*m.denoiser).empty();
  if (base_only) set_adapter("");
  struct Restore {
    Engine* e;
    std::string name;
    bool active;
    ~Restore() {
      if (active) {
        try {
          e->set_adapter(name);
        } catch (...) {
        }
      }
    }
  } restore{this, previous, p.adapter.has_value() || base_only};
  // The active adapter is folded into the base weights for the whole sampling run, so each
  // solver step runs one convolution per layer instead of base plus low-rank branch.
  // Unmerging restores the exact base weights (before the adapter is switched back).
  struct Merged {
    torch::nn::Module* net;
    std::string name;
    ~Merged() {
      if (name.empty()) return;
      try {
        adapters::unmerge_adapter(*net, name);
      } catch (...) {
      }
    }
  } merged{m.denoiser.get(), ""};
  if (const auto active = adapters::active_adapter(*m.denoiser); !active.empty()) {
    adapters::merge_adapter(
        *m.denoiser, active,
        std::min(p.adapter_strength * adapter_strength_scale(active), kMaxAdapterStrength));
    merged.name = active;
  }

  o.stop_after = stop_after;
  const auto t0 = Clock::now();
  Denoised d;
  d.z = sample(m.denoiser, length, tags, o) * m.denoiser->config.latent_scale;
  m.timings.denoise = since(t0);
  d.adapter = merged.name;
  d.samples = samples;
  d.frames = frames;
  d.neural = neural;
  return d;
}

LatentHandle Engine::encode(const audio::Audio& a) {
  auto data = std::make_shared<LatentData>();
  data->latent = impl_->encode_audio(a);
  data->seconds = a.seconds();
  return LatentHandle(std::move(data));
}

LatentHandle Engine::slerp(const std::vector<LatentHandle>& latents) {
  std::vector<torch::Tensor> ts;
  double seconds = 0.0;
  for (const auto& l : latents) {
    if (!l.valid()) throw ModelError("slerp: an empty latent handle");
    ts.push_back(l.data()->latent);
    seconds = ts.size() == 1 ? l.seconds() : std::min(seconds, l.seconds());
  }
  auto data = std::make_shared<LatentData>();
  data->latent = slerp_all(ts);
  data->seconds = seconds;
  return LatentHandle(std::move(data));
}

void Engine::save_latent(const LatentHandle& latent, const std::string& path) {
  if (!latent.valid()) throw ModelError(path + ": cannot save an empty latent handle");
  as_model_error(path, [&] {
    adapters::save_tensors(path, {{"latent", latent.data()->latent}},
                           {{"format", "tuneloop-latent"},
                            {"seconds", std::to_string(latent.seconds())},
                            {"base_model_hash", impl_->base_hash}});
  });
}

LatentHandle Engine::load_latent(const std::string& path) {
  std::map<std::string, std::string> meta;
  auto tensors = as_model_error(path, [&] { return adapters::load_tensors(path, &meta); });
  if (meta["format"] != "tuneloop-latent" || !tensors.count("latent")) {
    throw ModelError(path + ": not a tuneloop latent file");
  }
  auto t = tensors.at("latent").to(torch::kFloat32);
  const auto& c = impl_->denoiser->config;
  if (t.dim() != 4 || t.size(0) != 1 || t.size(1) != c.latent_channels || t.size(2) != c.latent_height) {
    throw ModelError(path + ": latent shape does not fit this model");
  }
  auto data = std::make_shared<LatentData>();
  data->latent = t;
  try {
    data->seconds = std::stod(meta["seconds"]);
  } catch (const std::exception&) {
    data->seconds = 0.0;
  }
  return LatentHandle(std::move(data));
}

std::string Engine::load_adapter(const std::string& path) {
  auto& m = *impl_;
  return as_model_error(path, [&] {
    // Checked before loading, so a bad file leaves an adapter of the same name in place.
    const auto meta = adapters::adapter_metadata(path);
    // A number the file keeps under `key` (`absent` if it keeps none); `valid` judges it and
    // `expected` says in the error what it should have been.
    auto number = [&](const char* key, double absent, auto valid, const std::string& expected) {
      const auto it = meta.find(key);
      if (it == meta.end()) return absent;
      double value = NAN;
      try {
        value = std::stod(it->second);
      } catch (const std::exception&) {
      }
      if (!valid(value)) throw ModelError(path + ": " + key + " '" + it->second + "' is " + expected);
      return value;
    };
    const double gain = number(
        kGainKey, 0.0, [](double g) { return std::isfinite(g) && std::abs(g) <= kMaxGainDb; },
        "not a gain within ±" + std::to_string(static_cast<int>(kMaxGainDb)) + " dB");
    const double scale = number(
        kStrengthScaleKey, 1.0, [](double v) { return v > 0.0 && v <= kMaxAdapterStrength; },
        "not in (0, " + std::to_string(static_cast<int>(kMaxAdapterStrength)) + "]");
    const auto name = adapters::load_adapter(*m.denoiser, path, m.base_hash);
    m.adapter_gain_db[name] = gain;
    m.adapter_scale[name] = scale;
    return name;
  });
}

void Engine::set_adapter(const std::string& name) {
  as_model_error("adapter '" + name + "'", [&] { adapters::set_active_adapter(*impl_->denoiser, name); });
}

std::string Engine::adapter() const { return adapters::active_adapter(*impl_->denoiser); }
double Engine::adapter_gain_db(const std::string& name) const {
  const auto it = impl_->adapter_gain_db.find(name);
  return it == impl_->adapter_gain_db.end() ? 0.0 : it->second;
}
double Engine::adapter_strength_scale(const std::string& name) const {
  const auto it = impl_->adapter_scale.find(name);
  return it == impl_->adapter_scale.end() ? 1.0 : it->second;
}
std::vector<std::string> Engine::adapters() const { return adapters::adapter_names(*impl_->denoiser); }
std::string Engine::base_hash() const { return impl_->base_hash; }
int Engine::sample_rate() const { return impl_->sample_rate(); }
std::vector<std::string> Engine::tag_vocabulary() const { return impl_->denoiser->config.tags; }

std::vector<std::string> Engine::conditioning_tags(const GenerateParams& p) const {
  return corpus::conditioning_tags(p.tags, impl_->denoiser->config.tags, p.seed);
}
std::string Engine::device() const { return impl_->device.str(); }
std::string Engine::vocoder() const { return impl_->vocoder ? "neural" : "griffin-lim"; }

// ------------------------------------------------------------------ fine-tune

// The diffusion sampler's output comes out quieter than the audio it learned from (its
// log-mel predictions average over what it cannot pin down, and an average of logs is
// lower than the log of the average): the shipped model's untagged clips are ~1.8 dB under
// the corpus, and an adapter trained on slow piano made its clips 2.6 dB quieter than its
// examples. The gain that closes the gap is measured: generate a few untagged clips with
// the adapter, compare their mean level with the examples' (weighted as they are sampled).
namespace {

// The batch's mean loss and its gradients for `params`, computed in one slice of the batch
// on this thread plus one slice per worker. Gradients are summed in slice order, so the
// result does not depend on which thread finishes first.
std::pair<double, std::vector<torch::Tensor>> loss_and_gradients(
    Denoiser& denoiser, const std::vector<torch::Tensor>& params, const torch::Tensor& x0,
    const DiffusionDraws& draws, ShardWorkers* workers) {
  const int shards = shard_count(workers);
  const int64_t batch = x0.size(0);
  std::vector<double> losses(shards, 0.0);
  std::vector<std::vector<torch::Tensor>> grads(shards);
  run_slices(workers, [&](int k) {
    const int64_t begin = batch * k / shards, end = batch * (k + 1) / shards;
    const DiffusionDraws part{draws.t.slice(0, begin, end), draws.noise.slice(0, begin, end)};
    auto loss = diffusion_loss(denoiser, x0.slice(0, begin, end), part) *
                (static_cast<double>(end - begin) / static_cast<double>(batch));
    grads[k] = torch::autograd::grad({loss}, params, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
    losses[k] = loss.item<double>();
  });
  double loss = 0.0;
  for (double l : losses) loss += l;
  return {loss, sum_gradients(grads, params.size())};
}

struct Calibration {
  double strength_scale = 1.0;
  double gain_db = 0.0;
};

// The adapter's strength calibration (FineTuneRequest::strength_scales) and then its level
// calibration (calibration_clips) on the clips of the chosen scale.
Calibration calibrate(Engine& engine, const FineTuneRequest& r, const std::string& name,
                      const std::vector<double>& weights, const std::vector<double>& levels,
                      const std::vector<audio::AudioFeatures>& example_features,
                      const ProgressFn& progress) {
  if (r.calibration_clips <= 0) return {};
  double target = 0.0, total_weight = 0.0;
  for (size_t i = 0; i < levels.size(); ++i) {
    target += weights[i] * levels[i];
    total_weight += weights[i];
  }
  target /= total_weight;
  struct Clip {
    double rms_db, peak_db;
  };
  const bool choose = r.strength_scales.size() > 1;
  std::vector<std::vector<Clip>> clips(r.strength_scales.size());
  std::vector<std::vector<audio::AudioFeatures>> features(r.strength_scales.size());
  const int total = r.calibration_clips * static_cast<int>(r.strength_scales.size());
  int done = 0;
  for (size_t s = 0; s < r.strength_scales.size(); ++s) {
    double generated = 0.0;
    for (int k = 0; k < r.calibration_clips; ++k) {
      GenerateParams p;
      p.seconds = r.calibration_seconds;
      p.seed = r.seed * 1000003ULL + static_cast<uint64_t>(k);  // the same seeds at every scale
      p.steps = r.calibration_steps;
      p.vocoder = r.calibration_vocoder;
      p.adapter_strength =
          std::min(r.calibration_strength * r.strength_scales[s], kMaxAdapterStrength);
      p.adapter = name;
      const auto audio = engine.generate(p);
      clips[s].push_back({audio::rms_dbfs(audio.samples),
                          20.0 * std::log10(std::max(peak_of(audio.samples), 1e-9f))});
      if (choose) features[s].push_back(audio::measure(audio));
      generated += clips[s].back().rms_db / r.calibration_clips;
      if (progress) progress({"calibrate", ++done, total, generated, 0.0});
    }
  }
  Calibration c;
  const size_t chosen =
      choose ? audio::nearest_set(features, example_features, weights, {"loudness_db"}) : 0;
  c.strength_scale = r.strength_scales[chosen];
  const auto& chosen_clips = clips[chosen];
  double generated = 0.0;
  for (const auto& clip : chosen_clips)
    generated += clip.rms_db / static_cast<double>(chosen_clips.size());
  // A near-silent model (an untrained fixture, say) has no level to correct.
  if (!std::isfinite(generated) || generated < -80.0) return c;
  // generate() turns a clip down when its peak would pass kPeakLimit, so the level a gain
  // gives is rms + gain - max(0, peak + gain - limit): rising in the gain; solved by bisection.
  const double limit_db = 20.0 * std::log10(kPeakLimit);
  auto level_with = [&](double gain) {
    double sum = 0.0;
    for (const auto& clip : chosen_clips)
      sum += clip.rms_db + gain - std::max(0.0, clip.peak_db + gain - limit_db);
    return sum / static_cast<double>(chosen_clips.size());
  };
  double low = -kMaxGainDb, high = kMaxGainDb;
  if (level_with(high) <= target) {
    c.gain_db = high;
  } else if (level_with(low) >= target) {
    c.gain_db = low;
  } else {
    for (int i = 0; i < 50; ++i) {
      const double mid = 0.5 * (low + high);
      (level_with(mid) < target ? low : high) = mid;
    }
    c.gain_db = 0.5 * (low + high);
  }
  return c;
}

}  // namespace

std::string Engine::fine_tune(const FineTuneRequest& r, const ProgressFn& progress,
                              const std::atomic<bool>& cancel) {
  auto& m = *impl_;
  auto report = [&](const Progress& p) {
    if (progress) progress(p);
  };
  if (r.examples.empty()) throw ModelError("fine-tune: no examples");
  if (r.output_path.empty()) throw ModelError("fine-tune: no output path");
  if (r.steps < 1 || r.batch < 1 || r.rank < 1 || !(r.lr > 0.0) || !(r.alpha > 0.0)) {
    throw ModelError("fine-tune: steps, batch, rank, lr and alpha must be positive");
  }
  if (!(r.dropout >= 0.0 && r.dropout < 1.0)) throw ModelError("fine-tune: dropout must be in [0, 1)");
  if (!(r.low_noise_emphasis >= 0.25 && r.low_noise_emphasis <= 8.0)) {
    throw ModelError("fine-tune: low_noise_emphasis must be in [0.25, 8]");
  }
  if (r.targets.empty()) throw ModelError("fine-tune: no target layers (use \"*\" for all)");
  if (r.calibration_clips < 0 || r.calibration_clips > 1000) {
    throw ModelError("fine-tune: calibration_clips must be in 0..1000");
  }
  if (!(r.calibration_seconds > 0.0 && r.calibration_seconds <= 600.0)) {
    throw ModelError("fine-tune: calibration_seconds must be in (0, 600]");
  }
  // Checked before training, not when the first calibration clip is generated.
  if (r.calibration_clips > 0) {
    if (r.calibration_steps < 1 || r.calibration_steps > 1000) {
      throw ModelError("fine-tune: calibration_steps must be in 1..1000");
    }
    check_vocoder(r.calibration_vocoder, !m.vocoder.is_empty());
    check_adapter_strength(r.calibration_strength);
  }
  if (r.strength_scales.empty())
    throw ModelError("fine-tune: strength_scales is empty (use {1} for none)");
  for (double scale : r.strength_scales) {
    if (!(scale > 0.0 && scale <= kMaxAdapterStrength)) {
      throw ModelError("fine-tune: every strength scale must be in (0, 4], got " +
                       std::to_string(scale));
    }
  }
  if (r.objective != "sft" && r.objective != "kto" && r.objective != "dpo")
    throw ModelError("fine-tune: unknown objective '" + r.objective + "' (sft, kto or dpo)");
  const bool preference = r.objective != "sft";
  if (preference && r.undesirable.empty())
    throw ModelError("fine-tune: objective " + r.objective + " needs disliked examples, and there are none");
  if (!(r.beta >= 0.0)) throw ModelError("fine-tune: beta must be >= 0");
  const bool choose_strength = r.calibration_clips > 0 && r.strength_scales.size() > 1;
  torch::set_num_threads(m.fine_tune_threads);
  torch::manual_seed(r.seed);

  // Latents of the examples, by content hash so repeated iterations skip the encoder.
  std::vector<torch::Tensor> latents;
  std::vector<double> weights, levels;
  std::vector<audio::AudioFeatures> example_features;
  int done = 0;
  // An example's latent, by content hash so repeated iterations skip the encoder.
  auto latent_of = [&](const std::string& path, const std::string& hash) {
    if (auto it = m.latent_cache.find(hash); it != m.latent_cache.end()) return it->second;
    torch::Tensor z;
    const auto cache_file =
        r.latent_cache_dir.empty() ? fs::path() : fs::path(r.latent_cache_dir) / (hash + ".safetensors");
    if (!cache_file.empty() && fs::exists(cache_file)) {
      try {
        std::map<std::string, std::string> meta;
        auto t = adapters::load_tensors(cache_file.string(), &meta);
        if (meta["base_model_hash"] == m.base_hash && meta["encoding"] == kLatentEncoding &&
            t.count("latent"))
          z = t.at("latent");
      } catch (const adapters::ModelFileError&) {
      }
    }
    if (!z.defined()) {
      z = m.encode_audio(audio::read_audio(path, m.sample_rate()));
      if (!cache_file.empty()) {
        fs::create_directories(r.latent_cache_dir);
        adapters::save_tensors(cache_file.string(), {{"latent", z}},
                               {{"format", "tuneloop-latent"},
                                {"base_model_hash", m.base_hash},
                                {"encoding", kLatentEncoding}});
      }
    }
    m.latent_cache[hash] = z;
    return z;
  };
  for (const auto& ex : r.examples) {
    if (!(ex.weight > 0.0)) throw ModelError(ex.audio_path + ": example weight must be > 0");
    const auto hash = audio::sha256_file(ex.audio_path);
    const torch::Tensor z = latent_of(ex.audio_path, hash);
    if (r.calibration_clips > 0 && !m.level_cache.count(hash)) {
      auto a = audio::read_audio(ex.audio_path, m.sample_rate());
      audio::clamp_loudness(a, kQuietestDbfs, kLoudestDbfs);
      m.level_cache[hash] = audio::rms_dbfs(a.samples);
    }
    if (choose_strength) {
      if (!m.feature_cache.count(hash)) {
        m.feature_cache[hash] = audio::measure(audio::read_audio(ex.audio_path, m.sample_rate()));
      }
      example_features.push_back(m.feature_cache.at(hash));
    }
    latents.push_back(z.squeeze(0));
    weights.push_back(ex.weight);
    levels.push_back(r.calibration_clips > 0 ? m.level_cache.at(hash) : 0.0);
    report({"encode", ++done, static_cast<int>(r.examples.size()), 0.0, 0.0});
  }
  std::vector<torch::Tensor> disliked;
  for (const auto& ex : r.undesirable)
    disliked.push_back(latent_of(ex.audio_path, audio::sha256_file(ex.audio_path)).squeeze(0));
  const int64_t jm = m.latent_multiple();
  int64_t crop = 64;
  for (const auto& z : latents) crop = std::min(crop, z.size(-1));
  for (const auto& z : disliked) crop = std::min(crop, z.size(-1));
  crop = crop / jm * jm;
  if (crop < jm) throw ModelError("fine-tune: the examples are too short");

  // The adapter to train: a fresh one, or a copy of the previous iteration's.
  const std::string name = r.name.empty() ? adapters::adapter_name_from_path(r.output_path) : r.name;
  auto& net = *m.denoiser;
  const auto previously_active = adapters::active_adapter(net);
  as_model_error("fine-tune", [&] {
    if (previously_active == name) adapters::set_active_adapter(net, "");
    for (const auto& n : adapters::adapter_names(net)) {
      if (n == name) adapters::remove_adapter(net, name);
    }
    if (!r.previous_adapter.empty()) {
      adapters::load_adapter(net, r.previous_adapter, m.base_hash, name);
    } else {
      adapters::add_adapter(net, name, adapters::LoraConfig{r.rank, r.alpha, r.dropout, glob_to_regex(r.targets)});
    }
    adapters::set_active_adapter(net, name);
  });
  adapters::freeze_base(net);
  auto params = adapters::adapter_parameters(net, name);
  for (auto& p : params) p.set_requires_grad(true);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(r.lr).weight_decay(0.0));

  int step = 0;
  auto checkpoint = [&] {
    if (r.checkpoint_path.empty()) return;
    Checkpoint c;
    for (size_t i = 0; i < params.size(); ++i) c.tensors["lora." + std::to_string(i)] = params[i].detach();
    put_optimizer(c, opt);
    c.metadata["kind"] = "fine-tune";
    c.metadata["step"] = std::to_string(step);
    c.metadata["base_model_hash"] = m.base_hash;
    c.metadata["rank"] = std::to_string(r.rank);
    save_checkpoint(c, r.checkpoint_path);
  };
  if (!r.checkpoint_path.empty() && fs::exists(r.checkpoint_path)) {
    auto c = load_checkpoint(r.checkpoint_path);
    const auto& where = r.checkpoint_path;
    if (metadata_value(c.metadata, "kind", where) != "fine-tune" ||
        metadata_value(c.metadata, "base_model_hash", where) != m.base_hash) {
      throw ModelError(where + ": not a fine-tune checkpoint of this base model");
    }
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = c.tensors.find("lora." + std::to_string(i));
      if (it == c.tensors.end() || it->second.sizes() != params[i].sizes()) {
        throw ModelError(where + ": LoRA factor " + std::to_string(i) + " is missing or has another shape");
      }
      params[i].copy_(it->second);
    }
    get_optimizer(c, opt, where);
    step = std::stoi(metadata_value(c.metadata, "step", where));
  }

  auto w = torch::tensor(weights, torch::kFloat64);
  auto crop_batch = [&](const std::vector<torch::Tensor>& pool, const torch::Tensor& pool_weights,
                        int batch) {
    auto idx = torch::multinomial(pool_weights, batch, /*replacement=*/true);
    std::vector<torch::Tensor> xs;
    for (int b = 0; b < batch; ++b) {
      const auto& z = pool[idx[b].item<int64_t>()];
      const int64_t room = z.size(-1) - crop;
      const int64_t start = room > 0 ? torch::randint(room + 1, {1}).item<int64_t>() : 0;
      xs.push_back(z.narrow(-1, start, crop));
    }
    return torch::stack(xs).to(m.device);
  };
  auto make_batch = [&](int batch) { return crop_batch(latents, w, batch); };
  const auto w_disliked = torch::ones({static_cast<int64_t>(std::max<size_t>(disliked.size(), 1))},
                                     torch::kFloat64);
  // kto and dpo: half the batch liked, half disliked (at least one of each).
  const int half = std::max(1, r.batch / 2);
  double beta = r.beta;
  if (preference && !(beta > 0.0)) {
    torch::manual_seed(r.seed + 13);
    const auto liked = make_batch(std::max(half, 8));
    const auto other = crop_batch(disliked, w_disliked, std::max(half, 8));
    auto draws = draw_diffusion_noise(liked);
    if (r.low_noise_emphasis != 1.0) draws.t = draws.t.pow(r.low_noise_emphasis);
    beta = calibrated_beta(m.denoiser, name, liked, other, draws);
  }
  torch::manual_seed(r.seed + 7);
  const auto eval_batch = make_batch(std::min(r.batch, 16));
  auto eval_loss = [&] {
    torch::NoGradGuard ng;
    net.eval();
    torch::manual_seed(r.seed + 11);
    return diffusion_loss(m.denoiser, eval_batch, torch::Tensor()).item<double>();
  };
  report({"evaluate", step, r.steps, eval_loss(), 0.0});
  torch::manual_seed(r.seed + 1000 + step);

  // With several threads, each takes a share of the batch on one LibTorch thread: the
  // denoiser's small convolutions scale poorly across OpenMP threads (1.4x on 2 cores) while
  // independent shards scale nearly fully. Dropout draws from the shared generator in each
  // shard, so a fine-tune with dropout keeps one shard (and OpenMP threads) to stay seeded.
  const int shards = r.dropout > 0.0 ? 1 : std::clamp(m.fine_tune_threads, 1, r.batch);
  std::optional<ShardWorkers> workers;
  if (shards > 1) {
    torch::set_num_threads(1);
    workers.emplace(shards - 1);
  }

  const int first = step;
  const auto t0 = Clock::now();
  try {
    while (step < r.steps) {
      if (cancel.load()) {
        checkpoint();
        throw Cancelled("fine-tune cancelled at step " + std::to_string(step) +
                        (r.checkpoint_path.empty() ? "" : "; checkpoint " + r.checkpoint_path));
      }
      net.train();
      double loss = 0.0, accuracy = -1.0;
      if (preference) {
        const auto liked = make_batch(half);
        const auto other = crop_batch(disliked, w_disliked, half);
        auto draws = draw_diffusion_noise(r.objective == "dpo" ? liked : torch::cat({liked, other}));
        if (r.low_noise_emphasis != 1.0) draws.t = draws.t.pow(r.low_noise_emphasis);
        PreferenceLoss p;
        if (r.objective == "dpo") {
          p = dpo_loss(m.denoiser, name, liked, other, draws, beta);
        } else {
          const auto label = torch::cat({torch::ones({half}, torch::kBool), torch::zeros({half}, torch::kBool)});
          p = kto_loss(m.denoiser, name, torch::cat({liked, other}), label, draws, beta);
        }
        const auto grads = torch::autograd::grad({p.loss}, params, {}, false, false, true);
        for (size_t i = 0; i < params.size(); ++i)
          params[i].mutable_grad() = grads[i].defined() ? grads[i] : torch::zeros_like(params[i]);
        loss = p.loss.item<double>();
        accuracy = p.accuracy;
      } else {
        const auto x0 = make_batch(r.batch);
        auto draws = draw_diffusion_noise(x0);
        if (r.low_noise_emphasis != 1.0) draws.t = draws.t.pow(r.low_noise_emphasis);
        const auto [l, grads] =
            loss_and_gradients(m.denoiser, params, x0, draws, workers ? &*workers : nullptr);
        for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i];
        loss = l;
      }
      opt.step();
      ++step;
      const double rate = (step - first) / std::max(since(t0), 1e-9);
      report({"train", step, r.steps, loss, (r.steps - step) / rate, accuracy});
      if (r.checkpoint_every > 0 && step % r.checkpoint_every == 0 && step < r.steps) checkpoint();
    }
    report({"evaluate", step, r.steps, eval_loss(), 0.0});
    net.eval();
    m.adapter_gain_db.erase(name);
    m.adapter_scale.erase(name);
    const auto calibration = calibrate(*this, r, name, weights, levels, example_features, progress);
    char gain_text[32], scale_text[32];
    std::snprintf(gain_text, sizeof gain_text, "%.3f", calibration.gain_db);
    std::snprintf(scale_text, sizeof scale_text, "%.4g", calibration.strength_scale);
    as_model_error(r.output_path, [&] {
      adapters::save_adapter(net, name, r.output_path, m.base_hash,
                             {{kGainKey, gain_text}, {kStrengthScaleKey, scale_text}});
    });
    m.adapter_gain_db[name] = calibration.gain_db;
    m.adapter_scale[name] = calibration.strength_scale;
    report({"save", step, r.steps, 0.0, 0.0});
  } catch (...) {
    net.eval();
    try {
      adapters::set_active_adapter(net, previously_active == name ? "" : previously_active);
    } catch (...) {
    }
    throw;
  }
  if (!r.checkpoint_path.empty()) fs::remove(r.checkpoint_path);
  adapters::set_active_adapter(net, previously_active == name ? "" : previously_active);
  return r.output_path;
}

}  // namespace tuneloop::model

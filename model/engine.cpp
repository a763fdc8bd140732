#include "model/engine_impl.hpp"

#include "audio/loudness.hpp"

namespace tuneloop::model {

double LatentHandle::seconds() const noexcept { return data_ ? data_->seconds : 0.0; }

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


struct Engine::Denoised {
  torch::Tensor z;      // scaled latent [1, C, H, L], the pre-roll's frames first
  std::string adapter;  // the adapter that was applied ("" = none)
  int64_t samples = 0;         // of the track as heard
  int64_t pre_frames = 0;      // latent frames of pre-roll
  int64_t pre_samples = 0;     // audio samples of pre-roll (a whole number of latent frames)
  int64_t frames = 0;          // mel frames of pre-roll and track
  bool neural = false;
  int griffin_lim_iterations = 32;
};

struct Engine::Planned {
  Denoised shape;  // everything but the latent and the adapter
  SampleOptions options;
  torch::Tensor tags;  // undefined = untagged
  int64_t length = 0;  // latent frames to sample
};

namespace {

// Mean and standard deviation over time of each (channel, band) of a latent [1, C, H, L].
Embedding pool_latent(const torch::Tensor& z) {
  auto flat = z.to(torch::kCPU).to(torch::kFloat32).squeeze(0).flatten(0, 1);  // [C·H, L]
  auto pooled = torch::cat({flat.mean(-1), flat.std(-1, /*unbiased=*/false)}).contiguous();
  return Embedding(pooled.data_ptr<float>(), pooled.data_ptr<float>() + pooled.numel());
}

// The sound profile of a log-mel [M, T]: for each of 16 groups of adjacent bands (fewer when
// there are fewer bands; a group's value is its bands' mean log energy), its mean over time,
// its spread over time and its mean absolute change from one frame to the next; the same
// three of the frame's level (log of its mean energy).
Embedding pool_mel(const torch::Tensor& log_mel) {
  auto mel = log_mel.to(torch::kCPU).to(torch::kFloat32).reshape({log_mel.size(-2), log_mel.size(-1)});
  const int64_t groups_n = std::min<int64_t>(16, mel.size(0)), per = mel.size(0) / groups_n;
  auto groups = mel.narrow(0, 0, per * groups_n).reshape({groups_n, per, mel.size(1)}).mean(1);  // [G, T]
  auto level = torch::logsumexp(mel, 0, /*keepdim=*/true) - std::log(static_cast<double>(mel.size(0)));
  auto rows = torch::cat({groups, level});  // [G+1, T]
  auto change = (rows.narrow(1, 1, rows.size(1) - 1) - rows.narrow(1, 0, rows.size(1) - 1)).abs().mean(1);
  auto pooled = torch::cat({rows.mean(1), rows.std(1, /*unbiased=*/false), change}).contiguous();
  return Embedding(pooled.data_ptr<float>(), pooled.data_ptr<float>() + pooled.numel());
}

}  // namespace

Embedding Engine::embed(const audio::Audio& a) { return pool_latent(impl_->encode_audio(a)); }

Embedding Engine::profile(const audio::Audio& a, bool through_autoencoder) {
  torch::NoGradGuard ng;
  auto& m = *impl_;
  if (through_autoencoder) {
    auto z = m.encode_audio(a) * m.denoiser->config.latent_scale;
    return pool_mel(m.frontend->denormalise(m.ae->decode(z.to(m.device))));
  }
  audio::Audio r = a.sample_rate == m.sample_rate() ? a : audio::resample(a, m.sample_rate());
  if (r.samples.size() < static_cast<size_t>(m.frontend->config().n_fft * 2))
    throw ModelError("audio too short for a sound profile (" + std::to_string(r.seconds()) + " s)");
  return pool_mel(m.frontend->log_mel(m.wave_of(r)));
}

Embedding Engine::preview(const GenerateParams& p, int preview_steps) {
  if (preview_steps < 1) throw ModelError("preview_steps must be at least 1");
  const Denoised d = denoise(p, preview_steps);
  const auto heard = d.z.narrow(-1, d.pre_frames, d.z.size(-1) - d.pre_frames);
  return pool_latent(heard / impl_->denoiser->config.latent_scale);
}

audio::Audio Engine::generate(const GenerateParams& p) { return finish(denoise(p, 0), true); }

std::vector<audio::Audio> Engine::generate_all(const std::vector<GenerateParams>& params, int threads,
                                               const std::function<bool(int)>& keep_going) {
  if (threads < 1) throw ModelError("generate_all: threads must be at least 1");
  for (const auto& p : params) {
    if (p.adapter != params.front().adapter || p.adapter_strength != params.front().adapter_strength) {
      throw ModelError("generate_all: every clip must name the same adapter and adapter_strength");
    }
  }
  std::vector<audio::Audio> out(params.size());
  if (params.empty()) return out;
  const int n = static_cast<int>(params.size());
  const int shards = std::clamp(n, 1, threads);
  std::vector<Planned> plans;
  for (const auto& p : params) plans.push_back(plan(p));
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};
  int reported = 0;  // the last count keep_going was given
  // Eval mode set here, once: sample() on each thread then only reads the training flags.
  if (impl_->denoiser->is_training()) impl_->denoiser->eval();
  with_adapter(params.front(), [&](const std::string& active) {
    // Clip i on slice i mod shards; the calling thread (slice 0) reports progress. A slice
    // that fails stops the others after their current clip.
    auto slice = [&](int k) {
      torch::NoGradGuard ng;
      try {
        for (int i = k; i < n && !stop.load(); i += shards) {
          out[i] = finish(sampled(plans[i], active), false);
          ++done;
          if (k == 0 && keep_going) {
            reported = done.load();
            if (!keep_going(reported)) stop = true;
          }
        }
      } catch (...) {
        stop = true;
        throw;
      }
    };
    if (shards == 1) return slice(0);
    // Each slice on one LibTorch thread, this one too; its own count is restored after.
    struct Threads {
      int before = torch::get_num_threads();
      ~Threads() { torch::set_num_threads(before); }
    } threads_of_this_one;
    torch::set_num_threads(1);
    ShardWorkers workers(shards - 1);
    run_slices(&workers, slice);
  });
  // A stop asked for after the last clip was made cancels nothing.
  if (stop.load() && done.load() < n) {
    throw Cancelled("generation cancelled after " + std::to_string(done.load()) + " of " +
                    std::to_string(n) + " clips");
  }
  if (keep_going && reported != n) keep_going(n);
  return out;
}

audio::Audio Engine::finish(const Denoised& d, bool timed) {
  auto& m = *impl_;
  torch::NoGradGuard ng;
  const auto& fc = m.frontend->config();
  const int64_t samples = d.pre_samples + d.samples, frames = d.frames;
  auto t0 = Clock::now();
  auto mel = m.frontend->denormalise(m.ae->decode(d.z)).squeeze(0).squeeze(0);  // [mels, T]
  if (timed) m.timings.decode = since(t0);
  t0 = Clock::now();
  auto wave = (d.neural ? m.vocoder->render(mel, samples)
                        : m.frontend->to_waveform(mel.narrow(-1, 0, std::min(frames, mel.size(-1))),
                                                  samples, d.griffin_lim_iterations))
                  .to(torch::kCPU)
                  .narrow(0, d.pre_samples, d.samples)
                  .contiguous();
  if (timed) m.timings.vocoder = since(t0);

  audio::Audio out;
  out.sample_rate = fc.sample_rate;
  out.samples.assign(wave.data_ptr<float>(), wave.data_ptr<float>() + wave.numel());
  if (const double gain_db = adapter_gain_db(d.adapter); gain_db != 0.0) {
    const auto gain = static_cast<float>(std::pow(10.0, gain_db / 20.0));
    for (float& s : out.samples) s *= gain;
  }
  if (d.pre_samples > 0) fade_in(out.samples, static_cast<std::size_t>(0.02 * fc.sample_rate));
  if (const double peak = audio::true_peak_dbtp(out); peak > kTruePeakLimitDbtp) {
    const auto gain = static_cast<float>(std::pow(10.0, (kTruePeakLimitDbtp - peak) / 20.0));
    for (float& s : out.samples) s *= gain;
  }
  return out;
}

Engine::Planned Engine::plan(const GenerateParams& p) {
  auto& m = *impl_;
  if (!(p.seconds > 0.0) || p.seconds > 600.0) throw ModelError("seconds must be in (0, 600]");
  if (p.griffin_lim_iterations < 0 || p.griffin_lim_iterations > 1000) {
    throw ModelError("griffin_lim_iterations must be in 0..1000");
  }
  check_vocoder(p.vocoder, !m.vocoder.is_empty());
  check_adapter_strength(p.adapter_strength);
  torch::set_num_threads(m.threads);
  torch::NoGradGuard ng;
  const auto& fc = m.frontend->config();
  if (!(p.pre_roll_seconds >= 0.0) || p.pre_roll_seconds > 30.0) {
    throw ModelError("pre_roll_seconds must be in [0, 30]");
  }
  Planned plan;
  Denoised& d = plan.shape;
  d.neural = m.vocoder && p.vocoder != "griffin-lim";
  d.griffin_lim_iterations = p.griffin_lim_iterations;
  d.samples = static_cast<int64_t>(std::llround(p.seconds * fc.sample_rate));
  const int64_t samples_per_latent = static_cast<int64_t>(fc.hop) * m.factor();
  d.pre_frames = static_cast<int64_t>(
      std::ceil(p.pre_roll_seconds * fc.sample_rate / static_cast<double>(samples_per_latent)));
  d.pre_samples = d.pre_frames * samples_per_latent;
  d.frames = m.frontend->frames(d.pre_samples + d.samples);
  const int64_t jm = m.latent_multiple();
  plan.length = ((d.frames + m.factor() - 1) / m.factor() + jm - 1) / jm * jm;

  SampleOptions& o = plan.options;
  o.steps = p.steps;
  o.guidance = p.guidance;
  o.solver = solver_from_name(p.solver);
  o.schedule = schedule_from_name(p.schedule);
  o.seed = p.seed;
  o.strength = p.strength;
  if (p.seed_latent) {
    if (!p.seed_latent->valid()) throw ModelError("seed latent is empty");
    // The pre-roll mirrors the seed's opening, so the heard track starts where the seed does.
    const auto body = fit_length(p.seed_latent->data()->latent, plan.length - d.pre_frames);
    o.init = torch::cat({fit_length(body, d.pre_frames).flip(-1), body}, -1).to(m.device);
  }
  plan.tags = p.tags.empty() ? torch::Tensor() : m.tags_vector(conditioning_tags(p));
  return plan;
}

void Engine::with_adapter(const GenerateParams& p, const std::function<void(const std::string&)>& run) {
  auto& m = *impl_;
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
  run(merged.name);
}

Engine::Denoised Engine::sampled(const Planned& planned, const std::string& active) {
  Denoised d = planned.shape;
  d.z = sample(impl_->denoiser, planned.length, planned.tags, planned.options) *
        impl_->denoiser->config.latent_scale;
  d.adapter = active;
  return d;
}

Engine::Denoised Engine::denoise(const GenerateParams& p, int stop_after) {
  Planned planned = plan(p);
  planned.options.stop_after = stop_after;
  Denoised d;
  with_adapter(p, [&](const std::string& active) {
    const auto t0 = Clock::now();
    d = sampled(planned, active);
    impl_->timings.denoise = since(t0);
  });
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

}  // namespace tuneloop::model

// Engine::fine_tune: trains a LoRA adapter on the denoiser (sft, kto or dpo), then
// calibrates its output level and strength.
#include "audio/loudness.hpp"
#include "model/engine_impl.hpp"

namespace tuneloop::model {

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

// kto's or dpo's loss and its gradients for `params`, the batch's per-example losses computed
// in slices as loss_and_gradients does: the reference's first (the adapter switched off for
// all slices at once), then the adapter's, keeping each slice's graph; the objective is taken
// on the whole batch (kto's reference point is the batch's mean reward), and its gradient
// with respect to each example's loss is sent back through each slice's graph on the thread
// that built it. The same loss as one thread's, and gradients that differ only by rounding.
PreferenceLoss preference_loss_and_gradients(
    Denoiser& denoiser, const std::string& adapter, const std::vector<torch::Tensor>& params,
    const torch::Tensor& x0, const DiffusionDraws& draws, ShardWorkers* workers,
    const std::function<PreferenceLoss(const torch::Tensor& ref, const torch::Tensor& own)>& objective,
    std::vector<torch::Tensor>& gradients) {
  const int shards = shard_count(workers);
  const int64_t batch = x0.size(0);
  auto bounds = [&](int k) { return std::pair{batch * k / shards, batch * (k + 1) / shards}; };
  auto part = [&](int64_t begin, int64_t end) {
    return DiffusionDraws{draws.t.slice(0, begin, end), draws.noise.slice(0, begin, end)};
  };
  std::vector<torch::Tensor> ref(shards), own(shards);
  {
    const ReferenceScope reference{denoiser, adapter};
    run_slices(workers, [&](int k) {
      torch::NoGradGuard ng;
      const auto [begin, end] = bounds(k);
      if (begin == end) return;  // more threads than examples
      ref[k] = diffusion_loss_per_example(denoiser, x0.slice(0, begin, end), torch::Tensor(),
                                          part(begin, end));
    });
  }
  run_slices(workers, [&](int k) {
    const auto [begin, end] = bounds(k);
    if (begin == end) return;
    own[k] = diffusion_loss_per_example(denoiser, x0.slice(0, begin, end), torch::Tensor(),
                                        part(begin, end));
  });
  std::vector<torch::Tensor> ref_values, own_values;
  for (int k = 0; k < shards; ++k) {
    if (!own[k].defined()) continue;
    ref_values.push_back(ref[k]);
    own_values.push_back(own[k].detach());
  }
  const auto own_leaf = torch::cat(own_values).requires_grad_(true);
  PreferenceLoss result = objective(torch::cat(ref_values), own_leaf);
  const auto per_example = torch::autograd::grad({result.loss}, {own_leaf})[0];
  std::vector<std::vector<torch::Tensor>> grads(shards, std::vector<torch::Tensor>(params.size()));
  run_slices(workers, [&](int k) {
    const auto [begin, end] = bounds(k);
    if (begin == end) return;
    grads[k] = torch::autograd::grad({own[k]}, params, {per_example.slice(0, begin, end)},
                                     /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
  });
  gradients = sum_gradients(grads, params.size());
  result.loss = result.loss.detach();
  return result;
}

struct Calibration {
  double strength_scale = 1.0;
  double gain_db = 0.0;
};

// The adapter's strength calibration (FineTuneRequest::strength_scales) and then its level
// calibration (calibration_clips) on the clips of the chosen scale.
// The clips are split over `threads` workers as the fine-tune's batches are.
Calibration calibrate(Engine& engine, const FineTuneRequest& r, const std::string& name,
                      const std::vector<double>& weights, const std::vector<double>& levels,
                      const std::vector<audio::AudioFeatures>& example_features, int threads,
                      const ProgressFn& progress, const std::atomic<bool>& cancel) {
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
  int before = 0;  // clips of the scales already done
  for (size_t s = 0; s < r.strength_scales.size(); ++s) {
    if (cancel.load()) throw Cancelled("fine-tune cancelled while calibrating its level");
    std::vector<GenerateParams> params;
    for (int k = 0; k < r.calibration_clips; ++k) {
      GenerateParams p;
      p.seconds = r.calibration_seconds;
      p.seed = r.seed * 1000003ULL + static_cast<uint64_t>(k);  // the same seeds at every scale
      p.steps = r.calibration_steps;
      p.vocoder = r.calibration_vocoder;
      p.adapter_strength =
          std::min(r.calibration_strength * r.strength_scales[s], kMaxAdapterStrength);
      p.adapter = name;
      params.push_back(p);
    }
    std::vector<audio::Audio> audio;
    try {
      audio = engine.generate_all(params, threads, [&](int done) {
        if (progress) progress({"calibrate", before + done, total, 0.0, 0.0});
        return !cancel.load();
      });
    } catch (const Cancelled&) {
      throw Cancelled("fine-tune cancelled while calibrating its level");
    }
    for (const auto& a : audio) {
      clips[s].push_back({audio::rms_dbfs(a.samples), audio::true_peak_dbtp(a)});
      if (choose) features[s].push_back(audio::measure(a));
    }
    before += r.calibration_clips;
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
  // generate() turns a clip down when its true peak would pass kTruePeakLimitDbtp, so the
  // level a gain gives is rms + gain - max(0, peak + gain - limit): rising in the gain;
  // solved by bisection.
  const double limit_db = kTruePeakLimitDbtp;
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
  // With several threads, each takes a share of the batch on one LibTorch thread: the
  // denoiser's small convolutions scale poorly across OpenMP threads (1.4x on 2 cores) while
  // independent shards scale nearly fully. Dropout draws from the shared generator in each
  // shard, so a fine-tune with dropout keeps one shard (and OpenMP threads) to stay seeded.
  // With shards, what runs on this thread alone (encoding, beta, the evaluation loss) runs on
  // one LibTorch thread too, clear of OpenMP's stalls on a busy machine.
  const int shards = r.dropout > 0.0 ? 1 : std::clamp(m.fine_tune_threads, 1, r.batch);
  torch::set_num_threads(shards > 1 ? 1 : m.fine_tune_threads);
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

  std::optional<ShardWorkers> workers;
  if (shards > 1) workers.emplace(shards - 1);

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
        const bool dpo = r.objective == "dpo";
        const auto label = torch::cat({torch::ones({half}, torch::kBool), torch::zeros({half}, torch::kBool)});
        PreferenceLoss p;
        std::vector<torch::Tensor> grads;
        if (workers) {  // the batch in slices over the threads
          const auto objective = [&](const torch::Tensor& ref, const torch::Tensor& own) {
            return dpo ? dpo_objective(ref, own, beta) : kto_objective(ref, own, label, beta);
          };
          p = preference_loss_and_gradients(m.denoiser, name, params, torch::cat({liked, other}),
                                            dpo ? paired_draws(draws) : draws, &*workers,
                                            objective, grads);
        } else {
          p = dpo ? dpo_loss(m.denoiser, name, liked, other, draws, beta)
                  : kto_loss(m.denoiser, name, torch::cat({liked, other}), label, draws, beta);
          grads = torch::autograd::grad({p.loss}, params, {}, false, false, true);
        }
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
    // A cancel while calibrating keeps the finished training: the resumed job only calibrates.
    Calibration calibration;
    try {
      calibration =
          calibrate(*this, r, name, weights, levels, example_features, shards, progress, cancel);
    } catch (const Cancelled&) {
      checkpoint();
      throw;
    }
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

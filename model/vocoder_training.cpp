#include "model/vocoder_training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <tuple>

#include "adapters/tensor_file.hpp"
#include "audio/features.hpp"
#include "model/model_files.hpp"
#include "model/shard_workers.hpp"
#include "model/training_util.hpp"
#include "model/vocoder.hpp"

namespace tuneloop::model {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

torch::Tensor to_tensor(const audio::Audio& a) {
  return torch::from_blob(const_cast<float*>(a.samples.data()),
                          {static_cast<int64_t>(a.samples.size())}, torch::kFloat32)
      .clone();
}

audio::Audio to_audio(const torch::Tensor& wave, int sample_rate) {
  auto w = wave.to(torch::kCPU).contiguous();
  audio::Audio out;
  out.sample_rate = sample_rate;
  out.samples.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  return out;
}

// The log-mel [mels, T] after an autoencoder round trip; T is padded (last frame repeated)
// to the autoencoder's multiple and cropped back.
torch::Tensor through_autoencoder(Autoencoder& ae, const MelFrontEnd& frontend, const torch::Tensor& log_mel) {
  torch::NoGradGuard ng;
  const int64_t t = log_mel.size(-1), f = ae->config.factor();
  auto x = fit_frames(log_mel, (t + f - 1) / f * f);
  auto y = ae->forward(frontend.normalise(x).unsqueeze(0).unsqueeze(0)).squeeze(0).squeeze(0);
  return frontend.denormalise(y).narrow(-1, 0, t);
}

bool same_features(const FrontEndConfig& a, const FrontEndConfig& b) {
  return a.sample_rate == b.sample_rate && a.n_fft == b.n_fft && a.hop == b.hop && a.mels == b.mels &&
         a.fmin == b.fmin && a.fmax == b.fmax;
}

// The vocoder's predicted spectrum [B, F, T] and its waveform [B, length] (what forward()
// returns) for log-mels [B, mels, T'].
std::pair<torch::Tensor, torch::Tensor> predict(Vocoder& voc, const torch::Tensor& log_mel,
                                                int64_t length) {
  auto spectrum = voc->spectrum(fit_frames(log_mel, voc->frontend.frames(length)));
  auto wave = voc->frontend.istft(spectrum, length);
  return {spectrum, wave};
}

// Σ |log|S| − log|Y|| between a predicted spectrum S and the STFT Y of the target waveforms
// (the same frames), and the number of bins summed.
std::pair<torch::Tensor, int64_t> spectrum_log_errors(const MelFrontEnd& frontend,
                                                      const torch::Tensor& spectrum,
                                                      const torch::Tensor& wave) {
  torch::Tensor target;
  {
    torch::NoGradGuard ng;
    target = torch::log(frontend.stft(wave).abs() + 1e-4);
  }
  auto predicted =
      torch::log(torch::sqrt(torch::view_as_real(spectrum).pow(2).sum(-1) + 1e-8) + 1e-4);
  return {(predicted - target).abs().sum(), target.numel()};
}

// Weights of the vocoder's loss terms (the multi-resolution STFT loss's log-magnitude L1 has 1).
struct LossWeights {
  double sc = 1, mel = 1, phase = 0, spectrum = 0;
  int64_t phase_n_fft = 1024;
};

// The batch's loss (multi-resolution STFT loss with its spectral convergence weighted by
// w.sc, + w.mel × log-mel L1, + w.phase × the phase-derivative loss, + w.spectrum × the
// predicted spectrum's log-magnitude L1, as loss_of()) and
// its gradients for `params`, the batch split into one slice per thread. Spectral
// convergence is a ratio over the whole batch, so each slice first reports its sums; the
// loss's derivative with respect to each sum is then the same for every slice, and each
// slice back-propagates its sums with those weights. Gradients are summed in slice order.
std::pair<double, std::vector<torch::Tensor>> loss_and_gradients(
    Vocoder& voc, const MelFrontEnd& frontend, const std::vector<torch::Tensor>& params,
    const torch::Tensor& wave, const torch::Tensor& input, const torch::Tensor& target,
    const LossWeights& w, ShardWorkers* workers) {
  const int shards = shard_count(workers);
  const int64_t batch = wave.size(0), length = wave.size(1);
  struct Slice {
    StftLossSums stft;
    PhaseLossSums phase;
    torch::Tensor mel_error, spectrum_error;
    int64_t mel_count = 0, spectrum_count = 0;
    std::vector<torch::Tensor> grads;
  };
  std::vector<Slice> slices(shards);
  run_slices(workers, [&](int k) {
    const int64_t begin = batch * k / shards, end = batch * (k + 1) / shards;
    const auto [spectrum, out] = predict(voc, input.slice(0, begin, end), length);
    slices[k].stft = multi_resolution_stft_sums(out, wave.slice(0, begin, end));
    if (w.spectrum > 0) {
      std::tie(slices[k].spectrum_error, slices[k].spectrum_count) =
          spectrum_log_errors(frontend, spectrum, wave.slice(0, begin, end));
    }
    auto mel = frontend.log_mel(out);
    slices[k].mel_error = (mel - target.slice(0, begin, end)).abs().sum();
    slices[k].mel_count = mel.numel();
    if (w.phase > 0)
      slices[k].phase = phase_derivative_sums(out, wave.slice(0, begin, end), w.phase_n_fft);
  });
  const size_t resolutions = slices[0].stft.counts.size();
  const double per_resolution = 1.0 / static_cast<double>(resolutions);
  double loss = 0.0;
  std::vector<double> error_weight(resolutions), log_weight(resolutions);
  for (size_t r = 0; r < resolutions; ++r) {
    double error = 0, reference = 0, log_error = 0, count = 0;
    for (const auto& s : slices) {
      error += s.stft.error_squares[r].item<double>();
      reference += s.stft.target_squares[r];
      log_error += s.stft.log_errors[r].item<double>();
      count += static_cast<double>(s.stft.counts[r]);
    }
    const double denominator = std::sqrt(reference) + 1e-7, norm = std::sqrt(error);
    loss += per_resolution * (w.sc * norm / denominator + log_error / count);
    error_weight[r] = norm > 0 ? w.sc * per_resolution / (2.0 * norm * denominator) : 0.0;
    log_weight[r] = per_resolution / count;
  }
  double mel_error = 0, mel_count = 0;
  for (const auto& s : slices) {
    mel_error += s.mel_error.item<double>();
    mel_count += static_cast<double>(s.mel_count);
  }
  loss += w.mel * mel_error / mel_count;
  double phase_error = 0, phase_weight = 0;
  for (const auto& s : slices) {
    if (!s.phase.error.defined()) continue;
    phase_error += s.phase.error.item<double>();
    phase_weight += s.phase.weight;
  }
  const double phase_scale = phase_weight > 0 ? w.phase / (phase_weight + 1e-12) : 0.0;
  loss += phase_scale * phase_error;
  double spectrum_error = 0, spectrum_count = 0;
  for (const auto& s : slices) {
    if (!s.spectrum_error.defined()) continue;
    spectrum_error += s.spectrum_error.item<double>();
    spectrum_count += static_cast<double>(s.spectrum_count);
  }
  const double spectrum_scale = spectrum_count > 0 ? w.spectrum / spectrum_count : 0.0;
  loss += spectrum_scale * spectrum_error;
  run_slices(workers, [&](int k) {
    auto& s = slices[k];
    auto surrogate = (w.mel / mel_count) * s.mel_error;
    if (s.phase.error.defined()) surrogate = surrogate + phase_scale * s.phase.error;
    if (s.spectrum_error.defined()) surrogate = surrogate + spectrum_scale * s.spectrum_error;
    for (size_t r = 0; r < resolutions; ++r) {
      surrogate = surrogate + error_weight[r] * s.stft.error_squares[r] +
                  log_weight[r] * s.stft.log_errors[r];
    }
    s.grads =
        torch::autograd::grad({surrogate}, params, /*grad_outputs=*/{}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
  });
  std::vector<std::vector<torch::Tensor>> grads;
  for (auto& s : slices) grads.push_back(std::move(s.grads));
  return {loss, sum_gradients(grads, params.size())};
}

}  // namespace

// ---------------------------------------------------------------- training

TrainResult train_vocoder(const VocoderTrainOptions& o) {
  auto run = start_training_run(o.out, "vocoder", kVocoderFile, o.threads, o.seed, o.resume);
  const auto& ckpt_path = run.checkpoint_path;
  const auto& weights_path = run.weights_path;
  auto& ckpt = run.checkpoint;
  VocoderConfig config = ckpt ? vocoder_config_from_json(
                                    metadata_value(ckpt->metadata, "config", ckpt_path), ckpt_path)
                              : o.config;
  Autoencoder ae{nullptr};
  if (!o.autoencoder.empty()) {
    ae = load_autoencoder(o.autoencoder);
    for (auto& p : ae->parameters()) p.set_requires_grad(false);
    if (!ckpt) config.frontend = ae->config.frontend;
    if (!same_features(config.frontend, ae->config.frontend)) {
      throw ModelError(o.autoencoder + ": its front end differs from the vocoder's in " + ckpt_path);
    }
  }
  Vocoder init_from{nullptr};
  if (!ckpt && !o.init.empty()) {
    init_from = load_vocoder(o.init);
    config = init_from->config;  // its front end and sizes
    config.dim *= o.widen;
    config.intermediate *= o.widen;
    config.phase = o.config.phase;
    config.refine = o.config.refine;  // not a weight: this run's choice
    if (config.head_hidden == 0) config.head_hidden = o.config.head_hidden;
    if (o.init_mels > 0) config.frontend.mels = o.init_mels;
    if (ae) {
      auto bands_aside = config.frontend;
      bands_aside.mels = ae->config.frontend.mels;
      // An autoencoder at a higher rate with the same frames (at_rate): the vocoder takes its
      // front end, and starts as the file's bins below the file's Nyquist (init_vocoder_from).
      const bool rerate = at_another_rate(ae->config.frontend, config.frontend);
      if ((!rerate && !same_features(bands_aside, ae->config.frontend)) ||
          (o.init_mels > 0 && o.init_mels != ae->config.frontend.mels)) {
        throw ModelError(o.init + ": its front end differs from the autoencoder's (" + o.autoencoder +
                         ") in more than its bands and sample rate");
      }
      if (rerate) config.frontend = ae->config.frontend;
      config.frontend.mels = ae->config.frontend.mels;  // mapped below if they differ
    }
  } else if (o.init_mels > 0) {
    throw ModelError("init_mels needs init: the vocoder file whose bands are mapped");
  }
  const int hop = config.frontend.hop;
  if (o.crop_samples < hop || o.crop_samples % hop != 0) {
    throw ModelError("crop_samples must be a positive multiple of the hop (" + std::to_string(hop) + ")");
  }
  if (o.warmup < 0) throw ModelError("warmup must be 0 or more steps");
  if (o.widen < 1 || o.widen > 8) throw ModelError("widen must be 1 to 8");
  if (o.widen > 1 && o.init.empty())
    throw ModelError("widen needs init: the vocoder file to widen");
  if (o.sc_weight < 0.0 || o.mel_weight < 0.0 || o.phase_weight < 0.0 || o.spectrum_weight < 0.0)
    throw ModelError("loss weights must be 0 or more");
  if (o.autoencoder_mix < 0.0 || o.autoencoder_mix > 1.0) {
    throw ModelError("autoencoder_mix must be in [0, 1]");
  }

  auto clips = read_corpus_index(o.corpus);
  if (o.held_out < 0 || static_cast<size_t>(o.held_out) >= clips.size()) {
    throw ModelError(o.corpus + ": held_out leaves no clips to train on");
  }
  clips.resize(clips.size() - o.held_out);
  MelFrontEnd frontend(config.frontend);

  // Waveforms (at least one crop long) and, with an autoencoder, their round-trip log-mels.
  std::vector<torch::Tensor> waves, ae_mels;
  for (size_t i = 0; i < clips.size(); ++i) {
    auto w = to_tensor(audio::read_audio(clips[i].path, config.frontend.sample_rate));
    if (w.numel() < o.crop_samples) w = torch::constant_pad_nd(w, {0, o.crop_samples - w.numel()});
    waves.push_back(w);
    if (ae) ae_mels.push_back(through_autoencoder(ae, frontend, frontend.log_mel(w)));
    if (!o.quiet && (i + 1) % 200 == 0) std::fprintf(stderr, "read %zu/%zu clips\n", i + 1, clips.size());
  }

  Vocoder voc(config);
  std::string band_note;
  if (init_from) {
    std::optional<BandMap> bands;
    const auto& file = init_from->config.frontend;
    if (const int from = file.mels; from != config.frontend.mels || file.sample_rate != config.frontend.sample_rate) {
      // A few hundred clips hold ~10⁵ frames, plenty for a map of a few hundred numbers.
      const std::vector<torch::Tensor> some(waves.begin(),
                                            waves.begin() + std::min<size_t>(waves.size(), 300));
      bands = fit_band_map(init_from->config.frontend, config.frontend, some, o.init);
      char buf[160];
      std::snprintf(buf, sizeof buf, ", %d bands at %d Hz read through a map to the file's %d at %d Hz (RMS error %.3f)",
                    config.frontend.mels, config.frontend.sample_rate, from, file.sample_rate, bands->residual);
      band_note = buf;
    }
    init_vocoder_from(voc, init_from, o.init, bands ? &*bands : nullptr);
  }
  torch::optim::AdamW opt(voc->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(0.01));
  int step = 0;
  if (ckpt) {
    load_state(*voc, get_tensors(*ckpt, "model."), ckpt_path);
    get_optimizer(*ckpt, opt, ckpt_path);
    step = std::stoi(metadata_value(ckpt->metadata, "step", ckpt_path));
  }
  TrainLog log("train-vocoder", (fs::path(o.out) / "losses.csv").string(), ckpt.has_value(), o.steps,
               o.quiet);
  log.note(
      std::to_string(clips.size()) + " clips (" + std::to_string(o.held_out) + " held out), crop " +
      std::to_string(o.crop_samples) + " samples, " + std::to_string(parameter_count(*voc)) +
      " parameters, phase " + config.phase + ", head branch " + std::to_string(config.head_hidden) +
      (init_from ? ", from " + o.init : "") +
      (init_from && o.widen > 1 ? " widened " + std::to_string(o.widen) + "x" : "") + band_note +
      (step < o.warmup ? ", lr warm-up to step " + std::to_string(o.warmup) : "") +
      (ae ? ", autoencoder mix " + std::to_string(o.autoencoder_mix) : "") +
      (o.sc_weight != 1.0 ? ", spectral-convergence weight " + std::to_string(o.sc_weight) : "") +
      (o.phase_weight > 0 ? ", phase-derivative weight " + std::to_string(o.phase_weight) : "") +
      (o.spectrum_weight > 0 ? ", predicted-spectrum weight " + std::to_string(o.spectrum_weight)
                             : "") +
      (ckpt ? ", resuming at step " + std::to_string(step) : ""));

  // A batch: random hop-aligned crops; each input mel is the true one or, with probability
  // autoencoder_mix, the autoencoder's reconstruction of the same frames.
  const int64_t crop = o.crop_samples, crop_frames = frontend.frames(crop);
  auto make_batch = [&](int batch) {
    std::vector<torch::Tensor> ws;
    std::vector<std::pair<size_t, int64_t>> from_ae;  // (example, clip) and start frame
    std::vector<int64_t> picks;
    for (int b = 0; b < batch; ++b) {
      const auto i = torch::randint(static_cast<int64_t>(waves.size()), {1}).item<int64_t>();
      const int64_t room = (waves[i].numel() - crop) / hop;
      const int64_t k = room > 0 ? torch::randint(room + 1, {1}).item<int64_t>() : 0;
      ws.push_back(waves[i].narrow(0, k * hop, crop));
      if (ae && torch::rand({1}).item<double>() < o.autoencoder_mix &&
          k + crop_frames <= ae_mels[i].size(-1)) {
        from_ae.emplace_back(static_cast<size_t>(b), k);
        picks.push_back(i);
      }
    }
    auto wave = torch::stack(ws);
    torch::Tensor target, input;
    {
      torch::NoGradGuard ng;
      target = frontend.log_mel(wave);
      input = target.clone();
      for (size_t j = 0; j < from_ae.size(); ++j) {
        input.select(0, static_cast<int64_t>(from_ae[j].first))
            .copy_(ae_mels[picks[j]].narrow(-1, from_ae[j].second, crop_frames));
      }
    }
    return std::make_tuple(wave, input, target);
  };
  auto loss_of = [&](const torch::Tensor& wave, const torch::Tensor& input,
                     const torch::Tensor& target) {
    const auto [spectrum, out] = predict(voc, input, crop);
    auto loss = multi_resolution_stft_loss(out, wave, o.sc_weight) +
                o.mel_weight * torch::l1_loss(frontend.log_mel(out), target);
    if (o.phase_weight > 0)
      loss = loss + o.phase_weight * phase_derivative_loss(out, wave, config.frontend.n_fft);
    if (o.spectrum_weight > 0) {
      const auto [error, count] = spectrum_log_errors(frontend, spectrum, wave);
      loss = loss + o.spectrum_weight * error / static_cast<double>(count);
    }
    return loss;
  };

  torch::manual_seed(o.seed + 7);
  const auto eval_batch = make_batch(std::min(o.batch, 16));
  auto eval_loss = [&] {
    torch::NoGradGuard ng;
    voc->eval();
    const auto& [w, in, t] = eval_batch;
    return loss_of(w, in, t).item<double>();
  };
  TrainResult result;
  result.initial_eval_loss = eval_loss();
  torch::manual_seed(o.seed + 1000 + step);

  auto checkpoint = [&] {
    Checkpoint c;
    put_tensors(c, "model.", adapters::base_state_dict(*voc));
    put_optimizer(c, opt);
    c.metadata["config"] = to_json(config);
    c.metadata["kind"] = "vocoder";
    c.metadata["step"] = std::to_string(step);
    save_checkpoint(c, ckpt_path);
    save_vocoder(voc, weights_path);
  };

  // One batch slice per thread, each on one LibTorch thread: OpenMP barely speeds up this
  // network's small operations (0.116 s/step at 2 threads against 0.109 at 1).
  const int shards = std::clamp(o.threads, 1, o.batch);
  std::optional<ShardWorkers> workers;
  if (shards > 1) {
    torch::set_num_threads(1);
    workers.emplace(shards - 1);
  }
  auto params = voc->parameters();
  const LossWeights weights{o.sc_weight, o.mel_weight, o.phase_weight, o.spectrum_weight,
                            config.frontend.n_fft};
  const int first_step = step;
  const auto t0 = Clock::now();
  while (step < o.steps) {
    if (o.stop && o.stop->load()) {
      result.interrupted = true;
      log.note("interrupted: checkpoint at step " + std::to_string(step));
      break;
    }
    voc->train();
    const auto [w, in, t] = make_batch(o.batch);
    const auto [loss, grads] =
        loss_and_gradients(voc, frontend, params, w, in, t, weights, workers ? &*workers : nullptr);
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i];
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    if (step < o.warmup) {
      static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[0].options())
          .lr(o.lr * (step + 1) / o.warmup);
    } else if (step == o.warmup) {
      static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[0].options()).lr(o.lr);
    }
    opt.step();
    ++step;
    log.step(step, first_step, loss);
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) checkpoint();
  }
  checkpoint();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  result.seconds_per_step = step > first_step ? seconds / (step - first_step) : 0.0;
  result.final_eval_loss = eval_loss();
  result.step = step;
  result.weights = weights_path;
  log.note("done: step " + std::to_string(step) + ", eval loss " +
           std::to_string(result.initial_eval_loss) + " -> " + std::to_string(result.final_eval_loss));
  return result;
}

// ---------------------------------------------------------------- round trip

namespace {

// The parts a round trip needs, loaded once.
struct RoundTrip {
  Autoencoder ae{nullptr};
  Vocoder vocoder{nullptr};
  std::unique_ptr<MelFrontEnd> frontend;
  int griffin_lim_iterations = 32;

  RoundTrip(const ReconstructOptions& o, bool need_ae, bool need_vocoder) {
    const auto ae_path = weights_file(o.weights_dir, o.autoencoder, kAutoencoderFile);
    const auto voc_path = weights_file(o.weights_dir, o.vocoder, kVocoderFile);
    // Without a use for the autoencoder, its file only lends Griffin-Lim its front end.
    if (need_ae || (!need_vocoder && fs::exists(ae_path))) ae = load_autoencoder(ae_path);
    if (o.refine > kMaxRefine) {
      throw ModelError("refine must be -1 (the vocoder file's) to " + std::to_string(kMaxRefine));
    }
    if (need_vocoder) vocoder = load_vocoder(voc_path);
    if (vocoder && o.refine >= 0) vocoder->config.refine = o.refine;
    if (ae && vocoder && !same_features(ae->config.frontend, vocoder->config.frontend)) {
      throw ModelError(voc_path + ": the vocoder reads other features than the autoencoder in " + ae_path);
    }
    frontend = std::make_unique<MelFrontEnd>(ae ? ae->config.frontend
                                              : vocoder ? vocoder->config.frontend : FrontEndConfig{});
    griffin_lim_iterations = o.griffin_lim_iterations;
  }

  torch::Tensor synthesise(const torch::Tensor& log_mel, int64_t length, bool neural) {
    torch::NoGradGuard ng;
    if (neural) return vocoder->render(log_mel, length);
    return frontend->to_waveform(fit_frames(log_mel, frontend->frames(length)), length,
                                 griffin_lim_iterations);
  }
};

}  // namespace

audio::Audio reconstruct(const audio::Audio& input, const ReconstructOptions& o) {
  torch::set_num_threads(o.threads);
  torch::NoGradGuard ng;
  RoundTrip rt(o, o.through_autoencoder, !o.griffin_lim);
  const int rate = rt.frontend->config().sample_rate;
  const auto a = input.sample_rate == rate ? input : audio::resample(input, rate);
  if (a.samples.size() < static_cast<size_t>(rt.frontend->config().n_fft / 2 + 1)) {
    throw ModelError("reconstruct: audio too short (" + std::to_string(a.seconds()) + " s)");
  }
  auto wave = to_tensor(a);
  auto mel = rt.frontend->log_mel(wave);
  if (o.through_autoencoder) mel = through_autoencoder(rt.ae, *rt.frontend, mel);
  return to_audio(rt.synthesise(mel, wave.numel(), !o.griffin_lim), rate);
}

// ---------------------------------------------------------------- evaluation

namespace {

struct ScoreSum {
  VocoderScores s;
  double audio_seconds = 0;
  void add(const MelFrontEnd& frontend, const torch::Tensor& out, const torch::Tensor& ref,
           const audio::AudioFeatures& in_features, double synth_seconds) {
    const auto [sc, lsd] = spectral_distances(frontend, out, ref);
    const auto f = audio::measure(to_audio(out, frontend.config().sample_rate));
    s.spectral_convergence += sc;
    s.log_spectral_distance += lsd;
    s.onset_rate_in += in_features.onset_rate;
    s.onset_rate_out += f.onset_rate;
    s.onset_rate_error += std::abs(f.onset_rate - in_features.onset_rate) /
                          std::max(in_features.onset_rate, 0.5);
    s.flatness_in += in_features.flatness;
    s.flatness_out += f.flatness;
    s.flatness_error += std::abs(f.flatness - in_features.flatness);
    s.seconds_per_audio_second += synth_seconds;
    audio_seconds += static_cast<double>(ref.numel()) / frontend.config().sample_rate;
  }
  VocoderScores mean(int n) const {
    auto m = s;
    for (double* v : {&m.spectral_convergence, &m.log_spectral_distance, &m.onset_rate_in,
                      &m.onset_rate_out, &m.onset_rate_error, &m.flatness_in, &m.flatness_out,
                      &m.flatness_error}) {
      *v /= std::max(n, 1);
    }
    m.seconds_per_audio_second = audio_seconds > 0 ? s.seconds_per_audio_second / audio_seconds : 0.0;
    return m;
  }
};

}  // namespace

VocoderEvaluation evaluate_vocoder(const std::string& corpus, int count, const ReconstructOptions& o) {
  torch::set_num_threads(o.threads);
  torch::NoGradGuard ng;
  auto clips = read_corpus_index(corpus);
  if (count < 1) throw ModelError("evaluate: at least one clip is needed");
  if (static_cast<size_t>(count) < clips.size()) clips.erase(clips.begin(), clips.end() - count);
  RoundTrip rt(o, o.through_autoencoder, true);
  ScoreSum sums[4];  // neural true, neural AE, Griffin-Lim true, Griffin-Lim AE
  for (const auto& clip : clips) {
    auto a = audio::read_audio(clip.path, rt.frontend->config().sample_rate);
    const auto in_features = audio::measure(a);
    auto wave = to_tensor(a);
    auto mel = rt.frontend->log_mel(wave);
    auto ae_mel = o.through_autoencoder ? through_autoencoder(rt.ae, *rt.frontend, mel) : mel;
    for (int k = 0; k < 4; ++k) {
      if (k % 2 == 1 && !o.through_autoencoder) continue;
      const auto t0 = Clock::now();
      auto out = rt.synthesise(k % 2 == 0 ? mel : ae_mel, wave.numel(), k < 2);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      sums[k].add(*rt.frontend, out, wave, in_features, s);
    }
  }
  VocoderEvaluation e;
  e.clips = static_cast<int>(clips.size());
  e.through_autoencoder = o.through_autoencoder;
  e.neural_true = sums[0].mean(e.clips);
  e.neural_autoencoder = sums[1].mean(e.clips);
  e.griffin_lim_true = sums[2].mean(e.clips);
  e.griffin_lim_autoencoder = sums[3].mean(e.clips);
  return e;
}

}  // namespace tuneloop::model

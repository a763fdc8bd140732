#pragma once
// The model's narrow interface: generate audio from tags (and a seed latent), encode songs
// into latents, merge latents, fine-tune and switch LoRA adapters. No LibTorch types here.
//
// An Engine is not thread-safe: one worker thread owns it (training and generation run
// there, at a bounded number of LibTorch threads).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audio/audio.hpp"
#include "model/model_error.hpp"

namespace tuneloop::model {

// fine_tune stopped because its cancel flag was set; a checkpoint was written first.
class Cancelled : public ModelError {
 public:
  using ModelError::ModelError;
};

struct EngineOptions {
  std::string weights_dir;      // "" = the shipped model/weights
  std::string device = "cpu";   // cpu | cuda | auto
  int threads = 2;              // LibTorch intra-op threads (generation, encoding)
  int fine_tune_threads = 0;    // LibTorch threads for fine_tune(); 0 = `threads`
};

struct LatentData;  // defined inside model/
// An encoded song (or a merge of several): opaque, cheap to copy, immutable.
class LatentHandle {
 public:
  LatentHandle() = default;
  explicit LatentHandle(std::shared_ptr<const LatentData> data) : data_(std::move(data)) {}
  bool valid() const noexcept { return data_ != nullptr; }
  double seconds() const noexcept;  // the audio duration it stands for
  const std::shared_ptr<const LatentData>& data() const noexcept { return data_; }

 private:
  std::shared_ptr<const LatentData> data_;
};

struct GenerateParams {
  std::vector<std::string> tags;  // words of the model's vocabulary; empty = untagged
  double seconds = 10.0;
  uint64_t seed = 0;
  int steps = 25;                 // solver steps (the daemon's model.steps default too)
  double guidance = 3.0;          // classifier-free guidance, used only when tags are given
  std::string solver = "dpm++2m"; // or "ddim"
  // Where the solver steps fall: "karras" (crowded toward low noise; at 25 steps as clean
  // as 100 evenly spaced ones) or "uniform" (evenly in t).
  std::string schedule = "karras";
  std::optional<LatentHandle> seed_latent;  // img2img start (tiled or cropped to seconds)
  double strength = 0.6;          // with seed_latent: 0 = the seed itself, 1 = ignore it
  std::optional<std::string> adapter;  // unset = the engine's current adapter; "" = none
  // How much of the active adapter's change to the denoiser's weights is applied, in [0, 4]:
  // 1 = as trained, 0 = the base model, above 1 extrapolates further in its direction.
  double adapter_strength = 1.0;
  int griffin_lim_iterations = 32;
  // "auto" = the neural vocoder when the weights folder has vocoder.safetensors, else
  // Griffin-Lim; "neural" (an error without the file) or "griffin-lim".
  std::string vocoder = "auto";
  // Seconds of music made before the track and cut off: the base model opens every clip as
  // its corpus does (a cymbal crash on the first beat), so the heard track starts mid-piece,
  // with a 20-ms fade-in. 0 = none (the opening as the model draws it).
  double pre_roll_seconds = 1.5;
};

// Seconds spent in each part of the last generate().
struct GenerateTimings {
  double denoise = 0, decode = 0, vocoder = 0;
};

// A track as the model hears it: the mean and standard deviation over time of each
// (channel, band) of its latent. What the reward model and the candidate selection read.
using Embedding = std::vector<float>;

struct WeightedExample {
  std::string audio_path;
  double weight = 1.0;  // sampling weight (> 0)
};

struct FineTuneRequest {
  std::vector<WeightedExample> examples;  // what to move toward (desirable)
  // "sft": denoise the examples, weighted; "kto": examples desirable, `undesirable` not
  // (unpaired, Diffusion-KTO); "dpo": pairs of one of each (Diffusion-DPO). kto and dpo
  // measure against the base model (the adapter switched off) and need undesirable ones.
  std::string objective = "sft";
  std::vector<WeightedExample> undesirable;
  double beta = 0.0;  // kto/dpo temperature; 0 = calibrated (preference_losses.hpp)
  std::string previous_adapter;   // adapter file to continue from, or ""
  int steps = 300;
  int rank = 8;
  double alpha = 8.0;
  double lr = 1e-3;
  int batch = 8;
  double dropout = 0.0;           // LoRA dropout, in [0, 1)
  // Training noise levels are drawn as t = u^p, u uniform in [0, 1): 1 = uniform as in the
  // base model's training, 2 = more at low noise (a quarter of them below t = 0.0625, not
  // 6 %), where timbre, clean tones and hiss are decided; 0.5 (the daemon's default)
  // = more at high noise (44 % above t = 0.75, not 25 %), where rhythm, note
  // density and register are decided. In [0.25, 8].
  double low_noise_emphasis = 0.5;
  // Layers that get LoRA: shell-style patterns ('*' any run of characters, '?' one) over
  // the denoiser's dotted layer paths, e.g. "mid*" or "*.conv1"; "*" = every layer.
  // A fine-tune that continues from `previous_adapter` keeps that adapter's layers.
  std::vector<std::string> targets = {"*"};
  std::string output_path;        // adapter .safetensors to write
  std::string checkpoint_path;    // "" = none; resumed from when it exists
  int checkpoint_every = 50;
  std::string latent_cache_dir;   // "" = in memory only; else latents by content hash
  std::string name;               // adapter name; "" = output file's stem
  uint64_t seed = 1;
  // Level calibration: after training, this many untagged clips of calibration_seconds
  // (the length the adapter will generate: longer clips come out quieter) are generated
  // with the adapter, and its output gain is set so that their mean level matches the
  // examples' (the sampler's output is quieter than what it learned from). 0 = no gain.
  int calibration_clips = 40;
  double calibration_seconds = 8.0;
  // How the calibration clips are sampled and turned into audio: as the adapter's tracks
  // will be (the daemon passes its model.steps and model.vocoder; the level depends on both).
  int calibration_steps = 25;
  std::string calibration_vocoder = "auto";
  double calibration_strength = 1.0;  // the adapter_strength its tracks will be generated at
  // Strength calibration: with more than one scale, calibration_clips clips (the same seeds)
  // are generated at calibration_strength times each scale, and the adapter keeps the scale
  // whose clips' mean features (loudness left out: the level calibration sets it) lie
  // nearest its examples' weighted mean; generation then applies adapter_strength × that
  // scale. An adapter trained to the end can overshoot its examples (README, Steerability).
  // Each in (0, 4]; {1} = no strength calibration; one other scale is kept as it is. Only
  // with calibration_clips > 0: without clips the scale is 1.
  std::vector<double> strength_scales = {1.0};
};

struct Progress {
  std::string phase;   // "encode", "evaluate", "train", "calibrate", "save"
  int step = 0;
  int total = 0;
  double loss = 0.0;
  double eta_seconds = 0.0;
  double accuracy = -1.0;  // kto/dpo: share ordered right by the implicit reward; -1 = n/a
};
using ProgressFn = std::function<void(const Progress&)>;

class Engine {
 public:
  // Loads autoencoder.safetensors and denoiser.safetensors from options.weights_dir, and
  // vocoder.safetensors when it is there (else Griffin-Lim turns mels into audio).
  // Throws ModelError naming the file if one is missing, malformed or they do not
  // belong together, or if the device is unavailable.
  static std::unique_ptr<Engine> load(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Throws ModelError on an unknown tag (listing the vocabulary), an unknown adapter, an
  // unknown solver or schedule, an unknown or unavailable vocoder, or parameters out of
  // range (seconds in (0, 600], steps 1..1000, strength in [0, 1], adapter_strength in [0, 4]).
  audio::Audio generate(const GenerateParams& params);
  // generate() for each of params, split over `threads` threads (this one and threads - 1
  // workers; clip i on thread i mod threads), each running one LibTorch thread: with
  // model.threads 1, the same audio as generate() one by one. With one thread or one clip,
  // generate() on this thread.
  // Every params must name the same adapter and adapter_strength (applied once for all).
  // keep_going(clips done so far) is called on this thread after each clip it makes, and at
  // the end if its last count was not all of them; when it returns false the workers stop after their current clip and
  // generate_all throws Cancelled. Throws as generate(), and ModelError on mixed adapters.
  std::vector<audio::Audio> generate_all(const std::vector<GenerateParams>& params, int threads,
                                         const std::function<bool(int)>& keep_going = {});
  // The tags generate() conditions on: params.tags completed as corpus clips carry them (a
  // mode without a key gets one drawn from params.seed, a mode and key their scale word;
  // corpus::conditioning_tags), as far as the weights know those words.
  std::vector<std::string> conditioning_tags(const GenerateParams& params) const;
  const GenerateTimings& last_timings() const noexcept;

  // The embedding of audio (encoded as encode() does). Throws as encode().
  Embedding embed(const audio::Audio& audio);
  // A sound profile of audio: for 16 groups of adjacent mel bands and the frame level, the
  // mean over time, the spread and the mean frame-to-frame change of the log-mel (51
  // numbers), as the front end hears the audio or after the autoencoder's way there and back
  // (its level brought into the corpus's range, as encode() does). Throws ModelError if the
  // audio is too short.
  Embedding profile(const audio::Audio& audio, bool through_autoencoder);
  // The embedding of the clean latent that generate(params) is heading for, predicted
  // after the first preview_steps of its params.steps solver steps: a candidate's preview
  // at a fraction of its cost. Throws as generate(), and ModelError when preview_steps < 1.
  Embedding preview(const GenerateParams& params, int preview_steps);

  // Any sample rate (resampled with libsoxr). A level outside the corpus's range
  // (-26..-14 dBFS RMS) is brought to the nearer bound; one inside is kept.
  // Throws ModelError if the audio is too short (under about 0.3 s).
  LatentHandle encode(const audio::Audio& audio);
  // Equal-weight spherical merge, cropped to the shortest. Throws ModelError if empty.
  LatentHandle slerp(const std::vector<LatentHandle>& latents);
  // Latents as files (safetensors). Throws ModelError naming the file.
  void save_latent(const LatentHandle& latent, const std::string& path);
  LatentHandle load_latent(const std::string& path);

  // Trains a LoRA adapter on the denoiser (untagged), calibrates its output level (see
  // FineTuneRequest::calibration_clips), writes it to output_path, leaves it loaded under
  // its name (not active) and returns the path.
  // Throws Cancelled when cancel is set (after checkpointing), ModelError or
  // audio::AudioError on bad input.
  std::string fine_tune(const FineTuneRequest& request, const ProgressFn& progress,
                        const std::atomic<bool>& cancel);

  // Loads an adapter file (made for this base model) and returns its name; not activated.
  // Throws ModelError naming the file.
  std::string load_adapter(const std::string& path);
  // "" = no adapter. Throws ModelError if the name is not loaded.
  void set_adapter(const std::string& name);
  std::string adapter() const;
  std::vector<std::string> adapters() const;
  // The output gain in dB that generation with adapter `name` applies (its level
  // calibration; 0 for none, for an adapter file without one, or for an unknown name).
  double adapter_gain_db(const std::string& name) const;
  // The factor generation with adapter `name` applies to GenerateParams::adapter_strength
  // (its strength calibration; 1 for none, for a file without one, or an unknown name).
  double adapter_strength_scale(const std::string& name) const;

  std::string base_hash() const;
  int sample_rate() const;
  std::vector<std::string> tag_vocabulary() const;
  std::string device() const;
  // The way back to audio that vocoder = "auto" takes: "neural" or "griffin-lim".
  std::string vocoder() const;

 private:
  Engine();
  struct Impl;
  struct Denoised;  // a sampled latent and what generate() needs to finish it
  struct Planned;   // a checked request: what to sample and the shape of its audio
  Planned plan(const GenerateParams& params);
  // Runs run(the applied adapter's name, "" = none) with params' adapter merged into the
  // weights at its strength; restores the weights and the active adapter after.
  void with_adapter(const GenerateParams& params, const std::function<void(const std::string&)>& run);
  // Samples a planned request's latent; `active` names the adapter with_adapter applied.
  Denoised sampled(const Planned& planned, const std::string& active);
  Denoised denoise(const GenerateParams& params, int stop_after);
  // A sampled latent to audio: decode, vocoder, the adapter's gain, fade-in, true-peak limit.
  audio::Audio finish(const Denoised& denoised, bool timed);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tuneloop::model

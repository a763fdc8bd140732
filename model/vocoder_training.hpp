#pragma once
// The neural vocoder's hyper-parameters, its trainer, the audio round trip (`reconstruct`)
// and the held-out evaluation against Griffin-Lim. No LibTorch types here, so the
// command-line code stays light; the network itself is in model/vocoder.hpp.
#include <string>
#include <vector>

#include "audio/audio.hpp"
#include "model/hparams.hpp"
#include "model/training.hpp"

namespace tuneloop::model {

constexpr const char* kVocoderFile = "vocoder.safetensors";
constexpr int kMaxRefine = 256;  // VocoderConfig::refine's bound

// log-mel [mels, T] → ConvNeXt stack at frame rate → log-magnitude and phase of the
// n_fft/2+1 STFT bins → inverse STFT with the front end's window and hop.
struct VocoderConfig {
  FrontEndConfig frontend;  // the features it reads; must match the autoencoder's
  int dim = 128;            // channels of the ConvNeXt stack
  int intermediate = 384;   // hidden width of each block's pointwise MLP
  int layers = 8;           // ConvNeXt blocks
  int kernel = 7;           // depthwise conv width (frames)
  // How the phase of each bin is made (docs/vocoder.md, "Phase"):
  //   "direct"     predicted per frame (Vocos); files from before this key read as direct
  //   "integrated" the bin's own clock (2π·k·hop/n_fft a frame) plus the running sum of a
  //                predicted per-frame deviation, plus a predicted offset
  //   "locked"     as integrated, but each bin takes its running phase from itself or one of
  //                its 2 neighbours on each side (a predicted soft choice): phase locking
  //   "hybrid"     as locked, with a sixth choice: no running phase (the offset alone)
  std::string phase = "hybrid";
  // Width of the head's second, non-linear branch (Linear dim→head_hidden → GELU → Linear to
  // the same outputs, added to the linear head; 0: none, as in files from before this key).
  // A linear head gives each frame's log-magnitudes only `dim` degrees of freedom for 513
  // bins; the branch lifts that limit (docs/vocoder.md, "Head").
  int head_hidden = 512;
  // Rounds of fitting the output to the input mel after synthesis (MelFrontEnd::fit_to_mel:
  // each bin scaled to its bands' energies, then made consistent; docs/vocoder.md, "Fitting
  // the mel"). Not trained through; 0: none, as in files from before this key.
  int refine = 8;
  bool operator==(const VocoderConfig&) const = default;
};

std::string to_json(const VocoderConfig& c);
// Throws ModelError naming `where` and the missing or out-of-range key.
VocoderConfig vocoder_config_from_json(const std::string& json, const std::string& where);
// A tiny configuration for tests (16 mels, dim 16, 2 blocks): trains in seconds.
VocoderConfig fixture_vocoder_config();

struct VocoderTrainOptions : TrainerOptions {
  VocoderTrainOptions() {
    steps = 10000;
    batch = 8;
    lr = 5e-4;
    checkpoint_every = 250;
  }
  VocoderConfig config;           // the front end is taken from the autoencoder when given
  std::string autoencoder;        // "" = train on true features only
  double autoencoder_mix = 0.5;   // share of examples whose mel went through the autoencoder
  int crop_samples = 16384;       // samples per example (≈ 1 s), a multiple of the hop
  int held_out = 100;             // the index's last N clips are never trained on
  double mel_weight = 1.0;        // weight of the log-mel L1 next to the multi-resolution loss
  double sc_weight = 1.0;         // weight of spectral convergence inside it (log-magnitude L1: 1)
  // Weight of the phase-derivative loss (instantaneous frequency and group delay against the
  // target's, at the front end's STFT; phase_derivative_loss in vocoder.hpp). 0: not computed.
  double phase_weight = 0.0;
  // Weight of the log-magnitude L1 between the spectrum the vocoder predicts (before its
  // inverse STFT) and the target's STFT, frame by frame. The other losses see the spectrum
  // only after overlap-add, which lets excess energy that cancels between frames through.
  // 0: not computed.
  double spectrum_weight = 0.0;
  // A vocoder file to start a fresh run from: its front end, sizes and every tensor that
  // fits are kept (the head's extra phase outputs of `config.phase` start at zero); the
  // optimizer starts afresh. Ignored when a checkpoint is resumed.
  std::string init;
  // With init: the trunk (dim and intermediate) `widen` times as wide as the file's, every
  // channel copied `widen` times and each copy's share of what reads it split at random, so
  // the wider vocoder starts as exactly the file's function and its copies can drift apart.
  int widen = 1;
  // With init: the mel bands to read when they differ from the file's (0: the file's, or the
  // autoencoder's when one is given). The file's input layer is carried over through a map
  // from these bands to its own, fitted on the corpus (fit_band_map in vocoder.hpp).
  int init_mels = 0;
  // A run's first `warmup` steps ramp the learning rate up linearly from lr/warmup to lr
  // (0: none; a run resumed before the end of its warm-up carries on with it). A fresh AdamW
  // moves every weight by about lr on its first steps, which knocks a trained vocoder given
  // to --init back before it recovers.
  int warmup = 0;
};

// Writes out/vocoder.safetensors, out/vocoder.ckpt.safetensors (model + AdamW + step) and
// out/losses.csv. Throws ModelError (bad corpus, options or checkpoint) or audio::AudioError.
TrainResult train_vocoder(const VocoderTrainOptions& options);

// How reconstruct() and the evaluation turn features back into audio.
struct ReconstructOptions {
  std::string weights_dir;        // "" = the shipped model/weights
  std::string autoencoder;        // "" = weights_dir/autoencoder.safetensors
  std::string vocoder;            // "" = weights_dir/vocoder.safetensors
  bool through_autoencoder = true;
  bool griffin_lim = false;       // use Griffin-Lim instead of the neural vocoder
  int griffin_lim_iterations = 32;
  int refine = -1;                // rounds of fitting the neural output to the mel; -1: the file's
  int threads = 2;
};

// audio → log-mel → (autoencoder) → vocoder → audio at the front end's rate, same duration.
// Throws ModelError naming a missing or bad weight file, audio::AudioError on bad audio.
audio::Audio reconstruct(const audio::Audio& input, const ReconstructOptions& options);

// Mean figures over held-out clips for one way back to audio.
struct VocoderScores {
  double spectral_convergence = 0;  // ‖|S|−|Ŝ|‖F / ‖|S|‖F at the front end's STFT
  double log_spectral_distance = 0; // dB, RMS over bins then mean over frames
  double onset_rate_in = 0, onset_rate_out = 0;   // onsets per second (audio::measure)
  double onset_rate_error = 0;      // mean |out − in| / in
  double flatness_in = 0, flatness_out = 0;
  double flatness_error = 0;        // mean |out − in|
  double seconds_per_audio_second = 0;  // synthesis time only (after the features)
};

struct VocoderEvaluation {
  int clips = 0;
  bool through_autoencoder = true;  // false: the *_autoencoder scores are not computed (zero)
  VocoderScores neural_true, neural_autoencoder, griffin_lim_true, griffin_lim_autoencoder;
};

// Scores the neural vocoder and Griffin-Lim on the last `clips` clips of the corpus index,
// from true features and (unless options.through_autoencoder is false, when no autoencoder
// is loaded and the vocoder's front end is used) through the autoencoder.
// Throws ModelError or audio::AudioError naming the file.
VocoderEvaluation evaluate_vocoder(const std::string& corpus, int clips,
                                   const ReconstructOptions& options);

}  // namespace tuneloop::model

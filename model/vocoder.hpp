#pragma once
// The neural vocoder (Vocos-style): log-mel frames → STFT magnitude and phase → inverse STFT.
// It runs at the frame rate (one vector per hop of 256 samples), which keeps it fast on a CPU.
#include <torch/torch.h>

#include "model/frontend.hpp"
#include "model/vocoder_training.hpp"

namespace tuneloop::model {

// Depthwise conv over time → LayerNorm → Linear ×(intermediate/dim) → GELU → Linear,
// scaled by a learned per-channel factor and added back. Input and output [B, dim, T].
struct ConvNeXtBlockImpl : torch::nn::Module {
  ConvNeXtBlockImpl(int dim, int intermediate, int kernel, double layer_scale);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv1d depthwise{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear up{nullptr}, down{nullptr};
  torch::Tensor gamma;
};
TORCH_MODULE(ConvNeXtBlock);

struct VocoderImpl : torch::nn::Module {
  explicit VocoderImpl(VocoderConfig config);

  // Complex STFT [B, F, T] predicted from a natural-log mel [B, mels, T].
  torch::Tensor spectrum(const torch::Tensor& log_mel);
  // Waveform [B, length] ([length] for a [mels, T] input). The mel is cropped or its last
  // frame repeated to the frames `length` samples have, so any length ≥ 1 comes out exactly.
  // Throws ModelError if length < 1 or the mel has the wrong number of bins.
  torch::Tensor forward(const torch::Tensor& log_mel, int64_t length);
  // What is played: forward's waveform fitted to the mel config.refine times
  // (MelFrontEnd::fit_to_mel; no gradient). The engine, reconstruct and the evaluation use it.
  torch::Tensor render(const torch::Tensor& log_mel, int64_t length);

  VocoderConfig config;
  MelFrontEnd frontend;
  torch::nn::Conv1d embed{nullptr};
  torch::nn::LayerNorm embed_norm{nullptr}, out_norm{nullptr};
  torch::nn::ModuleList blocks;
  torch::nn::Linear head{nullptr};
  torch::nn::Linear head_up{nullptr}, head_wide{nullptr};  // only with config.head_hidden > 0
};
TORCH_MODULE(Vocoder);

// Throws ModelError naming `where` unless `phase` is direct, integrated or locked.
void check_phase(const std::string& phase, const std::string& where);

// A linear map between the normalised log-mels of two front ends that differ only in their
// band count: src ≈ weight · dst + bias, fitted by least squares on the frames of real audio.
// With it a vocoder reading more bands starts as one trained on fewer (init_vocoder_from).
struct BandMap {
  torch::Tensor weight;  // [src mels, dst mels]
  torch::Tensor bias;    // [src mels]
  double residual = 0;   // RMS error of the fit over those frames, normalised units
};
// Throws ModelError naming `where` if the front ends differ in more than their bands or the
// waveforms [N] give fewer frames than dst has bands.
BandMap fit_band_map(const FrontEndConfig& src, const FrontEndConfig& dst,
                     const std::vector<torch::Tensor>& waves, const std::string& where);

// Copies `src`'s tensors into `dst` (same front end and sizes; `dst`'s phase may add head
// outputs, and `dst` may add the head's wide branch to a file without one: those keep their
// initial values, the wide branch's output layer zero, so `dst` starts as `src`'s function).
// `dst`'s trunk may be a whole multiple F of `src`'s (dim and intermediate both × F): each
// channel is then copied F times and every weight that reads the channels is split among the
// copies in random shares that add up to 1 (Net2Net, Chen et al. 2016), so `dst` computes
// what `src` does (layer norms see the same mean and variance) but its copies get different
// gradients. `dst` may read other mel bands than `src` given `bands` (fit_band_map from
// `src`'s front end to `dst`'s): its input layer then reads `src`'s through the map, so it
// starts as `src` fed the mapped bands. Throws ModelError naming `where` otherwise.
void init_vocoder_from(Vocoder& dst, const Vocoder& src, const std::string& where,
                       const BandMap* bands = nullptr);

// The mel [.., mels, T] cropped, or its last frame repeated, to `frames` frames.
torch::Tensor fit_frames(const torch::Tensor& mel, int64_t frames);

// Throws ModelError if the file can't be written.
void save_vocoder(const Vocoder& vocoder, const std::string& path);
// Throws ModelError naming the file if it is missing, truncated, not a vocoder file, its
// configuration is out of range or its tensors do not fit the configuration.
Vocoder load_vocoder(const std::string& path);

// The multi-resolution STFT loss (sc_weight × spectral convergence + log-magnitude L1 at
// n_fft 512, 1024, 2048, averaged) between waveforms [B, N].
torch::Tensor multi_resolution_stft_loss(const torch::Tensor& output, const torch::Tensor& target,
                                         double sc_weight = 1.0);

// The same loss as sums, one entry per resolution, so that slices of a batch can be scored
// apart and combined: spectral convergence is √(Σ error²) / √(Σ target²) over the batch.
struct StftLossSums {
  std::vector<torch::Tensor> error_squares;  // Σ (|S| − |Ŝ|)² (with gradient)
  std::vector<double> target_squares;        // Σ |S|²
  std::vector<torch::Tensor> log_errors;     // Σ |log|S| − log|Ŝ||  (with gradient)
  std::vector<int64_t> counts;               // bins × frames × examples
};
StftLossSums multi_resolution_stft_sums(const torch::Tensor& output, const torch::Tensor& target);

// The phase-derivative loss at n_fft (hop n_fft/4, Hann) between waveforms [B, N], as sums.
// For every pair of neighbouring STFT bins, along time (the phase's step there is the
// instantaneous frequency) and along frequency (the group delay), it compares the step of
// the output's phase with the target's: error = Σ w · (1 − cos(step_out − step_target)) over
// both directions, with w the product of the target's two magnitudes, and weight = Σ w. The
// loss error / weight is 0 for a phase whose every step is right (whatever the gain or one
// constant offset) and about 0.55 for noise against tones (the window's overlap makes any
// two signals' steps partly alike). The multi-resolution loss sees the phase only through
// the magnitudes it leaves behind; this looks at it directly.
struct PhaseLossSums {
  torch::Tensor error;  // with gradient
  double weight = 0;
};
PhaseLossSums phase_derivative_sums(const torch::Tensor& output, const torch::Tensor& target,
                                    int64_t n_fft);
torch::Tensor phase_derivative_loss(const torch::Tensor& output, const torch::Tensor& target,
                                    int64_t n_fft);

// Spectral convergence and log-spectral distance (dB) of `output` against `target` ([N]).
std::pair<double, double> spectral_distances(const MelFrontEnd& frontend, const torch::Tensor& output,
                                             const torch::Tensor& target);

}  // namespace tuneloop::model

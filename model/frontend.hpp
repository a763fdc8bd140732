#pragma once
// Audio front end: waveform ↔ log-mel spectrogram, in LibTorch.
#include <torch/torch.h>

#include "model/hparams.hpp"

namespace tuneloop::model {

class MelFrontEnd {
 public:
  explicit MelFrontEnd(FrontEndConfig config);

  const FrontEndConfig& config() const noexcept { return config_; }
  int64_t bins() const noexcept { return config_.n_fft / 2 + 1; }
  // STFT frames for a waveform of `samples` samples (centred frames).
  int64_t frames(int64_t samples) const noexcept { return samples / config_.hop + 1; }

  // Complex STFT of wave [N] or [B, N] → [F, T] or [B, F, T]; centred, reflect-padded, Hann.
  torch::Tensor stft(const torch::Tensor& wave) const;
  // Inverse of stft; `length` samples come out.
  torch::Tensor istft(const torch::Tensor& spectrum, int64_t length) const;

  // Natural-log mel magnitude [.., mels, T] of a waveform [N] or [B, N].
  torch::Tensor log_mel(const torch::Tensor& wave) const;
  // Autoencoder input scaling of a log-mel and its inverse.
  torch::Tensor normalise(const torch::Tensor& log_mel) const;
  torch::Tensor denormalise(const torch::Tensor& normalised) const;

  // Linear magnitude [.., F, T] from a log-mel by the filterbank's pseudo-inverse, clamped ≥ 0.
  torch::Tensor mel_to_magnitude(const torch::Tensor& log_mel) const;
  // Waveform from a linear magnitude by fast Griffin-Lim (momentum); deterministic.
  torch::Tensor griffin_lim(const torch::Tensor& magnitude, int64_t length, int iterations = 32,
                            double momentum = 0.99) const;
  // Brings a waveform [N] or [B, N] to a log-mel [.., mels, T] (T = frames(N)) and returns
  // it: each of `iterations` rounds scales every STFT bin by the mean, over the bands that
  // cover it, of target / current band energy, then takes the STFT of the result's inverse
  // (a spectrum some waveform has), extrapolated by `momentum` as fast Griffin-Lim does. The
  // detail within a band (partials, phases) stays the waveform's; the bands' energies become
  // the mel's. No gradient. A waveform too short for the STFT's padding (≤ n_fft/2 samples)
  // comes back as it is.
  torch::Tensor fit_to_mel(const torch::Tensor& wave, const torch::Tensor& log_mel, int iterations,
                           double momentum = 0.9) const;
  // log-mel → waveform of `length` samples.
  torch::Tensor to_waveform(const torch::Tensor& log_mel, int64_t length,
                            int iterations = 32) const;

  const torch::Tensor& filterbank() const noexcept { return mel_fb_; }

 private:
  FrontEndConfig config_;
  torch::Tensor window_;
  torch::Tensor mel_fb_;       // [mels, F]
  torch::Tensor mel_pinv_;     // [F, mels]
};

// Triangular mel filterbank [mels, n_fft/2+1] on the HTK mel scale, unnormalised.
torch::Tensor mel_filterbank(int sample_rate, int n_fft, int mels, double fmin, double fmax);

}  // namespace tuneloop::model

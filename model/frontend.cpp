#include "model/frontend.hpp"

#include <cmath>

namespace tuneloop::model {
namespace {
double hz_to_mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double mel_to_hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }
}  // namespace

torch::Tensor mel_filterbank(int sample_rate, int n_fft, int mels, double fmin, double fmax) {
  const int64_t bins = n_fft / 2 + 1;
  auto fb = torch::zeros({mels, bins}, torch::kFloat32);
  auto acc = fb.accessor<float, 2>();
  const double mlo = hz_to_mel(fmin), mhi = hz_to_mel(fmax);
  std::vector<double> edges(mels + 2);
  for (int i = 0; i < mels + 2; ++i) edges[i] = mel_to_hz(mlo + (mhi - mlo) * i / (mels + 1));
  for (int m = 0; m < mels; ++m) {
    const double lo = edges[m], mid = edges[m + 1], hi = edges[m + 2];
    for (int64_t k = 0; k < bins; ++k) {
      const double f = static_cast<double>(k) * sample_rate / n_fft;
      double w = 0.0;
      if (f > lo && f <= mid) w = (f - lo) / (mid - lo);
      else if (f > mid && f < hi) w = (hi - f) / (hi - mid);
      acc[m][k] = static_cast<float>(w);
    }
  }
  return fb;
}

MelFrontEnd::MelFrontEnd(FrontEndConfig config) : config_(config) {
  window_ = torch::hann_window(config_.n_fft, torch::TensorOptions().dtype(torch::kFloat32));
  mel_fb_ = mel_filterbank(config_.sample_rate, config_.n_fft, config_.mels, config_.fmin,
                           config_.fmax);
  mel_pinv_ = torch::linalg_pinv(mel_fb_);
}

torch::Tensor MelFrontEnd::stft(const torch::Tensor& wave) const {
  // Every argument is spelled out: a positional boolean would pick an older overload
  // with center=false.
  return torch::stft(wave, config_.n_fft, /*hop_length=*/config_.hop,
                     /*win_length=*/config_.n_fft, /*window=*/window_.to(wave.device()),
                     /*center=*/true, /*pad_mode=*/"reflect", /*normalized=*/false,
                     /*onesided=*/true, /*return_complex=*/true);
}

torch::Tensor MelFrontEnd::istft(const torch::Tensor& spectrum, int64_t length) const {
  return torch::istft(spectrum, config_.n_fft, /*hop_length=*/config_.hop,
                      /*win_length=*/config_.n_fft, /*window=*/window_.to(spectrum.device()),
                      /*center=*/true, /*normalized=*/false, /*onesided=*/true,
                      /*length=*/length, /*return_complex=*/false);
}

torch::Tensor MelFrontEnd::log_mel(const torch::Tensor& wave) const {
  auto mag = stft(wave).abs();
  auto mel = torch::matmul(mel_fb_.to(mag.device()), mag);
  return torch::log(torch::clamp_min(mel, 1e-5));
}

torch::Tensor MelFrontEnd::normalise(const torch::Tensor& log_mel) const {
  return (log_mel - config_.mel_offset) / config_.mel_scale;
}

torch::Tensor MelFrontEnd::denormalise(const torch::Tensor& normalised) const {
  return normalised * config_.mel_scale + config_.mel_offset;
}

torch::Tensor MelFrontEnd::mel_to_magnitude(const torch::Tensor& log_mel) const {
  auto mel = torch::exp(log_mel);
  return torch::clamp_min(torch::matmul(mel_pinv_.to(mel.device()), mel), 0.0);
}

torch::Tensor MelFrontEnd::griffin_lim(const torch::Tensor& magnitude, int64_t length,
                                       int iterations, double momentum) const {
  // Fast Griffin-Lim (Perraudin et al. 2013). A fixed-seed random start keeps the result
  // deterministic while avoiding the zero-phase start's buzz.
  auto gen = at::detail::createCPUGenerator(20240611);
  auto phase = torch::rand(magnitude.sizes(), gen, torch::kFloat32) * (2.0 * M_PI);
  auto angles = torch::polar(torch::ones_like(phase), phase).to(magnitude.device());
  auto previous = torch::zeros_like(angles);
  const double m = momentum / (1.0 + momentum);
  torch::Tensor wave;
  for (int i = 0; i < iterations; ++i) {
    wave = istft(magnitude * angles, length);
    auto rebuilt = stft(wave);
    angles = rebuilt - previous * m;
    previous = rebuilt;
    angles = angles / (angles.abs() + 1e-16);
  }
  return istft(magnitude * angles, length);
}

torch::Tensor MelFrontEnd::fit_to_mel(const torch::Tensor& wave, const torch::Tensor& log_mel,
                                       int iterations, double momentum) const {
  const int64_t length = wave.size(-1);
  if (iterations <= 0 || length <= config_.n_fft / 2) return wave;
  torch::NoGradGuard ng;
  const auto fb = mel_fb_.to(wave.device());  // [mels, F]
  const auto cover = fb.sum(0).unsqueeze(-1);   // [F, 1]; 0 for DC and Nyquist
  const auto covered = cover > 0;
  const auto target = torch::exp(log_mel);
  auto spectrum = stft(wave), previous = torch::Tensor();
  torch::Tensor out = wave;
  for (int i = 0; i < iterations; ++i) {
    const auto ratio = target / torch::clamp_min(torch::matmul(fb, spectrum.abs()), 1e-5);
    const auto gain =
        torch::where(covered, torch::matmul(fb.t(), ratio) / torch::clamp_min(cover, 1e-9), 1.0);
    out = istft(spectrum * gain, length);
    if (i + 1 == iterations) break;  // the last round's spectrum would go unused
    const auto rebuilt = stft(out);
    spectrum = previous.defined() ? rebuilt + momentum * (rebuilt - previous) : rebuilt;
    previous = rebuilt;
  }
  return out;
}

torch::Tensor MelFrontEnd::to_waveform(const torch::Tensor& log_mel, int64_t length,
                                       int iterations) const {
  return griffin_lim(mel_to_magnitude(log_mel), length, iterations);
}

}  // namespace tuneloop::model

#include "audio/fft.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace tuneloop::audio {

Fft::Fft(std::size_t size) : size_(size) {
  if (size < 2 || (size & (size - 1)) != 0) {
    throw std::invalid_argument("FFT size must be a power of two >= 2, got " +
                                std::to_string(size));
  }
  twiddles_.resize(size / 2);
  for (std::size_t k = 0; k < size / 2; ++k) {
    const double angle =
        -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(size);
    twiddles_[k] = {std::cos(angle), std::sin(angle)};
  }
  bit_reverse_.resize(size);
  std::size_t bits = 0;
  while ((std::size_t{1} << bits) < size) ++bits;
  for (std::size_t i = 0; i < size; ++i) {
    std::size_t r = 0;
    for (std::size_t b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
    bit_reverse_[i] = r;
  }
}

void Fft::forward(std::vector<std::complex<double>>& data) const {
  if (data.size() != size_) throw std::invalid_argument("FFT input has the wrong size");
  for (std::size_t i = 0; i < size_; ++i) {
    if (i < bit_reverse_[i]) std::swap(data[i], data[bit_reverse_[i]]);
  }
  for (std::size_t len = 2; len <= size_; len <<= 1) {
    const std::size_t half = len / 2;
    const std::size_t step = size_ / len;
    for (std::size_t start = 0; start < size_; start += len) {
      for (std::size_t k = 0; k < half; ++k) {
        const std::complex<double> t = twiddles_[k * step] * data[start + k + half];
        data[start + k + half] = data[start + k] - t;
        data[start + k] += t;
      }
    }
  }
}

std::vector<std::vector<double>> magnitude_frames(const std::vector<float>& samples,
                                                  std::size_t size, std::size_t hop) {
  const Fft fft(size);
  std::vector<double> window(size);
  double window_sum = 0.0;
  for (std::size_t i = 0; i < size; ++i) {
    window[i] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) /
                                     static_cast<double>(size));
    window_sum += window[i];
  }
  const double scale = 2.0 / window_sum;
  std::size_t frames = 1;
  if (samples.size() > size) frames += (samples.size() - size) / hop;
  std::vector<std::vector<double>> out(frames, std::vector<double>(size / 2 + 1));
  std::vector<std::complex<double>> buf(size);
  for (std::size_t f = 0; f < frames; ++f) {
    const std::size_t start = f * hop;
    for (std::size_t i = 0; i < size; ++i) {
      const double x = start + i < samples.size() ? samples[start + i] : 0.0;
      buf[i] = {x * window[i], 0.0};
    }
    fft.forward(buf);
    for (std::size_t k = 0; k <= size / 2; ++k) out[f][k] = std::abs(buf[k]) * scale;
  }
  return out;
}

}  // namespace tuneloop::audio

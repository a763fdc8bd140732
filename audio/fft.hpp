#pragma once
#include <complex>
#include <cstddef>
#include <vector>

namespace tuneloop::audio {

// In-place iterative radix-2 FFT of a fixed power-of-two size; twiddles are computed once.
class Fft {
 public:
  // Throws std::invalid_argument when size is not a power of two ≥ 2.
  explicit Fft(std::size_t size);
  std::size_t size() const noexcept { return size_; }
  void forward(std::vector<std::complex<double>>& data) const;

 private:
  std::size_t size_;
  std::vector<std::complex<double>> twiddles_;
  std::vector<std::size_t> bit_reverse_;
};

// Magnitude spectra (size/2 + 1 bins) of Hann-windowed frames, scaled so that a full-scale
// sine centred on a bin reads 1.0. Frames start at 0 and step by hop; a signal shorter than
// one frame is zero-padded to one frame.
std::vector<std::vector<double>> magnitude_frames(const std::vector<float>& samples,
                                                  std::size_t size, std::size_t hop);

}  // namespace tuneloop::audio

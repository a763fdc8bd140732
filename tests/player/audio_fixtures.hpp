#pragma once

// Test helpers: real audio files written with libsndfile (temp folders: tests/support/temp_dir.hpp).

#include <sndfile.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace tuneloop::testing {

// Writes a sine of `seconds` at `rate` Hz, the same tone in every channel.
inline void write_sine(const std::string& path, double seconds, int rate, int format,
                       int channels = 1, double frequency = 440.0) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error("cannot write " + path + ": " + sf_strerror(nullptr));
  const auto frames = static_cast<std::size_t>(std::lround(seconds * rate));
  std::vector<float> data(frames * channels);
  for (std::size_t i = 0; i < frames; ++i) {
    const float v = 0.5f * static_cast<float>(std::sin(2 * M_PI * frequency * i / rate));
    for (int c = 0; c < channels; ++c) data[i * channels + c] = v;
  }
  sf_writef_float(f, data.data(), static_cast<sf_count_t>(frames));
  sf_close(f);
}

constexpr int kWav = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
constexpr int kFlac = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
constexpr int kOgg = SF_FORMAT_OGG | SF_FORMAT_VORBIS;

}  // namespace tuneloop::testing

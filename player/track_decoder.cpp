#include "player/track_decoder.hpp"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cstring>

#include "player/player.hpp"

namespace tuneloop::player {

namespace {
constexpr std::size_t kChunkFrames = 2048;
}

TrackDecoder::TrackDecoder(const std::string& path, int output_rate)
    : path_(path), output_rate_(output_rate) {
  SF_INFO info{};
  file_ = sf_open(path.c_str(), SFM_READ, &info);
  if (!file_) throw DecodeError("cannot decode " + path + ": " + sf_strerror(nullptr));
  if (info.channels <= 0 || info.samplerate <= 0 || info.frames <= 0) {
    sf_close(file_);
    throw DecodeError("cannot decode " + path + ": no audio frames");
  }
  file_rate_ = info.samplerate;
  channels_ = info.channels;
  frames_ = info.frames;
  interleaved_.resize(kChunkFrames * static_cast<std::size_t>(channels_));
  mono_.resize(kChunkFrames);
  if (file_rate_ != output_rate_) {
    soxr_error_t error = nullptr;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    resampler_ = soxr_create(file_rate_, output_rate_, 1, &error, &io, &quality, nullptr);
    if (error) {
      sf_close(file_);
      throw DecodeError("cannot resample " + path + " from " + std::to_string(file_rate_) +
                        " Hz: " + error);
    }
  }
}

TrackDecoder::~TrackDecoder() {
  if (resampler_) soxr_delete(resampler_);
  if (file_) sf_close(file_);
}

double TrackDecoder::duration() const noexcept {
  return static_cast<double>(frames_) / file_rate_;
}

std::size_t TrackDecoder::fill_input() {
  const sf_count_t got = sf_readf_float(file_, interleaved_.data(), kChunkFrames);
  const std::size_t n = got > 0 ? static_cast<std::size_t>(got) : 0;
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0;
    for (int c = 0; c < channels_; ++c) sum += interleaved_[i * channels_ + c];
    mono_[i] = sum / static_cast<float>(channels_);
  }
  input_pos_ = 0;
  input_len_ = n;
  if (n == 0) input_ended_ = true;
  return n;
}

std::size_t TrackDecoder::read(float* out, std::size_t max_frames) {
  std::size_t produced = 0;
  while (produced < max_frames && !finished_) {
    if (input_pos_ == input_len_ && !input_ended_) fill_input();
    const std::size_t pending = input_len_ - input_pos_;
    if (!resampler_) {
      if (pending == 0) {
        finished_ = input_ended_;
        continue;
      }
      const std::size_t n = std::min(pending, max_frames - produced);
      std::memcpy(out + produced, mono_.data() + input_pos_, n * sizeof(float));
      input_pos_ += n;
      produced += n;
      continue;
    }
    std::size_t consumed = 0;
    std::size_t written = 0;
    // A null input tells soxr the signal has ended, so it flushes what it holds.
    const float* in = pending > 0 ? mono_.data() + input_pos_ : nullptr;
    soxr_error_t error = soxr_process(resampler_, in, pending, &consumed, out + produced,
                                      max_frames - produced, &written);
    if (error) throw DecodeError("cannot resample " + path_ + ": " + error);
    input_pos_ += consumed;
    produced += written;
    if (in == nullptr && written == 0) finished_ = true;
  }
  return produced;
}

void TrackDecoder::seek(double seconds) {
  const double clamped = std::clamp(seconds, 0.0, duration());
  const auto frame = std::min<sf_count_t>(static_cast<sf_count_t>(clamped * file_rate_), frames_);
  if (sf_seek(file_, frame, SEEK_SET) < 0) {
    throw DecodeError("cannot seek in " + path_ + ": " + sf_strerror(file_));
  }
  if (resampler_) soxr_clear(resampler_);
  input_pos_ = input_len_ = 0;
  input_ended_ = false;
  finished_ = false;
}

}  // namespace tuneloop::player

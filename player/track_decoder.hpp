#pragma once

// Reads a track with libsndfile (any format it knows: WAV, FLAC, OGG, MP3...), mixes it
// down to mono and resamples it to the output rate with libsoxr.

#include <cstddef>
#include <string>
#include <vector>

struct sf_private_tag;
struct soxr;

namespace tuneloop::player {

class TrackDecoder {
 public:
  // Throws DecodeError (naming `path` and libsndfile's reason) if the file cannot be
  // opened as audio or holds no frames. Throws DecodeError if the resampler fails.
  TrackDecoder(const std::string& path, int output_rate);
  ~TrackDecoder();
  TrackDecoder(const TrackDecoder&) = delete;
  TrackDecoder& operator=(const TrackDecoder&) = delete;

  const std::string& path() const noexcept { return path_; }
  int file_rate() const noexcept { return file_rate_; }
  int channels() const noexcept { return channels_; }
  int output_rate() const noexcept { return output_rate_; }
  double duration() const noexcept;  // seconds

  // Fills `out` with up to `max_frames` mono frames at the output rate. Returns 0 only
  // at the end of the track (after the resampler has been flushed).
  std::size_t read(float* out, std::size_t max_frames);
  bool finished() const noexcept { return finished_; }

  // Repositions to `seconds` (clamped to the track). Throws DecodeError if the file
  // cannot seek.
  void seek(double seconds);

 private:
  std::size_t fill_input();

  std::string path_;
  sf_private_tag* file_ = nullptr;
  soxr* resampler_ = nullptr;  // null when the rates already match
  int file_rate_ = 0;
  int channels_ = 0;
  long long frames_ = 0;
  int output_rate_ = 0;
  std::vector<float> interleaved_;
  std::vector<float> mono_;
  std::size_t input_pos_ = 0;
  std::size_t input_len_ = 0;
  bool input_ended_ = false;
  bool finished_ = false;
};

}  // namespace tuneloop::player

#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tuneloop::audio {

// A failure to read, write or convert audio; the message names the file and the cause.
class AudioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Mono audio in floats, nominally in [-1, 1].
struct Audio {
  int sample_rate = 16000;
  std::vector<float> samples;  // mono
  double seconds() const noexcept {
    return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0;
  }
};

// File formats write_audio can produce. by_extension picks from the path's suffix.
enum class Format { by_extension, wav, flac, ogg };

// Reads any file libsndfile understands, mixes it down to mono and, when target_rate > 0
// and differs from the file's rate, resamples it with libsoxr.
// Throws AudioError naming the path and libsndfile's message for missing, corrupt or
// non-audio files.
Audio read_audio(const std::string& path, int target_rate = 0);

// Writes 16-bit WAV, 16-bit FLAC or Ogg Vorbis (samples outside [-1, 1] are clipped),
// durably: to PATH.part, flushed, renamed into place, the folder flushed.
// Throws AudioError naming the path when the format is unknown or the file can't be written.
void write_audio(const std::string& path, const Audio& audio, Format format = Format::by_extension);

// Copies a regular file durably (to TO.part, flushed, renamed, the folder flushed), so a
// database row that names `to` never points at a partial file. Throws AudioError.
void durable_copy(const std::string& from, const std::string& to);

// Flushes the folder entry of `path` (after a rename into it) to disk; best effort.
void sync_parent_folder(const std::string& path);

// Band-limited resampling with libsoxr (high quality); the duration is kept to the sample.
// Throws AudioError when a rate is not positive or libsoxr fails.
Audio resample(const Audio& audio, int rate);

// RMS level in dBFS (-inf for silence is returned as -120).
double rms_dbfs(const std::vector<float>& samples) noexcept;

// Scales the audio so that its RMS level is target_dbfs_rms, but never lets the peak pass
// -0.1 dBFS: a peaky signal ends up quieter than the target rather than clipped.
// Silent audio is left as it is.
void normalise_loudness(Audio& audio, double target_dbfs_rms = -20.0) noexcept;

// Leaves audio whose RMS level lies in [low_dbfs, high_dbfs] as it is and brings any other
// to the nearer bound (with normalise_loudness's peak limit). Keeps the dynamics a model was
// trained on while taming imports mastered far louder or quieter.
void clamp_loudness(Audio& audio, double low_dbfs, double high_dbfs) noexcept;

// SHA-256 of a file's bytes as 64 lower-case hex digits.
// Throws AudioError naming the path when it can't be read.
std::string sha256_file(const std::string& path);

// SHA-256 of a byte string as 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace tuneloop::audio

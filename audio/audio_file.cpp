#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "audio/audio.hpp"

namespace tuneloop::audio {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const noexcept { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

std::string lower_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return {};
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

// Opens `path` for reading only if it is a regular file: a FIFO or device would block the
// caller (the daemon's io thread) in open() or read() forever. Non-blocking open, then
// checked on the open descriptor, so the file cannot be swapped in between.
static int open_regular_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw AudioError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw AudioError("'" + path + "' is not a regular file");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

void sync_parent_folder(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void durable_copy(const std::string& from, const std::string& to) {
  const int in = open_regular_file(from);
  const std::string part = to + ".part";
  const int out = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (out < 0) {
    const std::string why = std::strerror(errno);
    ::close(in);
    throw AudioError("cannot write '" + part + "': " + why);
  }
  std::vector<char> buf(1 << 16);
  bool ok = true;
  for (;;) {
    const ssize_t got = ::read(in, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ok = got == 0;
      break;
    }
    for (ssize_t done = 0; ok && done < got;) {
      const ssize_t n = ::write(out, buf.data() + done, static_cast<std::size_t>(got - done));
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      done += n > 0 ? n : 0;
    }
    if (!ok) break;
  }
  const std::string why = ok ? "" : std::strerror(errno);
  ok = ok && ::fsync(out) == 0;
  ::close(in);
  ::close(out);
  if (!ok || ::rename(part.c_str(), to.c_str()) != 0) {
    const std::string reason = why.empty() ? std::strerror(errno) : why;
    ::unlink(part.c_str());
    throw AudioError("cannot copy '" + from + "' to '" + to + "': " + reason);
  }
  sync_parent_folder(to);
}

Audio read_audio(const std::string& path, int target_rate) {
  SF_INFO info{};
  SndfilePtr file(sf_open_fd(open_regular_file(path), SFM_READ, &info, /*close_desc=*/SF_TRUE));
  if (!file) {
    throw AudioError("cannot read audio file '" + path + "': " + sf_strerror(nullptr));
  }
  if (info.channels < 1 || info.samplerate < 1) {
    throw AudioError("audio file '" + path + "' has no channels or no sample rate");
  }
  Audio audio;
  audio.sample_rate = info.samplerate;
  const auto channels = static_cast<std::size_t>(info.channels);
  std::vector<float> block(4096 * channels);
  if (info.frames > 0) audio.samples.reserve(static_cast<std::size_t>(info.frames));
  for (;;) {
    const sf_count_t got = sf_readf_float(file.get(), block.data(), 4096);
    if (got <= 0) break;
    for (sf_count_t i = 0; i < got; ++i) {
      float sum = 0.0f;
      for (std::size_t c = 0; c < channels; ++c)
        sum += block[static_cast<std::size_t>(i) * channels + c];
      audio.samples.push_back(sum / static_cast<float>(channels));
    }
  }
  if (sf_error(file.get()) != SF_ERR_NO_ERROR) {
    throw AudioError("error decoding audio file '" + path + "': " + sf_strerror(file.get()));
  }
  if (target_rate > 0 && target_rate != audio.sample_rate) {
    try {
      return resample(audio, target_rate);
    } catch (const AudioError& e) {
      throw AudioError("cannot resample '" + path + "': " + e.what());
    }
  }
  return audio;
}

void write_audio(const std::string& path, const Audio& audio, Format format) {
  if (format == Format::by_extension) {
    const std::string ext = lower_extension(path);
    if (ext == "wav")
      format = Format::wav;
    else if (ext == "flac")
      format = Format::flac;
    else if (ext == "ogg" || ext == "oga")
      format = Format::ogg;
    else
      throw AudioError("cannot write '" + path +
                       "': unknown audio extension (use .wav, .flac or .ogg)");
  }
  if (audio.sample_rate < 1)
    throw AudioError("cannot write '" + path + "': sample rate is not positive");
  SF_INFO info{};
  info.samplerate = audio.sample_rate;
  info.channels = 1;
  switch (format) {
    case Format::wav:
      info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
      break;
    case Format::flac:
      info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
      break;
    case Format::ogg:
      info.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
      break;
    case Format::by_extension:
      break;
  }
  // Written beside the target, flushed to disk and renamed into place, so a row that names
  // the file never points at a partial one, even after a power cut.
  const std::string part = path + ".part";
  const int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) throw AudioError("cannot write audio file '" + path + "': " + std::strerror(errno));
  SndfilePtr file(sf_open_fd(fd, SFM_WRITE, &info, /*close_desc=*/SF_FALSE));
  auto fail = [&](const std::string& why) {
    file.reset();
    ::close(fd);
    ::unlink(part.c_str());
    throw AudioError(why);
  };
  if (!file) fail("cannot write audio file '" + path + "': " + sf_strerror(nullptr));
  // Float → int conversion wraps around without this; clipping is the lesser evil.
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const auto frames = static_cast<sf_count_t>(audio.samples.size());
  if (frames > 0 && sf_writef_float(file.get(), audio.samples.data(), frames) != frames)
    fail("error writing audio file '" + path + "': " + sf_strerror(file.get()));
  if (sf_close(file.release()) != 0) fail("error closing audio file '" + path + "'");
  if (::fsync(fd) != 0) fail("cannot flush audio file '" + path + "': " + std::strerror(errno));
  ::close(fd);
  if (::rename(part.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(part.c_str());
    throw AudioError("cannot move '" + part + "' into place: " + why);
  }
  sync_parent_folder(path);
}

Audio resample(const Audio& audio, int rate) {
  if (rate < 1 || audio.sample_rate < 1) {
    throw AudioError("resample: sample rates must be positive (from " +
                     std::to_string(audio.sample_rate) + " to " + std::to_string(rate) + ")");
  }
  Audio out;
  out.sample_rate = rate;
  if (rate == audio.sample_rate || audio.samples.empty()) {
    out.samples = audio.samples;
    return out;
  }
  const auto out_len = static_cast<std::size_t>(
      std::llround(static_cast<double>(audio.samples.size()) * rate / audio.sample_rate));
  out.samples.assign(out_len, 0.0f);
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  // One thread: results must not depend on scheduling (corpus reproducibility).
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  size_t done = 0;
  const soxr_error_t err =
      soxr_oneshot(audio.sample_rate, rate, 1, audio.samples.data(), audio.samples.size(), nullptr,
                   out.samples.data(), out_len, &done, &io, &quality, &runtime);
  if (err) throw AudioError(std::string("libsoxr failed: ") + err);
  out.samples.resize(out_len);  // soxr may deliver a frame or two fewer; pad keeps the duration.
  return out;
}

double rms_dbfs(const std::vector<float>& samples) noexcept {
  if (samples.empty()) return -120.0;
  double sum = 0.0;
  for (float s : samples) sum += static_cast<double>(s) * s;
  const double rms = std::sqrt(sum / static_cast<double>(samples.size()));
  return rms > 1e-6 ? 20.0 * std::log10(rms) : -120.0;
}

void normalise_loudness(Audio& audio, double target_dbfs_rms) noexcept {
  const double level = rms_dbfs(audio.samples);
  if (level <= -119.0) return;
  float peak = 0.0f;
  for (float s : audio.samples) peak = std::max(peak, std::fabs(s));
  double gain = std::pow(10.0, (target_dbfs_rms - level) / 20.0);
  const double max_peak = std::pow(10.0, -0.1 / 20.0);
  if (peak * gain > max_peak) gain = max_peak / peak;
  for (float& s : audio.samples) s = static_cast<float>(s * gain);
}

void clamp_loudness(Audio& audio, double low_dbfs, double high_dbfs) noexcept {
  const double level = rms_dbfs(audio.samples);
  if (level <= -119.0 || (level >= low_dbfs && level <= high_dbfs)) return;
  normalise_loudness(audio, level < low_dbfs ? low_dbfs : high_dbfs);
}

// ---- SHA-256 (FIPS 180-4) ----
namespace {

class Sha256 {
 public:
  void update(const unsigned char* data, std::size_t len) {
    total_ += len;
    while (len > 0) {
      const std::size_t take = std::min(len, std::size_t{64} - used_);
      std::memcpy(buffer_.data() + used_, data, take);
      used_ += take;
      data += take;
      len -= take;
      if (used_ == 64) {
        compress(buffer_.data());
        used_ = 0;
      }
    }
  }
  std::string hex_digest() {
    const std::uint64_t bits = total_ * 8;
    const unsigned char pad = 0x80;
    update(&pad, 1);
    const unsigned char zero = 0;
    while (used_ != 56) update(&zero, 1);
    unsigned char len_be[8];
    for (int i = 0; i < 8; ++i) len_be[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len_be, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::uint32_t word : h_) {
      for (int shift = 28; shift >= 0; shift -= 4) out.push_back(digits[(word >> shift) & 0xf]);
    }
    return out;
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress(const unsigned char* block) {
    static constexpr std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (std::uint32_t{block[4 * i]} << 24) | (std::uint32_t{block[4 * i + 1]} << 16) |
             (std::uint32_t{block[4 * i + 2]} << 8) | std::uint32_t{block[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
                  h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const std::uint32_t ch = (e & f) ^ (~e & g);
      const std::uint32_t t1 = h + s1 + ch + k[i] + w[i];
      const std::uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      const std::uint32_t t2 = s0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  std::array<std::uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> buffer_{};
  std::size_t used_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 sha;
  sha.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return sha.hex_digest();
}

std::string sha256_file(const std::string& path) {
  const int fd = open_regular_file(path);
  Sha256 sha;
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t got = ::read(fd, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw AudioError("error reading '" + path + "' to hash it: " + why);
    }
    if (got == 0) break;
    sha.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<std::size_t>(got));
  }
  ::close(fd);
  return sha.hex_digest();
}

}  // namespace tuneloop::audio

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sndfile.h>

#include <cmath>
#include <fstream>
#include <numbers>

#include "audio/audio.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop::audio;
using tuneloop::testing::TempDir;

namespace {

Audio sine(int rate, double hz, double seconds, double amplitude) {
  Audio a;
  a.sample_rate = rate;
  const auto n = static_cast<std::size_t>(std::lround(seconds * rate));
  a.samples.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    a.samples[i] = static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * hz * i / rate));
  }
  return a;
}

// Frequency from rising zero crossings, ignoring the edges where a resampler rings.
double zero_crossing_hz(const Audio& a) {
  const std::size_t skip = a.samples.size() / 10;
  std::size_t crossings = 0;
  for (std::size_t i = skip + 1; i + skip < a.samples.size(); ++i) {
    if (a.samples[i - 1] < 0 && a.samples[i] >= 0) ++crossings;
  }
  return crossings / (static_cast<double>(a.samples.size() - 2 * skip) / a.sample_rate);
}

double max_abs_difference(const Audio& a, const Audio& b) {
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.samples.size(), b.samples.size()); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(a.samples[i] - b.samples[i])));
  }
  return worst;
}

}  // namespace

TEST(Sha256, MatchesTheFipsKnownAnswers) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, OfAFileEqualsTheHashOfItsBytes) {
  TempDir dir;
  const std::string bytes(200000, 'x');
  std::ofstream(dir.file("f.bin"), std::ios::binary) << bytes;
  EXPECT_EQ(sha256_file(dir.file("f.bin")), sha256_hex(bytes));
  EXPECT_THROW(sha256_file(dir.file("missing.bin")), AudioError);
}

TEST(AudioFile, WavAndFlacRoundTripWithin16BitPrecision) {
  TempDir dir;
  const Audio original = sine(16000, 440, 1.0, 0.5);
  for (const char* name : {"a.wav", "a.flac"}) {
    write_audio(dir.file(name), original);
    const Audio back = read_audio(dir.file(name));
    EXPECT_EQ(back.sample_rate, 16000) << name;
    ASSERT_EQ(back.samples.size(), original.samples.size()) << name;
    EXPECT_LT(max_abs_difference(original, back), 1.5 / 32768) << name;
  }
}

TEST(AudioFile, OggRoundTripKeepsRateLengthPitchAndLevel) {
  TempDir dir;
  const Audio original = sine(16000, 440, 1.0, 0.5);
  write_audio(dir.file("a.ogg"), original);
  const Audio back = read_audio(dir.file("a.ogg"));
  EXPECT_EQ(back.sample_rate, 16000);
  EXPECT_NEAR(static_cast<double>(back.samples.size()), 16000.0, 16.0);
  EXPECT_NEAR(zero_crossing_hz(back), 440.0, 3.0);
  EXPECT_NEAR(rms_dbfs(back.samples), rms_dbfs(original.samples), 0.5);
}

TEST(AudioFile, WritingAnUnknownExtensionThrowsNamingThePath) {
  TempDir dir;
  try {
    write_audio(dir.file("a.xyz"), sine(16000, 440, 0.1, 0.5));
    FAIL() << "expected AudioError";
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find("a.xyz"), std::string::npos) << e.what();
  }
}

TEST(AudioFile, ReadingACorruptFileThrowsNamingThePathAndTheCause) {
  TempDir dir;
  const std::string path = dir.file("corrupt.wav");
  std::ofstream(path, std::ios::binary) << "RIFF\x10\x00\x00\x00WAVEthis is not really audio";
  try {
    read_audio(path);
    FAIL() << "expected AudioError";
  } catch (const AudioError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_GT(msg.size(), path.size() + 30) << "no cause given: " << msg;
  }
  EXPECT_THROW(read_audio(dir.file("missing.wav")), AudioError);
}

TEST(AudioFile, StereoFilesAreMixedDownToMono) {
  TempDir dir;
  const std::string path = dir.file("stereo.wav");
  SF_INFO info{};
  info.samplerate = 8000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr);
  const float frames[] = {0.5f, 0.1f, -0.2f, -0.4f, 1.0f, 0.0f};
  sf_writef_float(f, frames, 3);
  sf_close(f);
  const Audio a = read_audio(path);
  ASSERT_EQ(a.samples.size(), 3u);
  EXPECT_FLOAT_EQ(a.samples[0], 0.3f);
  EXPECT_FLOAT_EQ(a.samples[1], -0.3f);
  EXPECT_FLOAT_EQ(a.samples[2], 0.5f);
}

TEST(Resample, From44100To16000KeepsDurationAndASinesFrequency) {
  const Audio original = sine(44100, 1000, 2.0, 0.5);
  const Audio out = resample(original, 16000);
  EXPECT_EQ(out.sample_rate, 16000);
  EXPECT_EQ(out.samples.size(), 32000u);
  EXPECT_NEAR(zero_crossing_hz(out), 1000.0, 2.0);
  EXPECT_NEAR(rms_dbfs(out.samples), rms_dbfs(original.samples), 0.2);
}

TEST(Resample, ReadAudioResamplesToTheRequestedRate) {
  TempDir dir;
  write_audio(dir.file("a.wav"), sine(44100, 1000, 1.0, 0.5));
  const Audio a = read_audio(dir.file("a.wav"), 16000);
  EXPECT_EQ(a.sample_rate, 16000);
  EXPECT_EQ(a.samples.size(), 16000u);
  EXPECT_NEAR(zero_crossing_hz(a), 1000.0, 2.0);
}

TEST(Resample, RemovesContentAboveTheNewNyquist) {
  const Audio out = resample(sine(44100, 12000, 1.0, 0.5), 16000);  // 12 kHz > 8 kHz Nyquist
  EXPECT_LT(rms_dbfs(out.samples), -60.0);
}

TEST(Resample, RejectsNonPositiveRates) {
  EXPECT_THROW(resample(sine(16000, 440, 0.1, 0.5), 0), AudioError);
}

TEST(Loudness, NormalisingBringsASineToTheTargetRms) {
  Audio a = sine(16000, 440, 1.0, 0.01);
  normalise_loudness(a, -20.0);
  EXPECT_NEAR(rms_dbfs(a.samples), -20.0, 0.01);
}

TEST(Loudness, APeakySignalIsLimitedInsteadOfClipped) {
  Audio a = sine(16000, 440, 1.0, 0.001);
  a.samples[100] = 0.5f;  // one loud click: reaching -10 dB RMS would need gain far past clipping
  normalise_loudness(a, -10.0);
  float peak = 0;
  for (float s : a.samples) peak = std::max(peak, std::fabs(s));
  EXPECT_LE(peak, 1.0f);
  EXPECT_GT(peak, 0.95f);
  EXPECT_LT(rms_dbfs(a.samples), -10.0);
}

TEST(Loudness, ClampingLeavesALevelInsideTheRangeAndMovesOneOutsideToTheNearerBound) {
  Audio inside = sine(16000, 440, 1.0, 0.1);  // about -23 dBFS
  const std::vector<float> before = inside.samples;
  clamp_loudness(inside, -26.0, -14.0);
  EXPECT_EQ(inside.samples, before);

  Audio quiet = sine(16000, 440, 1.0, 0.001);  // about -63 dBFS
  clamp_loudness(quiet, -26.0, -14.0);
  EXPECT_NEAR(rms_dbfs(quiet.samples), -26.0, 0.01);

  Audio loud = sine(16000, 440, 1.0, 0.9);  // about -4 dBFS
  clamp_loudness(loud, -26.0, -14.0);
  EXPECT_NEAR(rms_dbfs(loud.samples), -14.0, 0.01);
}

TEST(Loudness, SilenceStaysSilent) {
  Audio a;
  a.samples.assign(1000, 0.0f);
  normalise_loudness(a);
  for (float s : a.samples) ASSERT_EQ(s, 0.0f);
}

TEST(AudioFile, AFifoIsRefusedAtOnceInsteadOfBlockingTheReader) {
  tuneloop::testing::TempDir dir("tuneloop-fifo");
  const std::string fifo = dir.file("song.wav");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Nobody ever writes to it: a blocking open() would hang this test forever.
  try {
    read_audio(fifo);
    FAIL() << "a FIFO was read";
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sha256_file(fifo), AudioError);
}

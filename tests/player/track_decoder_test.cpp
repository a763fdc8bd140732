#include "player/track_decoder.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "audio_fixtures.hpp"
#include "player/player.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop::player;
using namespace tuneloop::testing;

namespace {

std::vector<float> decode_all(TrackDecoder& d) {
  std::vector<float> all, buf(1000);
  while (std::size_t n = d.read(buf.data(), buf.size()))
    all.insert(all.end(), buf.begin(), buf.begin() + n);
  return all;
}

double rms(const std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += x * x;
  return v.empty() ? 0 : std::sqrt(sum / v.size());
}

}  // namespace

TEST(TrackDecoder, DecodesAWavAtTheDeviceRateSampleForSample) {
  TempDir dir("tuneloop-player");
  write_sine(dir.file("a.wav"), 1.0, 16000, kWav);
  TrackDecoder d(dir.file("a.wav"), 16000);
  EXPECT_DOUBLE_EQ(d.duration(), 1.0);
  auto samples = decode_all(d);
  EXPECT_EQ(samples.size(), 16000u);
  EXPECT_NEAR(rms(samples), 0.5 / std::sqrt(2.0), 0.01);
  EXPECT_TRUE(d.finished());
}

TEST(TrackDecoder, DecodesFlacAndOgg) {
  TempDir dir("tuneloop-player");
  write_sine(dir.file("a.flac"), 1.0, 16000, kFlac);
  write_sine(dir.file("a.ogg"), 1.0, 16000, kOgg);
  for (const char* name : {"a.flac", "a.ogg"}) {
    TrackDecoder d(dir.file(name), 16000);
    auto samples = decode_all(d);
    EXPECT_NEAR(static_cast<double>(samples.size()), 16000.0, 16.0) << name;
    EXPECT_NEAR(rms(samples), 0.5 / std::sqrt(2.0), 0.02) << name;
  }
}

TEST(TrackDecoder, ResamplesA44kStereoFileKeepingItsDuration) {
  TempDir dir("tuneloop-player");
  write_sine(dir.file("cd.wav"), 1.5, 44100, kWav, 2);
  TrackDecoder d(dir.file("cd.wav"), 16000);
  EXPECT_EQ(d.file_rate(), 44100);
  EXPECT_EQ(d.channels(), 2);
  auto samples = decode_all(d);
  EXPECT_NEAR(static_cast<double>(samples.size()), 1.5 * 16000, 2.0);
  // Identical channels mix down to the same tone, not a louder one.
  std::vector<float> middle(samples.begin() + 2000, samples.end() - 2000);
  EXPECT_NEAR(rms(middle), 0.5 / std::sqrt(2.0), 0.01);
}

TEST(TrackDecoder, SeekingRepositionsAndDecodesOnlyTheRest) {
  TempDir dir("tuneloop-player");
  write_sine(dir.file("cd.wav"), 2.0, 44100, kWav);
  TrackDecoder d(dir.file("cd.wav"), 16000);
  std::vector<float> buf(4000);
  d.read(buf.data(), buf.size());
  d.seek(1.5);
  EXPECT_NEAR(static_cast<double>(decode_all(d).size()), 0.5 * 16000, 2.0);
}

TEST(TrackDecoder, ANonAudioFileIsADecodeErrorNamingThePath) {
  TempDir dir("tuneloop-player");
  const std::string path = dir.file("notes.wav");
  std::ofstream(path) << "these are not samples\n";
  try {
    TrackDecoder d(path, 16000);
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(TrackDecoder(dir.file("missing.flac"), 16000), DecodeError);
}

TEST(PlayerWithoutOutput, ValidatesFilesButStaysSilentAndIdle) {
  TempDir dir("tuneloop-player");
  write_sine(dir.file("a.wav"), 0.5, 16000, kWav);
  std::ofstream(dir.file("bad.ogg")) << "junk";
  PlayerOptions options;
  options.output = "none";
  int events = 0;
  PlayerEvents handlers;
  handlers.on_ended = [&](const PlayEnded&) { ++events; };
  Player player(options, handlers);
  EXPECT_FALSE(player.available());
  EXPECT_FALSE(player.status_message().empty());
  EXPECT_NO_THROW(player.play(dir.file("a.wav"), 1));
  EXPECT_THROW(player.play(dir.file("bad.ogg"), 2), DecodeError);
  EXPECT_EQ(player.state(), State::idle);
  EXPECT_EQ(player.progress(), std::nullopt);
}

TEST(PlayerWithoutOutput, RejectsAnUnknownOutputMode) {
  PlayerOptions options;
  options.output = "speakers";
  EXPECT_THROW(Player(options, {}), std::invalid_argument);
}

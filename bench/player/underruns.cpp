// Plays audio for N seconds through the real output (JACK dummy on headless machines) and
// prints the underrun count and the seconds counted as heard. Target: 0 underruns in 10
// minutes of playback on an idle machine.
//
//   bench_player_underruns [--seconds 600] [--file track.flac]

#include <sndfile.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "player/player.hpp"

using namespace tuneloop::player;

int main(int argc, char** argv) {
  CLI::App app{"Player underrun benchmark: plays for N seconds and prints underruns"};
  double seconds = 10;
  std::string file;
  app.add_option("--seconds", seconds, "how long to play")->capture_default_str();
  app.add_option("--file", file, "audio file to loop (default: a generated 5 s tone)");
  CLI11_PARSE(app, argc, argv);

  std::string temp_dir;
  if (file.empty()) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tuneloop-bench-XXXXXX").string();
    if (!mkdtemp(pattern.data())) return 1;
    temp_dir = pattern;
    file = temp_dir + "/tone.wav";
    SF_INFO info{};
    info.samplerate = 44100;  // not the device rate, so the resampler runs too
    info.channels = 2;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(file.c_str(), SFM_WRITE, &info);
    std::vector<float> data(44100 * 5 * 2);
    for (std::size_t i = 0; i < data.size() / 2; ++i) {
      data[2 * i] = data[2 * i + 1] =
          0.3f * static_cast<float>(std::sin(2 * M_PI * 440 * i / 44100.0));
    }
    sf_writef_float(f, data.data(), 44100 * 5);
    sf_close(f);
  }

  std::mutex mutex;
  std::condition_variable cv;
  double heard = 0;
  int plays_ended = 0;
  PlayerEvents events;
  events.on_ended = [&](const PlayEnded& e) {
    std::lock_guard lock(mutex);
    heard += e.seconds_heard;
    ++plays_ended;
    cv.notify_all();
  };
  PlayerOptions options;
  options.output = "portaudio";
  int rc = 0;
  try {
    Player player(options, events);
    std::printf("device: %s\n", player.device_description().c_str());
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    int started = 0;
    while (std::chrono::steady_clock::now() < end) {
      player.play(file, ++started);
      std::unique_lock lock(mutex);
      cv.wait_until(lock, end, [&] { return plays_ended >= started; });
    }
    player.stop();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::unique_lock lock(mutex);
    cv.wait_for(lock, std::chrono::seconds(2), [&] { return plays_ended >= started; });
    std::printf("seconds played: %.2f (wall)\nseconds heard: %.2f\nplays: %d\nunderruns: %lld\n",
                wall, heard, started, static_cast<long long>(player.underruns()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_player_underruns: %s\n", e.what());
    rc = 1;
  }
  if (!temp_dir.empty()) std::filesystem::remove_all(temp_dir);
  return rc;
}

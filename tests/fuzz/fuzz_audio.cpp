// Audio files as songs.add imports them (libsndfile behind our reader).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "audio/audio.hpp"
#include "tests/support/temp_dir.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tuneloop::testing::TempDir dir("tuneloop-fuzz-audio");
  static const std::string path = dir.file("input.wav");
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    const auto a = tuneloop::audio::read_audio(path);
    (void)tuneloop::audio::rms_dbfs(a.samples);
  } catch (const tuneloop::audio::AudioError&) {
  }
  return 0;
}

// Audio files as songs.add imports them (libsndfile behind our reader).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "audio/audio.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/tuneloop-fuzz-audio-" + std::to_string(::getpid()) + ".wav";
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

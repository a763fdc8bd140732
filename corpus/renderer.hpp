#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "audio/audio.hpp"
#include "corpus/composer.hpp"

namespace tuneloop::corpus {

class RenderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Debian's General MIDI soundfont (package fluid-soundfont-gm).
inline constexpr const char* kDefaultSoundfont = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

// The rich corpus's soundfonts, from Debian's packages fluid-soundfont-gm,
// musescore-general-soundfont-small and timgm6mb-soundfont (scripts/setup.sh installs them).
inline const std::vector<std::string>& rich_soundfonts() {
  static const std::vector<std::string> fonts = {kDefaultSoundfont,
                                                 "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
                                                 "/usr/share/sounds/sf2/TimGM6mb.sf2"};
  return fonts;
}

// A FluidSynth instance with the soundfont loaded once, rendering pieces into memory
// (no audio device). Not thread-safe: one per thread. Each render uses a fresh synth
// (the samples stay cached), so a clip doesn't depend on what was rendered before it.
class Renderer {
 public:
  // Throws RenderError naming the soundfont when FluidSynth can't be set up or load it.
  explicit Renderer(const std::string& soundfont = kDefaultSoundfont, int synth_rate = 32000);
  // Several soundfonts; a piece plays on the one its spec.soundfont names.
  explicit Renderer(const std::vector<std::string>& soundfonts, int synth_rate = 32000);
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  // Renders exactly round(seconds * out_rate) mono frames of the piece, from
  // spec.start_seconds or else skipping the silence before the first note sounds; the
  // result is not loudness-normalised.
  audio::Audio render(const Piece& piece, double seconds, int out_rate = 16000);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Composes and renders one clip of a corpus and normalises its loudness: -17 dBFS RMS
// for loud clips, -23 for soft ones (plus spec.level_db), peak-limited.
audio::Audio render_clip(Renderer& renderer, const PieceSpec& spec, double seconds,
                         int out_rate = 16000);

}  // namespace tuneloop::corpus

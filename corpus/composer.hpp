#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "corpus/tags.hpp"

namespace tuneloop::corpus {

// Deterministic on every platform (SplitMix64), unlike the standard distributions.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept;
  int uniform(int lo, int hi) noexcept;  // inclusive
  double uniform01() noexcept;
  bool chance(double p) noexcept { return uniform01() < p; }
  template <class T>
  const T& pick(const std::vector<T>& items) noexcept {
    return items[static_cast<std::size_t>(uniform(0, static_cast<int>(items.size()) - 1))];
  }

 private:
  std::uint64_t state_;
};

// Seed of the clip at `index` in a corpus made with `corpus_seed`.
std::uint64_t clip_seed(std::uint64_t corpus_seed, std::uint64_t index) noexcept;

// The musical choices for one clip.
struct PieceSpec {
  std::uint64_t seed = 0;
  int tempo_bpm = 120;
  int key = 0;            // tonic pitch class, 0 = C
  std::string mode;       // major, minor, dorian, mixolydian, phrygian, lydian
  std::string family;     // a tag of the instrument category
  int program = 0;        // GM program (0-based) for melody and accompaniment
  int bass_program = -1;  // GM program of the bass line, -1 for none
  bool drums = false;
  int drum_kit = 0;              // GM drum kit program on channel 10
  std::string density;           // sparse | dense
  std::string register_;         // low | high
  std::string dynamics;          // soft | loud
  std::string texture;           // chords | arpeggio
  int reverb = 40;               // CC91 send
  std::vector<int> progression;  // scale degrees (0 = tonic) of the chords, one per chord span
  double beats_per_chord = 4;
  // The "rich" corpus's choices (vary_piece); the defaults are the classic corpus.
  int soundfont = 0;            // index into the renderer's soundfonts
  int chorus = 0;               // CC93 send; 0 = the chorus unit off
  double level_db = 0;          // offset of the loudness target (within the dynamics tag)
  double start_seconds = -1;    // where the clip is cut from the piece; < 0: at its first note
  int crash_every_bars = 0;     // a crash cymbal every so many bars too; 0: only the first beat

  // One word per tag category, in tag_categories() order.
  std::vector<std::string> tags() const;
  std::string key_name() const;
};

// A MIDI note event at a time in seconds from the start of the piece.
struct NoteEvent {
  double time = 0;
  int channel = 0;
  int key = 60;
  int velocity = 0;  // 0 = note off
};

struct Piece {
  PieceSpec spec;
  std::vector<NoteEvent> events;  // sorted by time, offs before ons at equal times
  int channel_program[16] = {};
};

// Draws the musical choices for a clip within the style constraint.
PieceSpec choose_piece(std::uint64_t seed, const Style& style);

// The rich corpus: from a stream of its own (so the classic choices above stay as they
// are), one of `soundfonts` soundfonts, more programs of the same instrument family and
// more drum kits, a chorus send, a loudness offset of up to ±2.5 dB, crash cymbals at
// section starts, and a start at a random point of a longer piece (not on a bar), so no
// clip teaches the model how pieces open.
void vary_piece(PieceSpec& spec, int soundfonts);

// Writes melody, accompaniment, bass line and drums covering at least `seconds`.
Piece compose(const PieceSpec& spec, double seconds);

}  // namespace tuneloop::corpus

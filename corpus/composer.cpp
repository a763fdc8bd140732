#include "corpus/composer.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

namespace tuneloop::corpus {

std::uint64_t Rng::next() noexcept {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int Rng::uniform(int lo, int hi) noexcept {
  if (hi <= lo) return lo;
  const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
  return lo + static_cast<int>(next() % span);
}

double Rng::uniform01() noexcept {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::uint64_t clip_seed(std::uint64_t corpus_seed, std::uint64_t index) noexcept {
  Rng rng(corpus_seed * 0x100000001b3ULL + index);
  rng.next();
  return rng.next();
}

namespace {

const std::map<std::string, std::array<int, 7>>& scales() {
  static const std::map<std::string, std::array<int, 7>> s = {
      {"major", {0, 2, 4, 5, 7, 9, 11}},    {"minor", {0, 2, 3, 5, 7, 8, 10}},
      {"dorian", {0, 2, 3, 5, 7, 9, 10}},   {"mixolydian", {0, 2, 4, 5, 7, 9, 10}},
      {"phrygian", {0, 1, 3, 5, 7, 8, 10}}, {"lydian", {0, 2, 4, 6, 7, 9, 11}},
  };
  return s;
}

const std::map<std::string, std::vector<int>>& family_programs() {
  static const std::map<std::string, std::vector<int>> p = {
      {"piano", {0, 1, 2, 4, 5}},         {"strings", {40, 41, 42, 48, 49}},
      {"guitar", {24, 25, 26, 27}},       {"organ", {16, 17, 18, 19}},
      {"lead", {80, 81, 84, 87}},         {"pad", {88, 89, 90, 91, 95}},
      {"bass", {32, 33, 34, 38, 39}},     {"brass", {56, 57, 60, 61, 62}},
      {"woodwind", {65, 68, 70, 71, 73}},
  };
  return p;
}

// Families whose own low notes make a credible bass line; the rest get a GM bass.
bool plays_own_bass(const std::string& family) {
  return family == "piano" || family == "strings" || family == "organ" || family == "pad" ||
         family == "bass";
}

std::string choose(Rng& rng, const Style& style, std::size_t category) {
  std::vector<std::string> options;
  for (const auto& word : tag_categories()[category].words) {
    if (style.allows(category, word)) options.push_back(word);
  }
  return rng.pick(options);
}

int degree_to_midi(const PieceSpec& spec, int degree, int base_c) {
  const auto& scale = scales().at(spec.mode);
  const int octave = degree >= 0 ? degree / 7 : -((-degree + 6) / 7);
  const int step = degree - octave * 7;
  return base_c + 12 * octave + spec.key + scale[static_cast<std::size_t>(step)];
}

struct Writer {
  std::vector<NoteEvent> events;
  double seconds_per_beat;
  double limit_beats;
  void note(int channel, int key, double start_beat, double length_beats, int velocity) {
    if (start_beat >= limit_beats) return;
    key = std::clamp(key, 12, 115);
    velocity = std::clamp(velocity, 1, 127);
    events.push_back({start_beat * seconds_per_beat, channel, key, velocity});
    events.push_back(
        {(start_beat + std::max(0.05, length_beats)) * seconds_per_beat, channel, key, 0});
  }
};

}  // namespace

std::vector<std::string> PieceSpec::tags() const {
  const std::string tempo_tag = tempo_bpm < 90 ? "slow" : tempo_bpm < 130 ? "medium" : "fast";
  const std::string mode_tag = (mode == "major" || mode == "minor") ? mode : "modal";
  const std::string key_tag = tag_categories()[kKeyCategory].words[((key % 12) + 12) % 12];
  return {tempo_tag, mode_tag, family,  drums ? "drums" : "nodrums", density, register_,
          dynamics,  texture,  key_tag, scale_tag(mode_tag, key_tag)};
}

std::string PieceSpec::key_name() const {
  static const char* names[] = {"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"};
  return names[((key % 12) + 12) % 12];
}

PieceSpec choose_piece(std::uint64_t seed, const Style& style) {
  Rng rng(seed);
  PieceSpec spec;
  spec.seed = seed;
  const std::string tempo_tag = choose(rng, style, 0);
  spec.tempo_bpm = tempo_tag == "slow"     ? rng.uniform(60, 89)
                   : tempo_tag == "medium" ? rng.uniform(90, 129)
                                           : rng.uniform(130, 180);
  const std::string mode_tag = choose(rng, style, kModeCategory);
  spec.mode = mode_tag == "modal"
                  ? rng.pick(std::vector<std::string>{"dorian", "mixolydian", "phrygian", "lydian"})
                  : mode_tag;
  // One draw of uniform(0, 11) when any key is allowed, as before the key was a tag, so
  // corpora made with earlier versions come out the same.
  const auto& keys = tag_categories()[kKeyCategory].words;
  spec.key = static_cast<int>(
      std::find(keys.begin(), keys.end(), choose(rng, style, kKeyCategory)) - keys.begin());
  spec.family = choose(rng, style, 2);
  spec.program = rng.pick(family_programs().at(spec.family));
  spec.drums = choose(rng, style, 3) == "drums";
  spec.drum_kit = rng.pick(std::vector<int>{0, 0, 8, 16, 24, 25});
  spec.density = choose(rng, style, 4);
  spec.register_ = choose(rng, style, 5);
  spec.dynamics = choose(rng, style, 6);
  spec.texture = choose(rng, style, 7);
  if (spec.family == "bass" || rng.chance(0.7)) {
    spec.bass_program =
        plays_own_bass(spec.family) ? spec.program : rng.pick(std::vector<int>{32, 33, 34, 38});
  }
  spec.reverb = rng.uniform(10, 70);
  static const std::vector<std::vector<int>> progressions = {
      {0, 3, 4, 0}, {0, 5, 3, 4}, {0, 4, 5, 3}, {0, 3, 0, 4}, {0, 5, 2, 6},
      {0, 6, 3, 0}, {0, 2, 3, 4}, {0, 3, 5, 4}, {0, 4, 0, 3},
  };
  // A modal vamp (i–IV in dorian, I–bVII in mixolydian…) makes the mode audible in a few chords.
  static const std::map<std::string, int> colour = {
      {"dorian", 3}, {"mixolydian", 6}, {"phrygian", 1}, {"lydian", 1}, {"major", 4}, {"minor", 5}};
  if (rng.chance(spec.mode == "major" || spec.mode == "minor" ? 0.2 : 0.5)) {
    const int c = colour.at(spec.mode);
    spec.progression = {0, c, 0, c};
  } else {
    spec.progression = rng.pick(progressions);
  }
  spec.beats_per_chord = spec.tempo_bpm < 100 ? 2 : 4;
  return spec;
}

void vary_piece(PieceSpec& spec, int soundfonts) {
  Rng rng(spec.seed ^ 0x72696368636f7270ULL);
  spec.soundfont = rng.uniform(0, std::max(1, soundfonts) - 1);
  // General MIDI programs of each family beyond the classic corpus's few.
  static const std::map<std::string, std::vector<int>> more = {
      {"piano", {0, 1, 2, 3, 4, 5, 6, 7}},
      {"strings", {40, 41, 42, 43, 44, 45, 46, 48, 49, 50, 51}},
      {"guitar", {24, 25, 26, 27, 28, 29, 30}},
      {"organ", {16, 17, 18, 19, 20, 21}},
      {"lead", {80, 81, 82, 83, 84, 85, 86, 87}},
      {"pad", {88, 89, 90, 91, 92, 93, 94, 95}},
      {"bass", {32, 33, 34, 35, 36, 37, 38, 39}},
      {"brass", {56, 57, 58, 59, 60, 61, 62, 63}},
      {"woodwind", {64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75}},
  };
  const bool own_bass = spec.bass_program == spec.program;
  spec.program = rng.pick(more.at(spec.family));
  if (own_bass) spec.bass_program = spec.program;
  // GS drum kits: standard, room, power, electronic, TR-808, jazz, brush, orchestra.
  spec.drum_kit = rng.pick(std::vector<int>{0, 8, 16, 24, 25, 32, 40, 48});
  spec.chorus = rng.chance(0.5) ? rng.uniform(10, 60) : 0;
  spec.level_db = (rng.uniform01() * 2 - 1) * 2.5;
  spec.crash_every_bars = rng.pick(std::vector<int>{2, 4, 4, 8});
  // Up to four bars in, at any point of a beat.
  spec.start_seconds = rng.uniform01() * 16.0 * 60.0 / spec.tempo_bpm;
}

Piece compose(const PieceSpec& spec, double seconds) {
  Rng rng(spec.seed ^ 0x5eedc0de5eedc0deULL);
  Piece piece;
  piece.spec = spec;
  Writer w{{}, 60.0 / spec.tempo_bpm, seconds * spec.tempo_bpm / 60.0};
  const double total_beats = w.limit_beats;
  const bool dense = spec.density == "dense";
  const bool loud = spec.dynamics == "loud";
  const int base_velocity = loud ? rng.uniform(88, 108) : rng.uniform(40, 60);
  auto velocity = [&](int accent) { return base_velocity + accent + rng.uniform(-6, 6); };

  // Middle C of the melody's octave; the bass family sits an octave lower.
  int melody_c = spec.register_ == "high" ? 72 : 60;
  if (spec.register_ == "low") melody_c = 48;
  if (spec.family == "bass") melody_c -= 12;
  const int accompaniment_c = std::max(36, melody_c - 12);
  const int bass_c = spec.family == "bass" ? 24 : 36;

  auto chord_at = [&](double beat) {
    const auto index = static_cast<std::size_t>(beat / spec.beats_per_chord);
    return spec.progression[index % spec.progression.size()];
  };

  // Melody: a random walk over the scale that lands on chord tones on the beat.
  {
    const std::vector<double> rhythm = dense ? std::vector<double>{0.5, 0.5, 0.25, 0.25, 0.75, 1.0}
                                             : std::vector<double>{1.0, 1.0, 2.0, 1.5, 0.5};
    int degree = rng.uniform(0, 4);
    double beat = 0;
    while (beat < total_beats) {
      double length = rng.pick(rhythm);
      if (std::fmod(beat, 1.0) + length > 1.0 && length < 1.0) length = 1.0 - std::fmod(beat, 1.0);
      if (!rng.chance(0.1)) {
        const int root = chord_at(beat);
        if (std::fmod(beat, 1.0) < 1e-9) {
          int best = degree, best_distance = 99;
          for (int d = degree - 3; d <= degree + 3; ++d) {
            const int rel = ((d - root) % 7 + 7) % 7;
            if ((rel == 0 || rel == 2 || rel == 4) && std::abs(d - degree) < best_distance) {
              best = d;
              best_distance = std::abs(d - degree);
            }
          }
          degree = best;
        }
        const int accent = std::fmod(beat, 4.0) < 1e-9 ? 10 : 0;
        w.note(0, degree_to_midi(spec, degree, melody_c), beat, length * (dense ? 0.85 : 0.95),
               velocity(accent));
      }
      beat += length;
      degree += rng.pick(std::vector<int>{-2, -1, -1, 0, 1, 1, 2, rng.chance(0.2) ? 4 : -3});
      degree = std::clamp(degree, -3, 10);
    }
  }

  // Accompaniment: block chords or an arpeggio of the current triad.
  {
    const double step =
        spec.texture == "arpeggio"
            ? (dense ? (spec.tempo_bpm < 110 ? 0.25 : 0.5) : (spec.tempo_bpm < 90 ? 0.5 : 1.0))
            : (dense ? rng.pick(std::vector<double>{0.5, 1.0}) : spec.beats_per_chord);
    const int pattern = rng.uniform(0, 2);  // arpeggio shape: up, up-down, broken
    static const int shapes[3][6] = {{0, 1, 2, 3, 0, 1}, {0, 1, 2, 3, 2, 1}, {0, 2, 1, 3, 1, 2}};
    int i = 0;
    for (double beat = 0; beat < total_beats; beat += step, ++i) {
      const int root = chord_at(beat);
      const int tones[4] = {root, root + 2, root + 4, root + 7};
      if (spec.texture == "arpeggio") {
        const int t = tones[shapes[pattern][i % 6]];
        w.note(1, degree_to_midi(spec, t, accompaniment_c), beat, step * 1.5, velocity(-12));
      } else {
        for (int t = 0; t < 3; ++t) {
          w.note(1, degree_to_midi(spec, tones[t], accompaniment_c), beat, step * 0.95,
                 velocity(-15));
        }
      }
    }
  }

  // Bass line: roots, or root–fifth movement when dense.
  if (spec.bass_program >= 0) {
    const double step =
        dense ? (spec.tempo_bpm < 120 ? 0.5 : 1.0) : std::min(2.0, spec.beats_per_chord);
    int i = 0;
    for (double beat = 0; beat < total_beats; beat += step, ++i) {
      const int root = chord_at(beat);
      const int degree = dense && i % 4 == 2 ? root + 4 : root;
      w.note(2, degree_to_midi(spec, degree, bass_c), beat, step * 0.9, velocity(-5));
    }
  }

  // Drums on GM channel 10: kick, snare, hats; half-time and quarter hats when sparse.
  if (spec.drums) {
    const double hat_step = dense ? (spec.tempo_bpm < 110 ? 0.25 : 0.5) : 1.0;
    for (double beat = 0; beat < total_beats; beat += hat_step) {
      w.note(9, std::fmod(beat, 2.0) == 1.5 && rng.chance(0.3) ? 46 : 42, beat, hat_step * 0.5,
             velocity(std::fmod(beat, 1.0) < 1e-9 ? 0 : -15));
    }
    for (double beat = 0; beat < total_beats; beat += 1.0) {
      const int in_bar = static_cast<int>(std::fmod(beat, 4.0));
      if (in_bar == 0 || (dense && in_bar == 2)) w.note(9, 36, beat, 0.5, velocity(10));
      if (dense && in_bar == 2 && rng.chance(0.4)) w.note(9, 36, beat + 0.5, 0.5, velocity(0));
      if ((dense && (in_bar == 1 || in_bar == 3)) || (!dense && in_bar == 2))
        w.note(9, 38, beat, 0.5, velocity(5));
    }
    w.note(9, 49, 0, 1.0, velocity(0));
    if (spec.crash_every_bars > 0)
      for (double beat = 4.0 * spec.crash_every_bars; beat < total_beats; beat += 4.0 * spec.crash_every_bars)
        if (rng.chance(0.7)) w.note(9, rng.chance(0.8) ? 49 : 57, beat, 1.0, velocity(0));
  }

  piece.events = std::move(w.events);
  std::stable_sort(piece.events.begin(), piece.events.end(),
                   [](const NoteEvent& a, const NoteEvent& b) {
                     if (a.time != b.time) return a.time < b.time;
                     return (a.velocity > 0) < (b.velocity > 0);
                   });
  piece.channel_program[0] = spec.program;
  piece.channel_program[1] = spec.program;
  piece.channel_program[2] = spec.bass_program >= 0 ? spec.bass_program : 0;
  piece.channel_program[9] = spec.drum_kit;
  return piece;
}

}  // namespace tuneloop::corpus

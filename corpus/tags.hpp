#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace tuneloop::corpus {

// The fixed vocabulary of style tags every corpus clip carries, in a stable order; the
// model's tag embedding indexes it, so words are only ever appended, never reordered.
//   tempo:      slow (60–89 BPM) | medium (90–129) | fast (130–180)
//   mode:       major | minor | modal (dorian, mixolydian, phrygian or lydian)
//   instrument: piano | strings | guitar | organ | lead | pad | bass | brass | woodwind
//               (the GM family that plays melody and accompaniment)
//   drums:      drums | nodrums (GM channel 10 kit)
//   density:    sparse | dense (note rate of melody, accompaniment, bass and drums)
//   register:   low | high (octave of the melody)
//   dynamics:   soft | loud (velocities; soft clips are also normalised 6 dB quieter)
//   texture:    chords | arpeggio (how the accompaniment plays the harmony)
//   key:        key-c | key-c# | key-d | key-eb | … | key-bb | key-b (the tonic: a mode
//               says which pitches sound only once the key is known)
//   scale:      c-major | c-minor | c-modal | c#-major | … | b-modal:
//               not drawn but named by the key and mode, one word for the pitches they
//               make together, so that the denoiser's sum of tag embeddings carries the
//               pitch set as one term instead of an interaction of two
const std::vector<std::string>& tag_vocabulary();

// One category of mutually exclusive tags; each clip carries exactly one word of each.
struct TagCategory {
  std::string name;
  std::vector<std::string> words;
};
const std::vector<TagCategory>& tag_categories();
// Positions of categories in tag_categories(); the key's words run C, C#, … B.
inline constexpr std::size_t kModeCategory = 1;
inline constexpr std::size_t kKeyCategory = 8;
inline constexpr std::size_t kScaleCategory = 9;

// The scale word of a mode word and a key word: ("minor", "key-a") → "a-minor".
std::string scale_tag(const std::string& mode, const std::string& key);

// Index of a word in tag_vocabulary(), or -1 when it is not a tag.
int tag_index(const std::string& word) noexcept;

// The tags the denoiser is conditioned on when a generation asks for `tags`, completed the
// way every corpus clip carries them (each addition only when `vocabulary`, the weights'
// words, has it): a scale word brings its key and mode; a mode without a key gets one drawn
// from `seed` (the same seed draws the same key); a mode and a key get their scale word.
// Why: a mode says which pitches sound only once the key is known, and the denoiser ignores
// a mode given alone (README, "Does it obey its tags?").
std::vector<std::string> conditioning_tags(std::vector<std::string> tags,
                                           const std::vector<std::string>& vocabulary,
                                           std::uint64_t seed);

class StyleError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A style constraint such as "slow minor piano": for each category the words allowed
// (an empty list allows any word of that category). A scale word constrains the key and
// the mode ("a-minor" = "key-a minor"); the scale category itself is never constrained.
struct Style {
  std::vector<std::vector<std::string>> allowed;  // parallel to tag_categories()
  bool allows(std::size_t category, const std::string& word) const;
  bool empty() const noexcept;
};

// Parses space- or comma-separated tags. Throws StyleError naming an unknown word and
// listing the vocabulary.
Style parse_style(const std::string& text);

}  // namespace tuneloop::corpus

#pragma once
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
//   key:        key-c | key-c# | key-d | key-eb | … | key-bb | key-b (the tonic; added in
//               session 15: a mode says which pitches sound only once the key is known)
const std::vector<std::string>& tag_vocabulary();

// One category of mutually exclusive tags; each clip carries exactly one word of each.
struct TagCategory {
  std::string name;
  std::vector<std::string> words;
};
const std::vector<TagCategory>& tag_categories();

// Index of a word in tag_vocabulary(), or -1 when it is not a tag.
int tag_index(const std::string& word) noexcept;

class StyleError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A style constraint such as "slow minor piano": for each category the words allowed
// (an empty list allows any word of that category).
struct Style {
  std::vector<std::vector<std::string>> allowed;  // parallel to tag_categories()
  bool allows(std::size_t category, const std::string& word) const;
  bool empty() const noexcept;
};

// Parses space- or comma-separated tags. Throws StyleError naming an unknown word and
// listing the vocabulary.
Style parse_style(const std::string& text);

}  // namespace tuneloop::corpus

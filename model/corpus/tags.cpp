#include "model/corpus/tags.hpp"

#include <algorithm>
#include <sstream>

namespace tuneloop::corpus {

const std::vector<TagCategory>& tag_categories() {
  static const std::vector<TagCategory> categories = {
      {"tempo", {"slow", "medium", "fast"}},
      {"mode", {"major", "minor", "modal"}},
      {"instrument",
       {"piano", "strings", "guitar", "organ", "lead", "pad", "bass", "brass", "woodwind"}},
      {"drums", {"drums", "nodrums"}},
      {"density", {"sparse", "dense"}},
      {"register", {"low", "high"}},
      {"dynamics", {"soft", "loud"}},
      {"texture", {"chords", "arpeggio"}},
      {"key",
       {"key-c", "key-c#", "key-d", "key-eb", "key-e", "key-f", "key-f#", "key-g", "key-ab",
        "key-a", "key-bb", "key-b"}},
  };
  return categories;
}

const std::vector<std::string>& tag_vocabulary() {
  static const std::vector<std::string> vocabulary = [] {
    std::vector<std::string> words;
    for (const auto& category : tag_categories())
      words.insert(words.end(), category.words.begin(), category.words.end());
    return words;
  }();
  return vocabulary;
}

int tag_index(const std::string& word) noexcept {
  const auto& vocabulary = tag_vocabulary();
  const auto it = std::find(vocabulary.begin(), vocabulary.end(), word);
  return it == vocabulary.end() ? -1 : static_cast<int>(it - vocabulary.begin());
}

bool Style::allows(std::size_t category, const std::string& word) const {
  if (category >= allowed.size() || allowed[category].empty()) return true;
  return std::find(allowed[category].begin(), allowed[category].end(), word) !=
         allowed[category].end();
}

bool Style::empty() const noexcept {
  return std::all_of(allowed.begin(), allowed.end(),
                     [](const auto& words) { return words.empty(); });
}

Style parse_style(const std::string& text) {
  Style style;
  const auto& categories = tag_categories();
  style.allowed.resize(categories.size());
  std::string cleaned = text;
  std::replace(cleaned.begin(), cleaned.end(), ',', ' ');
  std::istringstream in(cleaned);
  std::string word;
  while (in >> word) {
    std::transform(word.begin(), word.end(), word.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    bool found = false;
    for (std::size_t c = 0; c < categories.size() && !found; ++c) {
      const auto& words = categories[c].words;
      if (std::find(words.begin(), words.end(), word) != words.end()) {
        if (std::find(style.allowed[c].begin(), style.allowed[c].end(), word) ==
            style.allowed[c].end()) {
          style.allowed[c].push_back(word);
        }
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& w : tag_vocabulary()) known += (known.empty() ? "" : " ") + w;
      throw StyleError("unknown style tag '" + word + "' in \"" + text +
                       "\"; known tags: " + known);
    }
  }
  return style;
}

}  // namespace tuneloop::corpus

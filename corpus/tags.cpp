#include "corpus/tags.hpp"

#include <algorithm>
#include <sstream>

#include "corpus/composer.hpp"

namespace tuneloop::corpus {

const std::vector<TagCategory>& tag_categories() {
  static const std::vector<TagCategory> categories = [] {
    std::vector<TagCategory> c = {
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
        {"scale", {}},
    };
    for (const auto& key : c[kKeyCategory].words)
      for (const auto& mode : c[kModeCategory].words)
        c[kScaleCategory].words.push_back(scale_tag(mode, key));
    return c;
  }();
  return categories;
}

std::string scale_tag(const std::string& mode, const std::string& key) {
  return key.substr(key.find('-') + 1) + "-" + mode;
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

std::vector<std::string> conditioning_tags(std::vector<std::string> tags,
                                           const std::vector<std::string>& vocabulary,
                                           std::uint64_t seed) {
  const auto in = [](const std::vector<std::string>& words, const std::string& w) {
    return std::find(words.begin(), words.end(), w) != words.end();
  };
  const auto word_of = [&](std::size_t category) -> std::string {
    for (const auto& t : tags)
      if (in(tag_categories()[category].words, t)) return t;
    return "";
  };
  const auto add = [&](const std::string& word) {
    if (in(vocabulary, word) && !in(tags, word)) tags.push_back(word);
  };
  // A scale brings its key and mode.
  if (const auto scale = word_of(kScaleCategory); !scale.empty()) {
    const auto dash = scale.rfind('-');
    if (word_of(kKeyCategory).empty()) add("key-" + scale.substr(0, dash));
    if (word_of(kModeCategory).empty()) add(scale.substr(dash + 1));
  }
  const auto mode = word_of(kModeCategory);
  if (mode.empty()) return tags;
  // A mode without a key gets one drawn from the seed.
  if (word_of(kKeyCategory).empty()) {
    std::vector<std::string> known_keys;
    for (const auto& k : tag_categories()[kKeyCategory].words)
      if (in(vocabulary, k)) known_keys.push_back(k);
    if (known_keys.empty()) return tags;
    tags.push_back(Rng(seed).pick(known_keys));  // neighbouring seeds land on unrelated keys
  }
  // A mode and a key name a scale.
  if (word_of(kScaleCategory).empty()) add(scale_tag(mode, word_of(kKeyCategory)));
  return tags;
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
    const auto allow = [&](std::size_t c, const std::string& w) {
      if (std::find(style.allowed[c].begin(), style.allowed[c].end(), w) == style.allowed[c].end())
        style.allowed[c].push_back(w);
    };
    bool found = false;
    for (std::size_t c = 0; c < categories.size() && !found; ++c) {
      const auto& words = categories[c].words;
      if (std::find(words.begin(), words.end(), word) == words.end()) continue;
      found = true;
      if (c != kScaleCategory) {
        allow(c, word);
        continue;
      }
      // A scale is not drawn but follows from the key and mode: "a-minor" asks for both.
      const auto dash = word.rfind('-');
      allow(kKeyCategory, "key-" + word.substr(0, dash));
      allow(kModeCategory, word.substr(dash + 1));
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

#pragma once
// Which style tags the listener likes, learnt from their feedback on the tracks the loop
// drew with tags, and a Thompson draw of tags for the next free track. Each tag category
// (tempo, instrument, …) is a set of bandit arms: its words and "no word". An arm's value
// is the mean preference score of the tracks drawn with it, shrunk toward the listener's
// mean by kPriorTracks tracks; each track draws every category independently, so each
// arm's mean estimates that word's own effect (a factorial design). Plain C++, no
// LibTorch. Rules: docs/loop.md.
#include <cstdint>
#include <string>
#include <vector>

namespace tuneloop::loop {

/// One category of mutually exclusive words the loop may draw (corpus::tag_categories()
/// without the key and scale: a drawn mode gets its key from the track's seed).
struct TagChoices {
  std::string category;
  std::vector<std::string> words;
};

/// A track drawn with tags and the listener's preference score of it.
struct TagExample {
  std::vector<std::string> tags;  // every word it was generated with
  double label = 0;               // preference score in [0, 1]
  double weight = 1;              // rated 1, listen-only less
};

/// One arm: a category's word, or "" for none of its words.
struct TagArm {
  std::string category;
  std::string word;
  double tracks = 0;  // weight of the examples drawn with it
  double mean = 0;    // posterior mean score
  double sd = 0;      // posterior sd of that mean
};

class TagPreferences {
 public:
  /// Pseudo-tracks at the listener's mean score that every arm starts with.
  static constexpr double kPriorTracks = 1.0;
  /// The spread of scores assumed before there are two examples, and its floor after.
  static constexpr double kPriorSd = 0.25;
  static constexpr double kMinSd = 0.1;

  /// Throws std::invalid_argument on a category without words or a word in two categories.
  /// Words of an example outside `choices` are ignored (e.g. tags fixed by the config).
  static TagPreferences fit(const std::vector<TagChoices>& choices,
                            const std::vector<TagExample>& examples);

  /// One word (or none) per category, in category order: each arm's value drawn from its
  /// posterior widened by `explore` (0 = the best mean; ties to the first arm), the best
  /// kept. Deterministic for a seed.
  std::vector<std::string> draw(std::uint64_t seed, double explore = 1.0) const;

  /// Every arm, category by category, "no word" first.
  const std::vector<TagArm>& arms() const noexcept { return arms_; }
  /// For the log: per category the arm with the best mean, with its mean and tracks.
  std::string summary() const;

 private:
  std::vector<TagArm> arms_;
  std::vector<std::size_t> first_;  // index of each category's first arm, and arms_.size()
};

}  // namespace tuneloop::loop

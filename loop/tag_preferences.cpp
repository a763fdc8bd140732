#include "loop/tag_preferences.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>

namespace tuneloop::loop {

TagPreferences TagPreferences::fit(const std::vector<TagChoices>& choices,
                                   const std::vector<TagExample>& examples) {
  TagPreferences p;
  std::set<std::string> seen;
  for (const auto& c : choices) {
    if (c.words.empty())
      throw std::invalid_argument("tag preferences: category '" + c.category + "' has no words");
    p.first_.push_back(p.arms_.size());
    p.arms_.push_back({c.category, "", 0, 0, 0});
    for (const auto& w : c.words) {
      if (!seen.insert(w).second)
        throw std::invalid_argument("tag preferences: '" + w + "' is in two categories");
      p.arms_.push_back({c.category, w, 0, 0, 0});
    }
  }
  p.first_.push_back(p.arms_.size());

  // The listener's mean score and spread over these examples: every arm's prior.
  double n = 0, sum = 0, squares = 0;
  for (const auto& e : examples) {
    n += e.weight;
    sum += e.weight * e.label;
  }
  const double prior_mean = n > 0 ? sum / n : 0.5;
  for (const auto& e : examples) squares += e.weight * std::pow(e.label - prior_mean, 2);
  const double spread =
      examples.size() >= 2 && n > 0 ? std::max(kMinSd, std::sqrt(squares / n)) : kPriorSd;

  std::vector<double> sums(p.arms_.size(), 0.0);
  for (const auto& e : examples)
    for (std::size_t c = 0; c + 1 < p.first_.size(); ++c) {
      std::size_t arm = p.first_[c];  // no word of this category, unless one is found
      for (std::size_t a = p.first_[c] + 1; a < p.first_[c + 1]; ++a)
        if (std::find(e.tags.begin(), e.tags.end(), p.arms_[a].word) != e.tags.end()) arm = a;
      p.arms_[arm].tracks += e.weight;
      sums[arm] += e.weight * e.label;
    }
  for (std::size_t a = 0; a < p.arms_.size(); ++a) {
    TagArm& arm = p.arms_[a];
    arm.mean = (sums[a] + kPriorTracks * prior_mean) / (arm.tracks + kPriorTracks);
    arm.sd = spread / std::sqrt(arm.tracks + kPriorTracks);
  }
  return p;
}

std::vector<std::string> TagPreferences::draw(std::uint64_t seed, double explore) const {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<std::string> words;
  for (std::size_t c = 0; c + 1 < first_.size(); ++c) {
    std::size_t best = first_[c];
    double best_value = -1e300;
    for (std::size_t a = first_[c]; a < first_[c + 1]; ++a) {
      const double z = normal(rng);  // drawn for every arm, so a seed's draws do not shift
      const double value = arms_[a].mean + std::max(0.0, explore) * arms_[a].sd * z;
      if (value > best_value) {
        best_value = value;
        best = a;
      }
    }
    if (!arms_[best].word.empty()) words.push_back(arms_[best].word);
  }
  return words;
}

std::string TagPreferences::summary() const {
  std::string out;
  for (std::size_t c = 0; c + 1 < first_.size(); ++c) {
    std::size_t best = first_[c];
    for (std::size_t a = first_[c]; a < first_[c + 1]; ++a)
      if (arms_[a].mean > arms_[best].mean) best = a;
    char line[160];
    std::snprintf(line, sizeof line, "%s%s %s (%.2f over %.1f tracks)", out.empty() ? "" : ", ",
                  arms_[best].category.c_str(),
                  arms_[best].word.empty() ? "none" : arms_[best].word.c_str(), arms_[best].mean,
                  arms_[best].tracks);
    out += line;
  }
  return out;
}

}  // namespace tuneloop::loop

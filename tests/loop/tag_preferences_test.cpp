// Tag preferences: Thompson draws of style tags from a listener's scores of tracks drawn
// with tags. Synthetic tastes with known answers; plain C++, no model.
#include "loop/tag_preferences.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

namespace {

using namespace tuneloop::loop;

const std::vector<TagChoices> kChoices = {
    {"tempo", {"slow", "medium", "fast"}},
    {"instrument", {"piano", "strings", "lead", "bass"}},
    {"drums", {"drums", "nodrums"}},
};

bool has(const std::vector<std::string>& words, const std::string& w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

// Tracks drawn as the loop draws them before it knows anything (each category's word or
// none, uniformly), scored by a taste that likes slow and piano and dislikes fast, with noise.
std::vector<TagExample> tasted(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.1);
  std::vector<TagExample> out;
  for (int i = 0; i < n; ++i) {
    TagExample e;
    for (const auto& c : kChoices) {
      const auto k = std::uniform_int_distribution<std::size_t>(0, c.words.size())(rng);
      if (k < c.words.size()) e.tags.push_back(c.words[k]);
    }
    e.label = 0.5 + 0.25 * has(e.tags, "slow") - 0.25 * has(e.tags, "fast") +
              0.15 * has(e.tags, "piano") + noise(rng);
    e.label = std::clamp(e.label, 0.0, 1.0);
    out.push_back(e);
  }
  return out;
}

std::map<std::string, int> counts(const TagPreferences& p, int draws, double explore) {
  std::map<std::string, int> c;
  for (int s = 0; s < draws; ++s)
    for (const auto& w : p.draw(static_cast<std::uint64_t>(s) + 1, explore)) ++c[w];
  return c;
}

TEST(TagPreferencesTest, WithoutExamplesEveryWordAndNoneAreDrawnAlike) {
  const auto p = TagPreferences::fit(kChoices, {});
  const int draws = 4000;
  auto c = counts(p, draws, 1.0);
  // Tempo: none, slow, medium, fast each about a quarter (sd of a count about 27).
  int tempo_words = 0;
  for (const std::string w : {"slow", "medium", "fast"}) {
    EXPECT_NEAR(c[w], draws / 4, 150) << w;
    tempo_words += c[w];
  }
  EXPECT_NEAR(draws - tempo_words, draws / 4, 150) << "no tempo word";
  EXPECT_NEAR(c["drums"], draws / 3, 150);
  EXPECT_NEAR(c["nodrums"], draws / 3, 150);
}

TEST(TagPreferencesTest, LearnsASyntheticTasteFromFortyTracks) {
  const auto p = TagPreferences::fit(kChoices, tasted(40, 7));
  const int draws = 1000;
  auto c = counts(p, draws, 1.0);
  // Thompson draws still explore, but a liked word wins most draws of its category and a
  // disliked one few (untaught, each tempo arm would win a quarter of them).
  EXPECT_GT(c["slow"], draws * 6 / 10);
  EXPECT_LT(c["fast"], draws / 10);
  EXPECT_GT(c["piano"], std::max({c["strings"], c["lead"], c["bass"]}));
  // The mean alone picks the liked words.
  const auto best = p.draw(1, 0.0);
  EXPECT_TRUE(has(best, "slow"));
  EXPECT_TRUE(has(best, "piano"));
  // Arms: "none" first in each category, and the posterior means ordered as the taste.
  std::map<std::string, double> mean;
  for (const auto& a : p.arms()) mean[a.category + "/" + a.word] = a.mean;
  EXPECT_GT(mean["tempo/slow"], mean["tempo/"]);
  EXPECT_GT(mean["tempo/"], mean["tempo/fast"]);
  EXPECT_EQ(p.arms().front().word, "");
  EXPECT_NE(p.summary().find("tempo slow"), std::string::npos) << p.summary();
}

TEST(TagPreferencesTest, AnArmWithFewTracksIsLessSureThanOneWithMany) {
  std::vector<TagExample> examples;
  for (int i = 0; i < 12; ++i) examples.push_back({{"slow"}, i % 2 ? 0.7 : 0.5, 1.0});
  examples.push_back({{"fast"}, 0.6, 1.0});
  const auto p = TagPreferences::fit(kChoices, examples);
  double slow_sd = 0, fast_sd = 0, medium_tracks = -1;
  for (const auto& a : p.arms()) {
    if (a.word == "slow") slow_sd = a.sd;
    if (a.word == "fast") fast_sd = a.sd;
    if (a.word == "medium") medium_tracks = a.tracks;
  }
  EXPECT_LT(slow_sd, fast_sd);
  EXPECT_EQ(medium_tracks, 0.0);
}

TEST(TagPreferencesTest, DrawsAreDeterministicForASeed) {
  const auto p = TagPreferences::fit(kChoices, tasted(20, 3));
  int differ = 0;
  for (std::uint64_t s = 1; s <= 20; ++s) differ += p.draw(s) != p.draw(s + 100);
  EXPECT_GT(differ, 5);  // and different seeds draw different tags
  EXPECT_EQ(TagPreferences::fit(kChoices, tasted(20, 3)).draw(9), p.draw(9));
}

TEST(TagPreferencesTest, WordsOutsideTheChoicesAreIgnored) {
  // "minor" (fixed by the config, say) is in no category here: it must not change a thing.
  auto plain = tasted(30, 5);
  auto with_fixed = plain;
  for (auto& e : with_fixed) e.tags.push_back("minor");
  const auto a = TagPreferences::fit(kChoices, plain), b = TagPreferences::fit(kChoices, with_fixed);
  for (std::uint64_t s = 1; s <= 10; ++s) EXPECT_EQ(a.draw(s), b.draw(s));
  for (const auto& w : b.draw(1)) EXPECT_NE(w, "minor");
}

TEST(TagPreferencesTest, RejectsAnEmptyCategoryOrAWordInTwo) {
  EXPECT_THROW(TagPreferences::fit({{"tempo", {}}}, {}), std::invalid_argument);
  EXPECT_THROW(TagPreferences::fit({{"a", {"x", "y"}}, {"b", {"y"}}}, {}), std::invalid_argument);
}

}  // namespace

// Keeping a varied best of each slot's candidates.
#include "loop/candidate_selection.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace tuneloop::loop;

namespace {

std::vector<float> point(std::mt19937_64& rng, float spread, const std::vector<float>& around) {
  std::normal_distribution<float> n(0.0f, spread);
  std::vector<float> e = around;
  for (auto& v : e) v += n(rng);
  return e;
}

double mean_reward(const std::vector<Candidate>& pool, const std::vector<std::size_t>& chosen) {
  double s = 0;
  for (auto i : chosen) s += pool[i].reward;
  return s / static_cast<double>(chosen.size());
}

}  // namespace

TEST(CandidateSelection, RaisesTheMeanRewardOverOneCandidateAndKeepsTheBatchVaried) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u;
  const std::vector<float> origin(16, 0.0f);
  std::vector<Candidate> pool;
  for (int slot = 0; slot < 8; ++slot)
    for (int c = 0; c < 4; ++c) pool.push_back({slot, point(rng, 1.0f, origin), u(rng)});
  std::vector<std::size_t> first;  // N = 1: each slot's first candidate
  for (std::size_t i = 0; i < pool.size(); i += 4) first.push_back(i);
  const auto chosen = select_varied(pool, 8, {});
  ASSERT_EQ(chosen.size(), 8u);
  for (int slot = 0; slot < 8; ++slot) EXPECT_EQ(pool[chosen[slot]].slot, slot);
  EXPECT_GT(mean_reward(pool, chosen), mean_reward(pool, first) + 0.1);
}

TEST(CandidateSelection, PrefersAnyOtherCandidateToANearDuplicateOfTheBatch) {
  std::mt19937_64 rng(2);
  const std::vector<float> origin(8, 0.0f);
  const auto liked = point(rng, 1.0f, origin);
  std::vector<Candidate> pool;
  for (int slot = 0; slot < 4; ++slot) {
    pool.push_back({slot, point(rng, 0.01f, liked), 1.0});       // the same sound, rated best
    pool.push_back({slot, point(rng, 1.0f, origin), 0.0});       // something else
  }
  const auto chosen = select_varied(pool, 4, {});
  int copies = 0;
  for (auto i : chosen) copies += pool[i].reward == 1.0;
  EXPECT_EQ(copies, 1);  // the best once, then the others
}

TEST(CandidateSelection, WithNoDiversityWeightKeepsTheBestRewardOfEachSlot) {
  std::mt19937_64 rng(3);
  const std::vector<float> origin(4, 0.0f);
  std::vector<Candidate> pool;
  for (int slot = 0; slot < 3; ++slot)
    for (int c = 0; c < 3; ++c) pool.push_back({slot, point(rng, 1.0f, origin), static_cast<double>(c == 1)});
  SelectionOptions o;
  o.diversity = 0;
  o.near_duplicate = 0;
  const auto chosen = select_varied(pool, 3, o);
  for (std::size_t k = 0; k < chosen.size(); ++k) EXPECT_EQ(chosen[k], k * 3 + 1);
  EXPECT_EQ(select_varied(pool, 3, o), chosen);  // deterministic
}

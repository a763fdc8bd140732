// The listener's reward model on synthetic tastes: a hidden linear taste over random
// embeddings, rated with noise, as a few dozen ratings would be.
#include "loop/reward_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace tuneloop::loop;

namespace {

struct Taste {
  std::vector<double> direction;
  double like(const std::vector<float>& e) const {
    double s = 0;
    for (std::size_t i = 0; i < e.size(); ++i) s += direction[i] * e[i];
    return 1.0 / (1.0 + std::exp(-s));
  }
};

std::vector<float> random_embedding(std::mt19937_64& rng, std::size_t d) {
  std::normal_distribution<float> n;
  std::vector<float> e(d);
  for (auto& v : e) v = n(rng);
  return e;
}

// `count` rated tracks of a taste in `d` dimensions (noise sd 0.1 on the label).
std::vector<RewardExample> rated(const Taste& t, int count, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.1);
  std::vector<RewardExample> out;
  for (int i = 0; i < count; ++i) {
    RewardExample x;
    x.embedding = random_embedding(rng, d);
    x.label = std::clamp(t.like(x.embedding) + noise(rng), 0.0, 1.0);
    x.rated = true;
    out.push_back(std::move(x));
  }
  return out;
}

Taste random_taste(std::size_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n;
  Taste t;
  // The taste lives in a few dimensions, as a listener's taste does in a big embedding.
  t.direction.assign(d, 0.0);
  for (int k = 0; k < 4; ++k) t.direction[static_cast<std::size_t>(k * 7) % d] = n(rng);
  return t;
}

double pairwise_accuracy(const RewardModel& m, const std::vector<RewardExample>& held_out) {
  int right = 0, pairs = 0;
  for (std::size_t i = 0; i < held_out.size(); ++i)
    for (std::size_t j = i + 1; j < held_out.size(); ++j) {
      const double truth = held_out[i].label - held_out[j].label;
      const double guess = m.predict(held_out[i].embedding) - m.predict(held_out[j].embedding);
      right += (truth > 0) == (guess > 0);
      ++pairs;
    }
  return static_cast<double>(right) / pairs;
}

}  // namespace

TEST(RewardModel, RanksHeldOutTracksOfASyntheticTasteAboveChanceFrom30Ratings) {
  // 64 dimensions, 30 ratings: fewer ratings than dimensions, as in a listener's first weeks.
  double total = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const Taste t = random_taste(64, seed);
    const auto model = RewardModel::fit(rated(t, 30, 64, seed * 11));
    total += pairwise_accuracy(model, rated(t, 40, 64, seed * 13));
  }
  // Chance is 0.5; the margin is what the prior must give on this little data.
  EXPECT_GT(total / 5, 0.6);  // measured 0.65
}

TEST(RewardModel, LeaveOneOutAccuracyTracksTheTasteAndIsNearChanceOnNoise) {
  const Taste t = random_taste(32, 3);
  const auto learnable = loo_pairwise_accuracy(rated(t, 40, 32, 5));
  ASSERT_TRUE(learnable.has_value());
  EXPECT_GT(*learnable, 0.65);

  auto noise = rated(t, 40, 32, 7);
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u;
  for (auto& x : noise) x.label = u(rng);  // labels unrelated to the embeddings
  const auto chance = loo_pairwise_accuracy(noise);
  ASSERT_TRUE(chance.has_value());
  EXPECT_LT(*chance, 0.62);
}

TEST(RewardModel, ThompsonDrawsAreDeterministicForASeedAndCentredOnTheMean) {
  const Taste t = random_taste(16, 4);
  const auto data = rated(t, 20, 16, 8);
  const auto model = RewardModel::fit(data);
  EXPECT_EQ(model.sample_weights(42), model.sample_weights(42));
  EXPECT_NE(model.sample_weights(42), model.sample_weights(43));
  const auto mean_weights = model.sample_weights(42, 0.0);
  EXPECT_DOUBLE_EQ(model.predict_with(mean_weights, data[0].embedding), model.predict(data[0].embedding));
}

TEST(RewardModel, SurvivesAJsonRoundTrip) {
  const Taste t = random_taste(8, 5);
  const auto data = rated(t, 12, 8, 6);
  const auto model = RewardModel::fit(data);
  const auto back = RewardModel::from_json(model.to_json());
  EXPECT_NEAR(back.predict(data[3].embedding), model.predict(data[3].embedding), 1e-9);
  EXPECT_THROW(RewardModel::from_json("{\"format\":\"other\"}"), std::runtime_error);
}

TEST(RewardModel, RefusesNoExamplesAndMismatchedEmbeddings) {
  EXPECT_THROW(RewardModel::fit({}), std::invalid_argument);
  std::vector<RewardExample> bad(2);
  bad[0].embedding = {1, 2};
  bad[1].embedding = {1, 2, 3};
  EXPECT_THROW(RewardModel::fit(bad), std::invalid_argument);
}

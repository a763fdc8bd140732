// Reference values come from published examples or are derived by hand in the comments,
// never from this implementation itself.
#include "loop/statistics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

namespace {

using namespace tuneloop::loop;

// Darwin's Zea mays data as analysed by Fisher (The Design of Experiments, 1935, §17,
// §21): height differences cross- minus self-fertilised, in eighths of an inch, n = 15.
const std::vector<double> kDarwin = {49, -67, 8, 16, 6, 23, 28, 41, 14, 29, 56, 24, 75, 60, -48};

TEST(Statistics, MeanAndSampleStandardDeviation) {
  const std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(mean(v), 5.0);
  EXPECT_DOUBLE_EQ(sample_sd(v), std::sqrt(32.0 / 7.0));  // Σ(x − 5)² = 32
  EXPECT_THROW(mean({}), std::invalid_argument);
  EXPECT_THROW(sample_sd({1}), std::invalid_argument);
}

TEST(Statistics, BootstrapIntervalIsReproducibleAndBracketsTheMean) {
  std::vector<double> v(100);
  std::iota(v.begin(), v.end(), 1.0);  // mean 50.5, sd 29.01, se 2.90
  const auto a = bootstrap_mean_ci(v, 0.95, 4000, 42);
  const auto b = bootstrap_mean_ci(v, 0.95, 4000, 42);
  EXPECT_EQ(a.lower, b.lower);
  EXPECT_EQ(a.upper, b.upper);
  EXPECT_DOUBLE_EQ(a.estimate, 50.5);
  // Normal theory: 50.5 ± 1.96·2.90 = [44.8, 56.2]; the bootstrap lands close by.
  EXPECT_NEAR(a.lower, 44.8, 0.8);
  EXPECT_NEAR(a.upper, 56.2, 0.8);
  const auto narrow = bootstrap_mean_ci(v, 0.5, 4000, 42);
  EXPECT_GT(narrow.lower, a.lower);
  EXPECT_LT(narrow.upper, a.upper);
}

TEST(Statistics, BootstrapOfConstantValuesHasZeroWidth) {
  const auto ci = bootstrap_mean_ci({3.5, 3.5, 3.5}, 0.95, 500, 1);
  EXPECT_DOUBLE_EQ(ci.lower, 3.5);
  EXPECT_DOUBLE_EQ(ci.upper, 3.5);
  EXPECT_THROW(bootstrap_mean_ci({}, 0.95), std::invalid_argument);
  EXPECT_THROW(bootstrap_mean_ci({1.0}, 1.0), std::invalid_argument);
}

TEST(Statistics, PairedDifferencesAreAfterMinusBefore) {
  EXPECT_EQ(paired_differences({1, 2, 3}, {2, 2, 5}), (std::vector<double>{1, 0, 2}));
  EXPECT_THROW(paired_differences({1}, {1, 2}), std::invalid_argument);
}

TEST(Wilcoxon, DarwinsDataGiveThePublishedExactPValue) {
  // SciPy's documentation of scipy.stats.wilcoxon uses this example: statistic 24,
  // two-sided exact p = 0.041259765625 (= 1352 / 32768).
  const auto r = wilcoxon_signed_rank(kDarwin);
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.n, 15);
  EXPECT_DOUBLE_EQ(r.w_minus, 24);  // |48| is rank 10, |67| rank 14
  EXPECT_DOUBLE_EQ(r.w_plus, 96);   // 120 − 24
  EXPECT_DOUBLE_EQ(r.statistic, 24);
  EXPECT_DOUBLE_EQ(r.p_value, 0.041259765625);
}

TEST(Wilcoxon, FiveAllPositiveDifferencesGiveTheSmallestPossiblePValue) {
  // Only the all-plus and all-minus patterns are as extreme: 2 / 2^5.
  const auto r = wilcoxon_signed_rank({0.5, 1.0, 1.5, 2.0, 2.5});
  EXPECT_DOUBLE_EQ(r.w_plus, 15);
  EXPECT_DOUBLE_EQ(r.p_value, 0.0625);
  const auto ten = wilcoxon_signed_rank({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_DOUBLE_EQ(ten.p_value, 2.0 / 1024.0);
}

TEST(Wilcoxon, DropsZeroDifferences) {
  const auto r = wilcoxon_signed_rank({0, 0, 0.5, 1.0, 1.5, 2.0, 2.5});
  EXPECT_EQ(r.zeros, 2);
  EXPECT_EQ(r.n, 5);
  EXPECT_DOUBLE_EQ(r.p_value, 0.0625);
  EXPECT_DOUBLE_EQ(wilcoxon_signed_rank({0, 0}).p_value, 1.0);
}

TEST(Wilcoxon, TiedDifferencesShareMidRanksInTheExactDistribution) {
  // |d| = 1, 1, 2: ranks 1.5, 1.5, 3. W+ of the 8 sign patterns: 0, 1.5, 1.5, 3, 3,
  // 4.5, 4.5, 6. Observed d = (+1, −1, +2) → W+ = 4.5; P(W+ ≥ 4.5) = 3/8,
  // P(W+ ≤ 4.5) = 7/8, so p = 2·3/8 = 0.75.
  const auto r = wilcoxon_signed_rank({1, -1, 2});
  EXPECT_DOUBLE_EQ(r.w_plus, 4.5);
  EXPECT_DOUBLE_EQ(r.w_minus, 1.5);
  EXPECT_DOUBLE_EQ(r.p_value, 0.75);
}

TEST(Wilcoxon, AboveTwentyUsesTheNormalApproximationWithCorrections) {
  // n = 21 distinct positive differences: W+ = 231, μ = 21·22/4 = 115.5,
  // σ² = 21·22·43/24 = 827.75; z = (115.5 − 0.5)/√827.75 = 3.99709…
  std::vector<double> d(21);
  std::iota(d.begin(), d.end(), 1.0);
  const auto r = wilcoxon_signed_rank(d);
  EXPECT_FALSE(r.exact);
  EXPECT_NEAR(r.z, 115.0 / std::sqrt(827.75), 1e-12);
  EXPECT_NEAR(r.p_value, 6.4115e-5, 0.0005e-5);  // 2·(1 − Φ(3.99713))
  // All 21 tied: σ² = 827.75 − (21³ − 21)/48 = 635.25; z = 115/√635.25 = 4.5627…
  const auto tied = wilcoxon_signed_rank(std::vector<double>(21, 1.0));
  EXPECT_NEAR(tied.z, 115.0 / std::sqrt(635.25), 1e-12);
}

TEST(PermutationTest, DarwinsDataGiveFishersExactResult) {
  // Fisher, §21: of the 2^15 = 32768 sign patterns, 863 give a total at least as large
  // as the observed 314 (one-sided 2.634 %), so two-sided p = 1726 / 32768.
  const auto r = paired_permutation_test(kDarwin);
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.patterns, 32768);
  EXPECT_NEAR(r.mean_difference, 314.0 / 15.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.p_value, 1726.0 / 32768.0);
}

TEST(PermutationTest, MonteCarloAboveSixteenAgreesWithTheBinomialValue) {
  // 13 differences of +1 and 4 of −1 (n = 17, sum 9). A sign pattern with k minuses sums
  // to 17 − 2k, so |sum| ≥ 9 ⇔ k ≤ 4 or k ≥ 13:
  // p = 2·(C(17,0)+C(17,1)+C(17,2)+C(17,3)+C(17,4))/2^17 = 2·3214/131072 = 0.049042…
  std::vector<double> d(17, 1.0);
  for (int i = 0; i < 4; ++i) d[i] = -1.0;
  const auto r = paired_permutation_test(d, 100000, 7);
  EXPECT_FALSE(r.exact);
  EXPECT_EQ(r.patterns, 100000);
  EXPECT_NEAR(r.p_value, 6428.0 / 131072.0, 0.004);  // ≈ 6 standard errors
  EXPECT_EQ(paired_permutation_test(d, 1000, 3).p_value,
            paired_permutation_test(d, 1000, 3).p_value);
}

TEST(EffectSizes, CohensDzIsMeanOverStandardDeviation) {
  EXPECT_DOUBLE_EQ(cohens_dz({1, 2, 3}), 2.0);  // mean 2, sd 1
  // Darwin's data: Fisher's paired t = 2.148 with 14 df, and t = d_z·√n.
  EXPECT_NEAR(cohens_dz(kDarwin) * std::sqrt(15.0), 2.148, 0.001);
  EXPECT_THROW(cohens_dz({1, 1, 1}), std::invalid_argument);
}

TEST(EffectSizes, RankBiserialIsTheShareOfFavourableMinusUnfavourableRanks) {
  // Darwin: (96 − 24)/120 = 0.6
  EXPECT_DOUBLE_EQ(rank_biserial(wilcoxon_signed_rank(kDarwin)), 0.6);
  EXPECT_DOUBLE_EQ(rank_biserial(wilcoxon_signed_rank({-1, -2, -3})), -1.0);
  EXPECT_DOUBLE_EQ(rank_biserial(wilcoxon_signed_rank({0, 0})), 0.0);
}

TEST(Diversity, IsTheMeanPairwiseStandardisedDistance) {
  EXPECT_DOUBLE_EQ(diversity({{0, 0}, {3, 4}}, {1, 1}), 5.0);
  // Scales (1, 2): points become (0,0), (3,2), (0,2); distances √13, 2, 3.
  EXPECT_DOUBLE_EQ(diversity({{0, 0}, {3, 4}, {0, 4}}, {1, 2}), (std::sqrt(13.0) + 5.0) / 3.0);
  // A feature with scale 0 carries no information and is left out.
  EXPECT_DOUBLE_EQ(diversity({{0, 7}, {3, 7}}, {1, 0}), 3.0);
  EXPECT_THROW(diversity({{1, 2}}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(diversity({{1, 2}, {1}}, {1, 1}), std::invalid_argument);
}

TEST(Diversity, ScalesArePerFeatureStandardDeviations) {
  const auto scales = feature_scales({{1, 10}, {3, 10}, {5, 10}});
  ASSERT_EQ(scales.size(), 2u);
  EXPECT_DOUBLE_EQ(scales[0], 2.0);
  EXPECT_DOUBLE_EQ(scales[1], 0.0);
}

}  // namespace

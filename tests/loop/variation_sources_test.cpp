// Which liked tracks a batch varies: best first, each lineage once, the least varied first.
#include "loop/variation_sources.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace tuneloop::loop;

namespace {

std::vector<std::int64_t> ids(const std::vector<LikedSource>& tracks) {
  std::vector<std::int64_t> out;
  for (const auto& t : tracks) out.push_back(t.id);
  return out;
}

}  // namespace

TEST(VariationSources, WithNothingVariedYetTheOrderIsBestScoreFirst) {
  const std::vector<LikedSource> liked = {{3, "c", 0.7}, {1, "a", 0.9}, {2, "b", 0.9}};
  EXPECT_EQ(ids(order_for_variation(liked, {{1, {}}, {2, {}}, {3, {}}})), (std::vector<std::int64_t>{1, 2, 3}));
}

TEST(VariationSources, ALineageVariedBeforeWaitsBehindOnesThatWereNot) {
  // Track 1 was varied twice already (tracks 4 and 5); 2 and 3 never.
  const std::vector<TrackOrigin> history = {{1, {}}, {2, {}}, {3, {}}, {4, 1}, {5, 1}};
  const std::vector<LikedSource> liked = {{1, "a", 0.95}, {2, "b", 0.9}, {3, "c", 0.8}};
  EXPECT_EQ(ids(order_for_variation(liked, history)), (std::vector<std::int64_t>{2, 3, 1}));
}

TEST(VariationSources, AVariationCountsForTheLineageItCameFrom) {
  // 6 is a variation of 4, itself a variation of 1: liking 6 is liking lineage 1 again.
  const std::vector<TrackOrigin> history = {{1, {}}, {2, {}}, {4, 1}, {6, 4}};
  const std::vector<LikedSource> liked = {{6, "f", 0.99}, {1, "a", 0.95}, {2, "b", 0.5}};
  // Lineage 1 has 2 variations (4, 6), lineage 2 none: 2 first, then the best of lineage 1;
  // lineage 1's other track is not varied in the same batch.
  EXPECT_EQ(ids(order_for_variation(liked, history)), (std::vector<std::int64_t>{2, 6}));
}

TEST(VariationSources, OneBatchVariesEachLineageOnceWithItsBestTrack) {
  // Two liked tracks of lineage 1 score above lineage 2's: the second slot still goes to 2,
  // and 1 (lineage 1 again: its variations would sound like 4's) gets none.
  const std::vector<TrackOrigin> history = {{1, {}}, {2, {}}, {4, 1}, {7, 2}};
  const std::vector<LikedSource> liked = {{4, "d", 0.9}, {1, "a", 0.8}, {2, "b", 0.7}};
  EXPECT_EQ(ids(order_for_variation(liked, history)), (std::vector<std::int64_t>{4, 2}));
}

TEST(VariationSources, ACycleInTheRecordedOriginsIsOneLineage) {
  // 1 and 2 name each other (a corrupted database): one lineage with two variations.
  const std::vector<TrackOrigin> history = {{1, 2}, {2, 1}, {3, {}}};
  const std::vector<LikedSource> liked = {{1, "a", 0.9}, {2, "b", 0.8}, {3, "c", 0.1}};
  EXPECT_EQ(ids(order_for_variation(liked, history)), (std::vector<std::int64_t>{3, 1}));
}

TEST(VariationSources, VariationOfIsReadFromATracksParameters) {
  EXPECT_EQ(variation_of(R"({"seed":3,"variation_of":42})"), 42);
  EXPECT_EQ(variation_of(R"({"seed":3})"), std::nullopt);
  EXPECT_EQ(variation_of(R"({"variation_of":"42"})"), std::nullopt);
  EXPECT_EQ(variation_of("not json"), std::nullopt);
}

#pragma once
// Which of the tracks the listener liked most the next batch makes variations of
// (generation.liked_fraction). A track made as a variation belongs to the lineage of the
// track it varies (and so on back). A batch varies each lineage at most once, because
// variations of one lineage sound nearly the same (docs/loop.md), and the lineage varied
// least often so far comes first, so over many iterations the variations do not keep
// returning to one early favourite and its descendants; within a lineage, the best score.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tuneloop::loop {

struct LikedSource {
  std::int64_t id = 0;
  std::string path;
  double score = 0;  // preference score; higher is liked more
};

/// A generated track's place in the lineages: the track it was made as a variation of.
struct TrackOrigin {
  std::int64_t id = 0;
  std::optional<std::int64_t> variation_of;
};

/// One liked track per lineage, in the order the batch's variation slots take them: the
/// lineages with the fewest variations made so far first, ties broken by the higher score,
/// then by the order given; each lineage's track is its best-scored one. `history` is every
/// track of the listener; a track not in it is its own lineage.
std::vector<LikedSource> order_for_variation(std::vector<LikedSource> liked,
                                            const std::vector<TrackOrigin>& history);

/// `variation_of` from a track's generation parameters (JSON text); empty when absent or
/// unreadable.
std::optional<std::int64_t> variation_of(const std::string& params_json);

}  // namespace tuneloop::loop

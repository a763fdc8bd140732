#pragma once
// Generate many, keep a varied best: each slot of a batch has several candidates (different
// seeds); the selection keeps, slot by slot, the candidate with the best reward plus a bonus
// for being far from what the batch already holds, and never a near-duplicate of it while
// another candidate is not one. Plain C++; the embeddings come from model::Engine::preview.
#include <cstddef>
#include <vector>

namespace tuneloop::loop {

struct Candidate {
  int slot = 0;
  std::vector<float> embedding;
  double reward = 0;  // the reward model's score (a Thompson draw, or its mean)
};

struct SelectionOptions {
  // Weight of the distance bonus against the reward, both standardised over the pool: 0 =
  // reward only; 1 = a candidate as far from the batch as a typical pair is worth one
  // standard deviation of reward.
  double diversity = 1.0;
  // Two candidates closer than this fraction of the pool's median pairwise distance are
  // near-duplicates.
  double near_duplicate = 0.25;
};

/// The chosen candidate's index into `pool` for each slot 0..slots-1 (slots without
/// candidates are skipped). `kept` are embeddings already in the batch (e.g. seeded
/// tracks). Deterministic: ties go to the lower index.
std::vector<std::size_t> select_varied(const std::vector<Candidate>& pool, int slots,
                                       const SelectionOptions& options,
                                       const std::vector<std::vector<float>>& kept = {});

/// Euclidean distances between embeddings standardised per dimension over `rows`.
/// Result [i][j]; an empty result for fewer than two rows.
std::vector<std::vector<double>> standardised_distances(const std::vector<std::vector<float>>& rows);

}  // namespace tuneloop::loop

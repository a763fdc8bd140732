#include "loop/candidate_selection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "loop/statistics.hpp"

namespace tuneloop::loop {

std::vector<std::vector<double>> standardised_distances(const std::vector<std::vector<float>>& rows) {
  const std::size_t n = rows.size();
  if (n < 2) return {};
  const std::size_t d = rows.front().size();
  std::vector<double> mean(d, 0.0), sd(d, 0.0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < d && i < r.size(); ++i) mean[i] += r[i] / static_cast<double>(n);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < d && i < r.size(); ++i) sd[i] += std::pow(r[i] - mean[i], 2) / static_cast<double>(n);
  for (double& v : sd) v = v > 1e-12 ? std::sqrt(v) : 0.0;
  std::vector<std::vector<double>> out(n, std::vector<double>(n, 0.0));
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = a + 1; b < n; ++b) {
      double s = 0;
      for (std::size_t i = 0; i < d && i < rows[a].size() && i < rows[b].size(); ++i)
        if (sd[i] > 0) s += std::pow((rows[a][i] - rows[b][i]) / sd[i], 2);
      out[a][b] = out[b][a] = std::sqrt(s);
    }
  return out;
}

std::vector<std::size_t> select_varied(const std::vector<Candidate>& pool, int slots,
                                       const SelectionOptions& o,
                                       const std::vector<std::vector<float>>& kept) {
  std::vector<std::vector<float>> rows;
  for (const auto& c : pool) rows.push_back(c.embedding);
  for (const auto& k : kept) rows.push_back(k);
  const auto dist = standardised_distances(rows);
  std::vector<double> pairs;
  for (std::size_t a = 0; a < pool.size(); ++a)
    for (std::size_t b = a + 1; b < pool.size(); ++b) pairs.push_back(dist[a][b]);
  const double typical = pairs.empty() ? 1.0 : std::max(percentile(pairs, 50), 1e-12);

  std::vector<double> rewards;
  for (const auto& c : pool) rewards.push_back(c.reward);
  const double reward_mean = rewards.empty() ? 0.0 : mean(rewards);
  const double reward_sd = rewards.size() > 1 ? std::max(sample_sd(rewards), 1e-12) : 1.0;

  std::vector<std::size_t> batch;  // rows in the batch: kept ones, then chosen candidates
  for (std::size_t k = 0; k < kept.size(); ++k) batch.push_back(pool.size() + k);
  std::vector<std::size_t> chosen;
  for (int slot = 0; slot < slots; ++slot) {
    std::size_t best = pool.size();
    double best_score = -std::numeric_limits<double>::infinity();
    bool best_duplicate = true;
    for (std::size_t i = 0; i < pool.size(); ++i) {
      if (pool[i].slot != slot) continue;
      double nearest = std::numeric_limits<double>::infinity();
      for (std::size_t j : batch) nearest = std::min(nearest, dist.empty() ? nearest : dist[i][j]);
      const bool duplicate = nearest < o.near_duplicate * typical;
      const double spread = std::isfinite(nearest) ? std::min(nearest / typical, 1.0) : 1.0;
      const double score = (pool[i].reward - reward_mean) / reward_sd + o.diversity * spread;
      // A candidate that is not a near-duplicate always beats one that is.
      if ((best_duplicate && !duplicate) || (duplicate == best_duplicate && score > best_score)) {
        best = i;
        best_score = score;
        best_duplicate = duplicate;
      }
    }
    if (best == pool.size()) continue;
    chosen.push_back(best);
    batch.push_back(best);
  }
  return chosen;
}

}  // namespace tuneloop::loop

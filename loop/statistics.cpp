#include "loop/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace tuneloop::loop {

namespace {

// Differences that agree to this (relative) precision are ties; rating means computed
// along different paths must not turn a tie into two ranks.
bool nearly_equal(double a, double b) {
  return std::fabs(a - b) <= 1e-12 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

void check_rows(const std::vector<std::vector<double>>& rows, const char* what) {
  if (rows.size() < 2)
    throw std::invalid_argument(std::string(what) + ": needs at least 2 rows, got " +
                                std::to_string(rows.size()));
  for (std::size_t i = 1; i < rows.size(); ++i)
    if (rows[i].size() != rows[0].size())
      throw std::invalid_argument(std::string(what) + ": row " + std::to_string(i) + " has " +
                                  std::to_string(rows[i].size()) + " features, row 0 has " +
                                  std::to_string(rows[0].size()));
}

}  // namespace

double percentile(std::vector<double> values, double p) {
  if (values.empty()) throw std::invalid_argument("percentile: no values");
  if (!(p >= 0.0 && p <= 100.0))
    throw std::invalid_argument("percentile: p = " + std::to_string(p) + " is outside 0..100");
  std::sort(values.begin(), values.end());
  const double h = (static_cast<double>(values.size()) - 1.0) * p / 100.0;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  if (lo + 1 >= values.size()) return values.back();
  return values[lo] + (h - static_cast<double>(lo)) * (values[lo + 1] - values[lo]);
}

double mean(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("mean: no values");
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double sample_sd(const std::vector<double>& values) {
  if (values.size() < 2)
    throw std::invalid_argument("sample_sd: needs at least 2 values, got " +
                                std::to_string(values.size()));
  const double m = mean(values);
  double sum = 0;
  for (double v : values) sum += (v - m) * (v - m);
  return std::sqrt(sum / static_cast<double>(values.size() - 1));
}

ConfidenceInterval bootstrap_mean_ci(const std::vector<double>& values, double level, int resamples,
                                     std::uint64_t seed) {
  if (values.empty()) throw std::invalid_argument("bootstrap_mean_ci: no values");
  if (!(level > 0.0 && level < 1.0))
    throw std::invalid_argument("bootstrap_mean_ci: level " + std::to_string(level) +
                                " is outside (0, 1)");
  if (resamples < 1) throw std::invalid_argument("bootstrap_mean_ci: resamples must be at least 1");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, values.size() - 1);
  std::vector<double> means(static_cast<std::size_t>(resamples));
  for (auto& m : means) {
    double sum = 0;
    for (std::size_t i = 0; i < values.size(); ++i) sum += values[pick(rng)];
    m = sum / static_cast<double>(values.size());
  }
  const double tail = (1.0 - level) / 2.0 * 100.0;
  return {mean(values), percentile(means, tail), percentile(means, 100.0 - tail), level};
}

std::vector<double> paired_differences(const std::vector<double>& before,
                                       const std::vector<double>& after) {
  if (before.size() != after.size())
    throw std::invalid_argument("paired_differences: " + std::to_string(before.size()) +
                                " values before but " + std::to_string(after.size()) + " after");
  std::vector<double> d(before.size());
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = after[i] - before[i];
  return d;
}

WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& differences) {
  WilcoxonResult result;
  std::vector<double> nonzero;
  for (double d : differences) {
    if (nearly_equal(d, 0.0)) {
      ++result.zeros;
    } else {
      nonzero.push_back(d);
    }
  }
  const std::size_t n = nonzero.size();
  result.n = static_cast<int>(n);
  if (n == 0) return result;

  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::fabs(nonzero[a]) < std::fabs(nonzero[b]);
  });
  // Doubled mid-ranks stay integers, which the exact distribution below needs.
  std::vector<long> doubled_rank(n);
  double tie_term = 0;  // Σ (t³ − t) over tie groups
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && nearly_equal(std::fabs(nonzero[order[j]]), std::fabs(nonzero[order[i]]))) ++j;
    const long doubled_mid = static_cast<long>(i + 1 + j);  // 2 · (i+1 + j)/2
    for (std::size_t k = i; k < j; ++k) doubled_rank[order[k]] = doubled_mid;
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  long doubled_w_plus = 0;
  long doubled_total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    doubled_total += doubled_rank[i];
    if (nonzero[i] > 0) doubled_w_plus += doubled_rank[i];
  }
  result.w_plus = doubled_w_plus / 2.0;
  result.w_minus = (doubled_total - doubled_w_plus) / 2.0;
  result.statistic = std::min(result.w_plus, result.w_minus);

  if (n <= 20) {
    // counts[s] = number of sign patterns whose doubled W+ is s.
    std::vector<double> counts(static_cast<std::size_t>(doubled_total) + 1, 0.0);
    counts[0] = 1;
    long reach = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const long r = doubled_rank[i];
      for (long s = reach; s >= 0; --s)
        if (counts[s] != 0) counts[static_cast<std::size_t>(s + r)] += counts[s];
      reach += r;
    }
    const double patterns = std::ldexp(1.0, static_cast<int>(n));
    double at_or_below = 0;
    double at_or_above = 0;
    for (long s = 0; s <= doubled_total; ++s) {
      if (s <= doubled_w_plus) at_or_below += counts[s];
      if (s >= doubled_w_plus) at_or_above += counts[s];
    }
    result.exact = true;
    result.p_value = std::min(1.0, 2.0 * std::min(at_or_below, at_or_above) / patterns);
    return result;
  }

  const double nn = static_cast<double>(n);
  const double mu = nn * (nn + 1) / 4.0;
  const double variance = nn * (nn + 1) * (2 * nn + 1) / 24.0 - tie_term / 48.0;
  if (!(variance > 0)) return result;
  const double deviation = std::max(0.0, std::fabs(result.w_plus - mu) - 0.5);
  result.z = (result.w_plus >= mu ? 1.0 : -1.0) * deviation / std::sqrt(variance);
  result.p_value = std::min(1.0, std::erfc(std::fabs(result.z) / std::sqrt(2.0)));
  return result;
}

PermutationResult paired_permutation_test(const std::vector<double>& differences, int resamples,
                                          std::uint64_t seed) {
  if (differences.empty()) throw std::invalid_argument("paired_permutation_test: no differences");
  if (resamples < 1)
    throw std::invalid_argument("paired_permutation_test: resamples must be at least 1");
  PermutationResult result;
  const std::size_t n = differences.size();
  result.mean_difference = mean(differences);
  const double observed = std::fabs(std::accumulate(differences.begin(), differences.end(), 0.0));
  auto at_least_as_extreme = [&](double sum) {
    const double s = std::fabs(sum);
    return s >= observed || nearly_equal(s, observed);
  };

  long long hits = 0;
  if (n <= 16) {
    const long long patterns = 1LL << n;
    for (long long mask = 0; mask < patterns; ++mask) {
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i)
        sum += (mask >> i & 1LL) ? -differences[i] : differences[i];
      if (at_least_as_extreme(sum)) ++hits;
    }
    result.exact = true;
    result.patterns = patterns;
    result.p_value = static_cast<double>(hits) / static_cast<double>(patterns);
    return result;
  }

  std::mt19937_64 rng(seed);
  std::bernoulli_distribution flip(0.5);
  for (int b = 0; b < resamples; ++b) {
    double sum = 0;
    for (double d : differences) sum += flip(rng) ? -d : d;
    if (at_least_as_extreme(sum)) ++hits;
  }
  result.patterns = resamples;
  // Counting the observed pattern itself keeps the Monte-Carlo p-value valid (never 0).
  result.p_value = static_cast<double>(hits + 1) / static_cast<double>(resamples + 1);
  return result;
}

double cohens_dz(const std::vector<double>& differences) {
  const double sd = sample_sd(differences);
  if (!(sd > 0)) throw std::invalid_argument("cohens_dz: all differences are equal (sd 0)");
  return mean(differences) / sd;
}

double rank_biserial(const WilcoxonResult& result) noexcept {
  const double total = result.w_plus + result.w_minus;
  return total > 0 ? (result.w_plus - result.w_minus) / total : 0.0;
}

std::vector<double> feature_scales(const std::vector<std::vector<double>>& rows) {
  check_rows(rows, "feature_scales");
  std::vector<double> scales(rows[0].size());
  std::vector<double> column(rows.size());
  for (std::size_t f = 0; f < scales.size(); ++f) {
    for (std::size_t i = 0; i < rows.size(); ++i) column[i] = rows[i][f];
    scales[f] = sample_sd(column);
  }
  return scales;
}

double diversity(const std::vector<std::vector<double>>& batch, const std::vector<double>& scales) {
  check_rows(batch, "diversity");
  if (batch[0].size() != scales.size())
    throw std::invalid_argument("diversity: rows have " + std::to_string(batch[0].size()) +
                                " features but there are " + std::to_string(scales.size()) +
                                " scales");
  double total = 0;
  std::size_t pairs = 0;
  for (std::size_t a = 0; a < batch.size(); ++a) {
    for (std::size_t b = a + 1; b < batch.size(); ++b) {
      double squared = 0;
      for (std::size_t f = 0; f < scales.size(); ++f) {
        if (!(scales[f] > 0)) continue;
        const double d = (batch[a][f] - batch[b][f]) / scales[f];
        squared += d * d;
      }
      total += std::sqrt(squared);
      ++pairs;
    }
  }
  return total / static_cast<double>(pairs);
}

}  // namespace tuneloop::loop

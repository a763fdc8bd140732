#pragma once
// Statistics for pilot studies: means with bootstrap confidence intervals, paired tests
// across listeners (Wilcoxon signed-rank, sign-flip permutation), effect sizes, and the
// within-batch diversity of generated tracks. Every function that resamples takes a
// seed, so a study's report is reproducible.

#include <cstdint>
#include <vector>

namespace tuneloop::loop {

/// The p-th percentile (0..100) of `values` by linear interpolation between closest
/// ranks (numpy's default, Hyndman & Fan type 7): with the values sorted as x[0..n-1],
/// h = (n − 1)·p/100 and the result is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
/// Throws std::invalid_argument if `values` is empty or p is outside 0..100.
double percentile(std::vector<double> values, double p);

/// Throws std::invalid_argument if `values` is empty.
double mean(const std::vector<double>& values);

/// Sample standard deviation (n − 1). Throws std::invalid_argument for fewer than 2 values.
double sample_sd(const std::vector<double>& values);

struct ConfidenceInterval {
  double estimate = 0;
  double lower = 0;
  double upper = 0;
  double level = 0.95;
};

/// Percentile-bootstrap CI of the mean: `resamples` resamples with replacement, the
/// interval between the (1 − level)/2 and (1 + level)/2 percentiles of their means.
/// Throws std::invalid_argument for no values, level outside (0, 1) or resamples < 1.
ConfidenceInterval bootstrap_mean_ci(const std::vector<double>& values, double level = 0.95,
                                     int resamples = 10000, std::uint64_t seed = 0);

/// after[i] − before[i]. Throws std::invalid_argument if the sizes differ.
std::vector<double> paired_differences(const std::vector<double>& before,
                                       const std::vector<double>& after);

struct WilcoxonResult {
  int n = 0;             // non-zero differences used
  int zeros = 0;         // zero differences dropped (Wilcoxon's method)
  double w_plus = 0;     // sum of ranks of positive differences
  double w_minus = 0;    // sum of ranks of negative differences
  double statistic = 0;  // min(w_plus, w_minus)
  double z = 0;          // normal approximation only
  double p_value = 1;    // two-sided
  bool exact = false;
};

/// Wilcoxon signed-rank test of paired differences against 0, two-sided. Zeros are
/// dropped; tied |d| get mid-ranks. For n ≤ 20 the p-value is exact (the full null
/// distribution of W+ over the 2^n sign patterns, with the observed mid-ranks); above,
/// the normal approximation with tie correction and a 0.5 continuity correction.
/// With no non-zero differences the p-value is 1.
WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& differences);

struct PermutationResult {
  double mean_difference = 0;
  double p_value = 1;  // two-sided
  bool exact = false;
  long long patterns = 0;  // sign patterns counted (2^n if exact, else resamples)
};

/// Paired permutation (sign-flip) test of the mean difference against 0, two-sided:
/// p = share of sign patterns whose |mean| is at least the observed one. Exact (all 2^n
/// patterns) for n ≤ 16; above, `resamples` random patterns and p = (1 + hits)/(1 + B).
/// Throws std::invalid_argument if `differences` is empty or resamples < 1.
PermutationResult paired_permutation_test(const std::vector<double>& differences,
                                          int resamples = 100000, std::uint64_t seed = 0);

/// Cohen's d_z for paired data: mean(d) / sd(d). Throws std::invalid_argument for fewer
/// than 2 differences or when all are equal (sd 0).
double cohens_dz(const std::vector<double>& differences);

/// Matched-pairs rank-biserial correlation, (W+ − W−)/(W+ + W−), in [−1, 1]; 0 when no
/// non-zero differences.
double rank_biserial(const WilcoxonResult& result) noexcept;

/// Per-feature sample standard deviation over all rows (the reference scale for
/// diversity; pool every batch being compared so they share one scale).
/// Throws std::invalid_argument for fewer than 2 rows or rows of different lengths.
std::vector<double> feature_scales(const std::vector<std::vector<double>>& rows);

/// Mean pairwise Euclidean distance between the batch's feature vectors, each feature
/// divided by its scale; features with scale 0 are left out.
/// Throws std::invalid_argument for fewer than 2 rows or mismatched lengths.
double diversity(const std::vector<std::vector<double>>& batch, const std::vector<double>& scales);

}  // namespace tuneloop::loop

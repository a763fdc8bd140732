#pragma once
// The listener's reward model: predicts how much they will like a track from the model's
// own embedding of it (model::Engine::embed / preview; never from the audio features the
// simulated listeners rate by). Bayesian linear regression on standardised embeddings:
// a Gaussian prior on the weights keeps it sane on 10-50 ratings, and its posterior gives
// Thompson samples for exploration. Plain C++, no LibTorch. Rules: docs/loop.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tuneloop::loop {

/// One thing the listener told us about a track (or one of their own songs).
struct RewardExample {
  std::vector<float> embedding;
  double label = 0;    // preference score in [0, 1] (songs: 1)
  double weight = 1;   // rated tracks 1, listen-only tracks less
  bool rated = false;  // counts in the pairwise accuracy
};

class RewardModel {
 public:
  /// Prior strengths tried by fit() (times the embedding's dimension); the one with the
  /// lowest leave-one-out error is kept.
  static const std::vector<double>& prior_grid();

  /// Fits the posterior. Throws std::invalid_argument on no examples or embeddings of
  /// different lengths. `prior` > 0 fixes the prior strength instead of choosing it.
  static RewardModel fit(const std::vector<RewardExample>& examples, double prior = 0);

  /// Posterior mean prediction (label units). Embeddings of another length predict the mean.
  double predict(const std::vector<float>& embedding) const;
  /// A draw of the weights from the posterior, widened by `scale` (0 = the mean weights),
  /// deterministic for a seed; pass it to predict_with().
  std::vector<double> sample_weights(std::uint64_t seed, double scale = 1.0) const;
  double predict_with(const std::vector<double>& weights, const std::vector<float>& embedding) const;

  std::size_t dimension() const noexcept { return mean_.size(); }
  double prior() const noexcept { return prior_; }
  double noise_sd() const noexcept { return noise_sd_; }
  int examples() const noexcept { return examples_; }

  /// JSON text (weights, standardisation, the Cholesky factor of the posterior precision) and back.
  /// from_json throws std::runtime_error naming the bad key.
  std::string to_json() const;
  static RewardModel from_json(const std::string& text);

 private:
  std::vector<double> standardise(const std::vector<float>& e) const;
  std::vector<double> mean_, scale_;  // per dimension (scale 0 = constant, ignored)
  std::vector<double> weights_;       // posterior mean
  std::vector<double> chol_;          // lower Cholesky factor L of the posterior precision A = LLᵀ (row-major);
                                      // the posterior covariance is noise² A⁻¹
  double intercept_ = 0;
  double noise_sd_ = 0;
  double prior_ = 0;
  int examples_ = 0;
};

/// Leave-one-out pairwise accuracy over the rated examples: for each pair with different
/// labels, whether the models fitted without each one order them as the listener did.
/// nullopt with fewer than 3 rated examples or no such pair.
std::optional<double> loo_pairwise_accuracy(const std::vector<RewardExample>& examples,
                                            double prior = 0);

}  // namespace tuneloop::loop

#include "loop/reward_model.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

namespace tuneloop::loop {

using nlohmann::json;

namespace {

// The intercept is a constant column whose weight the prior barely holds back.
constexpr double kInterceptPrior = 1e-6;
// The noise sd never drops below this (labels are in [0, 1]): a model that fits its few
// examples exactly must still be unsure of new tracks.
constexpr double kMinNoiseSd = 0.05;

// In-place lower Cholesky factor of a symmetric positive definite n×n matrix (row-major).
void cholesky(std::vector<double>& a, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) throw std::runtime_error("reward model: the posterior is not positive definite");
    const double l = std::sqrt(d);
    a[j * n + j] = l;
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
    for (std::size_t k = j + 1; k < n; ++k) a[j * n + k] = 0;
  }
}

// Solves L y = b (forward) and Lᵀ x = y (backward).
std::vector<double> forward(const std::vector<double>& l, std::size_t n, std::vector<double> b) {
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < i; ++k) b[i] -= l[i * n + k] * b[k];
    b[i] /= l[i * n + i];
  }
  return b;
}
std::vector<double> backward(const std::vector<double>& l, std::size_t n, std::vector<double> y) {
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t k = i + 1; k < n; ++k) y[i] -= l[k * n + i] * y[k];
    y[i] /= l[i * n + i];
  }
  return y;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// A fitted posterior on rows already standardised, with the intercept column last.
struct Fit {
  std::vector<double> chol;     // of A = XᵀWX + Λ
  std::vector<double> weights;  // posterior mean, intercept last
  std::vector<double> loo;      // leave-one-out predictions
  double loo_error = 0;         // weighted mean squared
  double noise_sd = 0;
};

Fit fit_rows(const std::vector<std::vector<double>>& x, const std::vector<RewardExample>& ex,
             double prior) {
  const std::size_t n = x.size(), d = x.front().size();
  Fit f;
  f.chol.assign(d * d, 0.0);
  std::vector<double> rhs(d, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    const double w = ex[r].weight;
    for (std::size_t i = 0; i < d; ++i) {
      rhs[i] += w * x[r][i] * ex[r].label;
      for (std::size_t j = 0; j <= i; ++j) f.chol[i * d + j] += w * x[r][i] * x[r][j];
    }
  }
  for (std::size_t i = 0; i < d; ++i) {
    for (std::size_t j = 0; j < i; ++j) f.chol[j * d + i] = f.chol[i * d + j];
    f.chol[i * d + i] += i + 1 == d ? kInterceptPrior : prior;
  }
  cholesky(f.chol, d);
  f.weights = backward(f.chol, d, forward(f.chol, d, rhs));
  double sse = 0, wsum = 0, leverage = 0;
  f.loo.resize(n);
  for (std::size_t r = 0; r < n; ++r) {
    const double fitted = dot(f.weights, x[r]);
    const auto half = forward(f.chol, d, x[r]);  // h = w xᵀA⁻¹x = w |L⁻¹x|²
    const double h = std::min(ex[r].weight * dot(half, half), 0.999);
    const double residual = ex[r].label - fitted;
    f.loo[r] = ex[r].label - residual / (1.0 - h);
    leverage += h;
    sse += ex[r].weight * residual * residual;
    wsum += ex[r].weight;
    f.loo_error += ex[r].weight * std::pow(ex[r].label - f.loo[r], 2);
  }
  f.loo_error /= std::max(wsum, 1e-12);
  // In-sample residuals of a near-interpolating fit understate the noise: divide by the
  // residual degrees of freedom (the weights minus the fit's effective parameters).
  f.noise_sd = std::max(kMinNoiseSd, std::sqrt(sse / std::max(wsum - leverage, 1.0)));
  return f;
}

struct Standardised {
  std::vector<double> mean, scale;
  std::vector<std::vector<double>> rows;  // with the intercept column
};

Standardised standardise_all(const std::vector<RewardExample>& ex) {
  if (ex.empty()) throw std::invalid_argument("reward model: no examples");
  const std::size_t d = ex.front().embedding.size();
  if (d == 0) throw std::invalid_argument("reward model: empty embeddings");
  Standardised s;
  s.mean.assign(d, 0.0);
  s.scale.assign(d, 0.0);
  for (const auto& e : ex) {
    if (e.embedding.size() != d)
      throw std::invalid_argument("reward model: embeddings of " + std::to_string(e.embedding.size()) +
                                  " and " + std::to_string(d) + " values");
    for (std::size_t i = 0; i < d; ++i) s.mean[i] += e.embedding[i] / static_cast<double>(ex.size());
  }
  for (const auto& e : ex)
    for (std::size_t i = 0; i < d; ++i)
      s.scale[i] += std::pow(e.embedding[i] - s.mean[i], 2) / static_cast<double>(ex.size());
  for (double& v : s.scale) v = v > 1e-12 ? std::sqrt(v) : 0.0;
  for (const auto& e : ex) {
    std::vector<double> row(d + 1, 1.0);
    for (std::size_t i = 0; i < d; ++i)
      row[i] = s.scale[i] > 0 ? (e.embedding[i] - s.mean[i]) / s.scale[i] : 0.0;
    s.rows.push_back(std::move(row));
  }
  return s;
}

double chosen_prior(const Standardised& s, const std::vector<RewardExample>& ex, double prior) {
  const double d = static_cast<double>(s.mean.size());
  if (prior > 0) return prior * d;
  double best = RewardModel::prior_grid().front() * d, best_error = std::numeric_limits<double>::max();
  for (double p : RewardModel::prior_grid()) {
    const double e = fit_rows(s.rows, ex, p * d).loo_error;
    if (e < best_error - 1e-12) {
      best_error = e;
      best = p * d;
    }
  }
  return best;
}

}  // namespace

const std::vector<double>& RewardModel::prior_grid() {
  static const std::vector<double> grid = {0.03, 0.1, 0.3, 1.0, 3.0};
  return grid;
}

RewardModel RewardModel::fit(const std::vector<RewardExample>& examples, double prior) {
  const Standardised s = standardise_all(examples);
  RewardModel m;
  m.prior_ = chosen_prior(s, examples, prior);
  const Fit f = fit_rows(s.rows, examples, m.prior_);
  m.mean_ = s.mean;
  m.scale_ = s.scale;
  m.weights_.assign(f.weights.begin(), f.weights.end() - 1);
  m.intercept_ = f.weights.back();
  m.chol_ = f.chol;
  m.noise_sd_ = f.noise_sd;
  m.examples_ = static_cast<int>(examples.size());
  return m;
}

std::vector<double> RewardModel::standardise(const std::vector<float>& e) const {
  std::vector<double> row(mean_.size() + 1, 1.0);
  for (std::size_t i = 0; i < mean_.size(); ++i)
    row[i] = scale_[i] > 0 && i < e.size() ? (e[i] - mean_[i]) / scale_[i] : 0.0;
  return row;
}

double RewardModel::predict(const std::vector<float>& e) const {
  std::vector<double> w = weights_;
  w.push_back(intercept_);
  return predict_with(w, e);
}

std::vector<double> RewardModel::sample_weights(std::uint64_t seed, double scale) const {
  std::vector<double> w = weights_;
  w.push_back(intercept_);
  if (scale <= 0 || chol_.empty()) return w;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> z(w.size());
  for (double& v : z) v = normal(rng);
  // A⁻¹ = L⁻ᵀL⁻¹, so L⁻ᵀz has covariance A⁻¹; the posterior's is noise² A⁻¹.
  const auto step = backward(chol_, w.size(), z);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] += scale * noise_sd_ * step[i];
  return w;
}

double RewardModel::predict_with(const std::vector<double>& w, const std::vector<float>& e) const {
  if (e.size() != mean_.size() || w.size() != mean_.size() + 1) return intercept_;
  return dot(w, standardise(e));
}

std::string RewardModel::to_json() const {
  return json{{"format", "tuneloop-reward-model"},
              {"version", 1},
              {"examples", examples_},
              {"prior", prior_},
              {"noise_sd", noise_sd_},
              {"intercept", intercept_},
              {"mean", mean_},
              {"scale", scale_},
              {"weights", weights_},
              {"precision_cholesky", chol_}}
      .dump();
}

RewardModel RewardModel::from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    if (j.at("format") != "tuneloop-reward-model") throw std::runtime_error("not a reward model");
    RewardModel m;
    m.examples_ = j.at("examples").get<int>();
    m.prior_ = j.at("prior").get<double>();
    m.noise_sd_ = j.at("noise_sd").get<double>();
    m.intercept_ = j.at("intercept").get<double>();
    m.mean_ = j.at("mean").get<std::vector<double>>();
    m.scale_ = j.at("scale").get<std::vector<double>>();
    m.weights_ = j.at("weights").get<std::vector<double>>();
    m.chol_ = j.at("precision_cholesky").get<std::vector<double>>();
    const std::size_t d = m.mean_.size();
    if (m.scale_.size() != d || m.weights_.size() != d || m.chol_.size() != (d + 1) * (d + 1))
      throw std::runtime_error("sizes do not agree");
    return m;
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("reward model: ") + e.what());
  }
}

std::optional<double> loo_pairwise_accuracy(const std::vector<RewardExample>& examples,
                                            double prior) {
  int rated = 0;
  for (const auto& e : examples) rated += e.rated;
  if (rated < 3) return std::nullopt;
  const Standardised s = standardise_all(examples);
  const Fit f = fit_rows(s.rows, examples, chosen_prior(s, examples, prior));
  double right = 0;
  int pairs = 0;
  for (std::size_t i = 0; i < examples.size(); ++i)
    for (std::size_t j = i + 1; j < examples.size(); ++j) {
      if (!examples[i].rated || !examples[j].rated) continue;
      const double truth = examples[i].label - examples[j].label;
      if (std::fabs(truth) < 1e-9) continue;
      const double guess = f.loo[i] - f.loo[j];
      right += guess == 0 ? 0.5 : (guess > 0) == (truth > 0);
      ++pairs;
    }
  if (pairs == 0) return std::nullopt;
  return right / pairs;
}

}  // namespace tuneloop::loop

#include "study/simulated_listener.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tuneloop::study {

double round_to_scale(double value, const RatingScale& scale) noexcept {
  const double r = scale.min + std::round((value - scale.min) / scale.step) * scale.step;
  return std::clamp(r, scale.min, scale.max);
}

double feature_value(const audio::AudioFeatures& f, const std::string& name) {
  const auto& names = audio::feature_names();
  const auto v = audio::as_vector(f);
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return v[i];
  throw std::invalid_argument("unknown audio feature '" + name + "'");
}

SimulatedListener::SimulatedListener(Participant participant, RatingScale scale,
                                     std::map<std::string, double> feature_scale,
                                     std::uint64_t seed)
    : p_(std::move(participant)), scale_(scale), sd_(std::move(feature_scale)), rng_(seed) {
  if (p_.kind != Participant::Kind::simulated)
    throw std::invalid_argument("participant '" + p_.name + "' is human and can't be simulated");
}

double SimulatedListener::distance(const audio::AudioFeatures& f) const {
  double sum = 0, weights = 0;
  for (const auto& [name, target] : p_.taste.target) {
    const auto w_it = p_.taste.weight.find(name);
    const double w = w_it == p_.taste.weight.end() ? 1.0 : w_it->second;
    const auto sd_it = sd_.find(name);
    const double sd = sd_it == sd_.end() || sd_it->second <= 0 ? 1.0 : sd_it->second;
    const double z = (feature_value(f, name) - target) / sd;
    sum += w * z * z;
    weights += w;
  }
  return weights > 0 ? std::sqrt(sum / weights) : 0.0;
}

double SimulatedListener::liking(const audio::AudioFeatures& f) const {
  const double d = distance(f) / p_.tolerance;
  return std::exp(-0.5 * d * d);
}

double SimulatedListener::expected_rating(const audio::AudioFeatures& f) const {
  const double r = scale_.min + liking(f) * (scale_.max - scale_.min) + p_.bias;
  return std::clamp(r, scale_.min, scale_.max);
}

double SimulatedListener::rate(const audio::AudioFeatures& f) {
  double r = expected_rating(f);
  if (p_.noise > 0) r += std::normal_distribution<double>(0.0, p_.noise)(rng_);
  return round_to_scale(r, scale_);
}

ListenOutcome SimulatedListener::listen(const audio::AudioFeatures& f, double duration_s) {
  const double like = liking(f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const bool skip = u(rng_) < p_.skip_tendency * (1.0 - like);
  if (!skip) return {duration_s, false};
  // Dislikes go early; a near-miss is given a little longer, but always under half.
  const double fraction = std::clamp((0.05 + 0.4 * like) * (0.5 + u(rng_)), 0.02, 0.45);
  return {fraction * duration_s, true};
}

bool SimulatedListener::prefer(const audio::AudioFeatures& a, const audio::AudioFeatures& b) {
  double ra = expected_rating(a), rb = expected_rating(b);
  if (p_.noise > 0) {
    std::normal_distribution<double> n(0.0, p_.noise);
    ra += n(rng_);
    rb += n(rng_);
  }
  if (ra != rb) return ra > rb;
  return std::uniform_int_distribution<int>(0, 1)(rng_) == 1;
}

void SimulatedListener::drift() {
  for (const auto& [name, step] : p_.drift) {
    const auto sd_it = sd_.find(name);
    const double sd = sd_it == sd_.end() || sd_it->second <= 0 ? 1.0 : sd_it->second;
    // A drift on a feature the taste doesn't name starts from no preference, so it
    // has nothing to move.
    if (auto t = p_.taste.target.find(name); t != p_.taste.target.end()) t->second += step * sd;
  }
}

}  // namespace tuneloop::study

#pragma once
// A simulated listener: a hidden taste over audio features measured from the audio itself,
// a rating from the distance to that taste (plus bias and noise, rounded to the scale), and
// listening time that follows liking. The taste stays in here: the loop only ever sees the
// ratings and listens, as with a person.

#include <map>
#include <random>
#include <string>

#include "study/study.hpp"
#include "audio/features.hpp"

namespace tuneloop::study {

/// How one play went.
struct ListenOutcome {
  double seconds_heard = 0;
  bool skipped = false;  // stopped early; otherwise heard to the end
};

class SimulatedListener {
 public:
  /// `feature_scale` gives the standard deviation per feature used to standardise the
  /// distance; a feature missing from it counts with sd 1.
  /// Throws std::invalid_argument for a human participant.
  SimulatedListener(Participant participant, RatingScale scale,
                    std::map<std::string, double> feature_scale, std::uint64_t seed);

  const std::string& name() const noexcept { return p_.name; }
  const Taste& taste() const noexcept { return p_.taste; }

  /// Weighted root-mean-square of the standardised differences to the taste's targets.
  double distance(const audio::AudioFeatures& f) const;
  /// exp(−d²/(2·tolerance²)): 1 at the taste, falling towards 0 far from it.
  double liking(const audio::AudioFeatures& f) const;
  /// The mean rating before noise and rounding: min + liking·(max − min) + bias, clamped.
  double expected_rating(const audio::AudioFeatures& f) const;
  /// expected + N(0, noise), rounded to the scale's step and clamped to it.
  double rate(const audio::AudioFeatures& f);
  /// Skips with probability skip_tendency·(1 − liking), after a fraction of the track that
  /// grows with liking (below half the track, so the daemon counts it as a skip); otherwise
  /// hears the whole track.
  ListenOutcome listen(const audio::AudioFeatures& f, double duration_s);
  /// An A/B choice: true if `a` is preferred to `b` (noisy expected ratings compared,
  /// ties broken by a coin).
  bool prefer(const audio::AudioFeatures& a, const audio::AudioFeatures& b);
  /// Moves the taste's targets by `drift` (in feature sds) — call once per iteration.
  void drift();

 private:
  Participant p_;
  RatingScale scale_;
  std::map<std::string, double> sd_;
  std::mt19937_64 rng_;
};

/// Rounds to the scale's step and clamps into [min, max].
double round_to_scale(double value, const RatingScale& scale) noexcept;

/// The feature of a given name (as in audio::feature_names()). Throws std::invalid_argument
/// for an unknown name.
double feature_value(const audio::AudioFeatures& f, const std::string& name);

}  // namespace tuneloop::study

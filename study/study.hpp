#pragma once
// A pilot study as written in a study file (YAML): who takes part (simulated listeners with
// a hidden taste, or people), how many iterations, how tracks are rated and evaluated.
// See docs/study-guide.md for the file format.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tuneloop::study {

/// A study file that can't be read or doesn't validate; the message names the file, the
/// line and the key.
class StudyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A hidden preference over audio features (names as in audio/features.hpp):
/// the feature values the listener likes best and how much each one matters.
struct Taste {
  std::map<std::string, double> target;  // feature -> preferred value (in the feature's units)
  std::map<std::string, double> weight;  // feature -> weight (> 0); missing = 1
};

struct Participant {
  enum class Kind { simulated, human };
  std::string name;
  Kind kind = Kind::simulated;
  // Simulated listeners only:
  Taste taste;
  double bias = 0.0;           // added to every rating (a generous or harsh rater)
  double noise = 0.5;          // standard deviation of the rating noise, in scale units
  double tolerance = 1.0;      // standardised distance at which liking has fallen to exp(-1/2)
  double skip_tendency = 0.5;  // 0 = never skips, 1 = skips everything it doesn't like
  std::map<std::string, double> drift;  // feature -> change of target per iteration, in scale sds
};

struct RatingScale {
  double min = 1.0;
  double max = 5.0;
  double step = 0.5;  // 0.5 or 1
};

enum class Design { within_subject, ab_pairs };

struct PilotStudy {
  std::filesystem::path file;  // where it was read from (empty for a string)
  std::string name = "study";
  std::vector<Participant> participants;
  int iterations = 3;                 // fine-tuned iterations after the base (iteration 0)
  int tracks_per_iteration = 8;       // tracks the daemon generates per iteration
  int eval_tracks_per_iteration = 0;  // tracks per iteration in the final evaluation; 0 = all
  RatingScale scale;
  Design design = Design::within_subject;
  std::uint64_t seed = 1;
  std::filesystem::path output = "pilot-out";  // relative paths resolve against the file's folder
  // Standard deviation per feature used to standardise distances to a taste.
  std::map<std::string, double> feature_scale;
  // Passed verbatim (as YAML) into every participant's daemon config, e.g. model.steps.
  std::string daemon_config_yaml;
  double iteration_timeout_s = 1800;  // give up waiting for one iteration after this long
  // Participants run at once, each with its own daemon. With 1 LibTorch thread per daemon
  // (model.threads, training.threads) two in parallel use two cores far better than one
  // daemon with two threads.
  int parallel = 1;
};

/// Simulated listeners hear every track at this rate (the pilot resamples before measuring),
/// so a model with a wider band does not move their tastes or the feature scale below.
inline constexpr int kListenerRate = 16000;

/// Default standard deviations of the audio features (an 8 s generated clip), used where a
/// study gives no feature_scale.
const std::map<std::string, double>& default_feature_scale();

/// Reads and validates a study file. Throws StudyError naming the file, line and key.
PilotStudy load_study(const std::filesystem::path& file);

/// Parses and validates study YAML; `origin` is used in messages and to resolve relative
/// paths (its folder). Throws StudyError naming origin, line and key.
PilotStudy parse_study(const std::string& yaml, const std::filesystem::path& origin = "study.yaml");

std::string to_string(Design d);

/// The order in which a participant meets `tracks` in the blinded evaluation: up to
/// `per_iteration` (0 = all) from each iteration, shuffled together. Each input pair is
/// (iteration number, track id). Deterministic for a seed.
std::vector<std::pair<int, long long>> blinded_order(
    const std::vector<std::pair<int, long long>>& tracks, int per_iteration, std::uint64_t seed);

}  // namespace tuneloop::study

#pragma once
// One iteration, split by thread:
//  - prepare_iteration (io thread): feedback -> DatasetBuilder manifest -> iteration row,
//    manifest in the store, a job whose params hold the IterationPlan (so a restart can
//    resume it) and its checkpoint path DATA/jobs/<job id>/;
//  - run_iteration (worker thread, no store): fine-tune from the parent's adapter, then
//    generate the batch into DATA/tracks/iter-<k>/;
//  - finish_iteration / fail_iteration (io thread): track rows, metrics, ready + active;
//    or failed, with the previous iteration left active.

#include <atomic>
#include <functional>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "model/engine.hpp"
#include "store/store.hpp"

namespace tuneloop::loop {

/// How much a listen-only track and one of the listener's songs count in the reward model
/// against a rated track (1): fractions heard are noisier than stars, and songs are
/// liked by definition but were not made by the model.
inline constexpr double kListenOnlyWeight = 0.3;
inline constexpr double kSongWeight = 0.5;

/// One track the listener gave feedback on (or one of their songs), as the reward model
/// learns from it.
struct FeedbackLabel {
  std::string path;
  double label = 0;   // preference score in [0, 1]; songs 1
  double weight = 1;  // rated 1, listen-only kListenOnlyWeight, songs kSongWeight
  bool rated = false;
  // Its tags when the loop drew them (generation.learn_tags): what the tag preferences learn from.
  std::optional<std::vector<std::string>> drawn_tags;
};

/// A track the listener liked most, which variations start from.
struct LikedTrack {
  store::Id id = 0;
  std::string path;
};

/// Everything the worker needs; stored as the job's params_json.
struct IterationPlan {
  /// Plans without a version (1) predate the objective, the reward model and candidates;
  /// version 2 predates variations of liked tracks.
  static constexpr int kVersion = 3;
  store::Id listener_id = 0;
  store::Id iteration_id = 0;
  store::Id job_id = 0;
  int number = 0;
  bool train = true;                 // false for iteration 0 (the base model)
  model::FineTuneRequest fine_tune;  // used when train
  std::string parent_adapter;        // adapter to generate with when !train ("" = none)
  std::vector<std::string> song_paths;  // the listener's songs, for seeded tracks
  std::vector<LikedTrack> liked;        // the tracks they liked most, best first (variations)
  config::GenerationConfig generation;
  int sampler_steps = 25;
  double guidance = 3.0;
  std::string vocoder = "auto";  // GenerateParams::vocoder
  double adapter_strength = 1.0;  // GenerateParams::adapter_strength
  std::string tracks_dir;
  std::string latent_dir;
  int dataset_size = 0;
  config::Objective objective = config::Objective::sft;
  double beta = 0;                      // 0 = calibrated
  std::vector<FeedbackLabel> feedback;  // for the reward model (empty for iteration 0)
  std::vector<std::string> negatives;   // disliked tracks (kto, dpo)
  std::string reward_model_path;        // where this iteration's reward model is saved
  std::uint64_t seed = 0;               // training.seed: sets apart the tracks' seeds
};

std::string plan_to_json(const IterationPlan& plan);
struct DatasetInputs;
/// The reward model's labels: every track with feedback (its preference score) and, when
/// dataset.include_songs, the listener's songs (label 1).
std::vector<FeedbackLabel> feedback_labels(const DatasetInputs& inputs, const config::Config& config,
                                           std::int64_t now_ms);
/// Throws std::runtime_error naming the bad key.
IterationPlan plan_from_json(const std::string& json);

struct GeneratedTrack {
  std::string path;
  std::int64_t seed = 0;
  std::string tags;         // comma-joined
  std::string params_json;  // what generate() got (and the predicted score)
  double duration_s = 0;
  bool seeded = false;
};

struct IterationOutcome {
  std::string adapter_path;  // "" for iteration 0
  std::optional<double> reward_accuracy;  // leave-one-out pairwise, over rated tracks
  std::string reward_model_path;          // "" when too little feedback
  int candidates = 0;                     // candidates previewed
  double reward_seconds = 0;
  double preview_seconds = 0;
  std::vector<std::optional<double>> predicted;  // per track: the reward model's mean score
  std::optional<double> final_loss;
  std::string tag_preferences;  // per category the best arm so far; "" without learn_tags
  std::vector<GeneratedTrack> tracks;
  double train_seconds = 0;
  double generate_seconds = 0;
};

/// Progress of the whole iteration: phase "train" (step of total) or "generate" (track i of n).
struct IterationProgress {
  std::string phase;
  int step = 0;
  int total = 0;
  double loss = 0;
  double eta_seconds = 0;
  double fraction = 0;  // 0..1 of the whole job
};
using IterationProgressFn = std::function<void(const IterationProgress&)>;

/// The job kind of an iteration in the store's jobs table.
inline constexpr const char* kIterationJobKind = "iteration";

/// A training iteration was asked for but the feedback gives nothing to train on.
class EmptyDatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Creates the next iteration of the listener (parent: the active one) with its manifest
/// and job, status training. The listener's first iteration is iteration 0: the base
/// model, no training, status generating. Throws EmptyDatasetError (and writes nothing)
/// when a training iteration's dataset would be empty; store::StoreError.
IterationPlan prepare_iteration(store::Store& store, const config::Config& config,
                                store::Id listener_id, std::int64_t now_ms);

/// Worker side. Throws model::Cancelled if `cancel` is set (a fine-tune checkpoints
/// first), model::ModelError / audio::AudioError / std::runtime_error on failure.
IterationOutcome run_iteration(model::Engine& engine, const IterationPlan& plan,
                               const IterationProgressFn& progress,
                               const std::atomic<bool>& cancel);

/// Stores the tracks, metrics and adapter, marks the iteration ready and active and the
/// job done. Returns the new track ids (oldest first). Throws store::StoreError.
std::vector<store::Id> finish_iteration(store::Store& store, const IterationPlan& plan,
                                        const IterationOutcome& outcome, double seconds_total);

/// Marks the iteration failed and the job failed (or cancelled) with `error`; if the
/// failed iteration was active, the newest ready one becomes active again. Removes the
/// tracks the job wrote (no row points at them), and its adapter and reward model when the
/// iteration is gone (its listener was deleted). Never throws.
void fail_iteration(store::Store& store, const IterationPlan& plan, const std::string& error,
                    bool cancelled = false) noexcept;

}  // namespace tuneloop::loop

#pragma once
// From a study's recorded events to its results: events.csv, iterations.csv, summary.json,
// report.md and plots (rendered by gnuplot). Pure apart from the file writing and the gnuplot
// call, so it is tested on synthetic events and re-run on a finished study's files.

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "study/study.hpp"

namespace tuneloop::study {

/// Writing or rendering the report failed (names the file or the command).
class ReportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One thing a participant did. `features` are in audio::feature_names() order (empty when
/// the track's audio was not measured).
struct Event {
  static constexpr double none = std::numeric_limits<double>::quiet_NaN();
  std::string participant;
  std::string phase =
      "training";  // training (feedback the loop learns from) | evaluation (the blinded round)
  std::string kind = "rating";  // listen | rating | choice
  int iteration = 0;            // iteration number of the track (0 = base model)
  long long track_id = 0;
  int position = 0;             // order in which the participant met it within the phase
  double stars = none;          // rating events
  double seconds_heard = none;  // listen events
  double duration = none;
  std::string ended;        // listen events: completed | skipped
  int other_iteration = 0;  // choice events: the pair's other track (from the base)
  long long other_track_id = 0;
  int preferred = -1;  // choice events: 1 if the iteration's track won, 0 if the other did
  std::vector<double> features;
  std::vector<double> sound;  // audio::sound_profile of the track (empty when not measured)
};

/// One participant's iteration as their daemon recorded it when it became ready (the
/// metrics of its iterations.list row).
struct IterationRecord {
  std::string participant;
  int iteration = 0;
  // Leave-one-out pairwise accuracy of the listener's reward model over their rated tracks
  // (0.5 = chance); none when no reward model was fitted (iteration 0, too little feedback).
  double reward_accuracy = Event::none;
  int feedback_tracks = -1;  // tracks rated or heard by then (the loop's); -1 = not recorded
};

struct ReportOptions {
  std::string study_name = "study";
  RatingScale scale;
  int bootstrap_resamples = 10000;
  int permutation_resamples = 100000;
  std::uint64_t seed = 0;
};

/// Writes a header and one row per event. Throws ReportError if the stream fails.
void write_events_csv(const std::vector<Event>& events, std::ostream& out);
/// Reads what write_events_csv wrote. Throws ReportError naming `origin` and the line.
std::vector<Event> read_events_csv(std::istream& in, const std::string& origin = "events.csv");

/// Writes a header and one row per record. Throws ReportError if the stream fails.
void write_iterations_csv(const std::vector<IterationRecord>& records, std::ostream& out);
/// Reads what write_iterations_csv wrote (columns by name; unknown ones are ignored).
/// Throws ReportError naming `origin` and the line.
std::vector<IterationRecord> read_iterations_csv(std::istream& in,
                                                 const std::string& origin = "iterations.csv");

/// The statistics as JSON: per-iteration mean ratings (over listener means) with bootstrap
/// CIs, per-listener means and deltas vs iteration 0, Wilcoxon and permutation p-values,
/// effect sizes, listening, within-batch diversity relative to iteration 0, A/B choices,
/// the paper's reference figures and the study's targets; with `iterations`, also the reward
/// model's accuracy per iteration over listeners ("reward_model", absent without them).
/// Ratings come from the evaluation phase, or from training when there is none.
nlohmann::json summarise(const std::vector<Event>& events, const ReportOptions& options,
                         const std::vector<IterationRecord>& iterations = {});

/// The Markdown report of a summary.
std::string render_markdown(const nlohmann::json& summary);

/// Writes rating_by_iteration.dat, listeners.dat, diversity.dat and plots.gp into `dir`.
void write_plot_data(const nlohmann::json& summary, const std::filesystem::path& dir);

/// Runs gnuplot on dir/plots.gp; returns the images written (PNG via pngcairo).
/// Throws ReportError when gnuplot can't be run or fails, or (killed) when it takes longer
/// than `timeout`: a wedged one must not hold up the daemon's study.export.
std::vector<std::filesystem::path> render_plots(
    const std::filesystem::path& dir, const std::string& gnuplot = "gnuplot",
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Everything: events.csv, iterations.csv (when `iterations` is not empty; a stale one is
/// removed otherwise), summary.json, report.md, plot data and, if `plots`, the images.
/// Returns the summary. Throws ReportError.
nlohmann::json write_report(const std::vector<Event>& events, const ReportOptions& options,
                            const std::filesystem::path& dir, bool plots = true,
                            const std::vector<IterationRecord>& iterations = {});

}  // namespace tuneloop::study

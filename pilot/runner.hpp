#pragma once
// Runs a pilot study against real tuneloopd processes: one daemon per participant, each on
// its own scratch data folder and socket under the output folder, driven over JSON-RPC
// (tracks.list, listen.report, rate, iterate, iterations.list, job.status) exactly as a
// person's player would. Simulated participants listen faster than real time through the
// external-playback report (listen.report).

#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "client/daemon_process.hpp"
#include "study/report.hpp"
#include "study/simulated_listener.hpp"
#include "study/study.hpp"

namespace tuneloop::pilot {

/// The study could not be run (a daemon would not start, lacks a method, an iteration
/// failed or timed out); the message names the participant and what to do.
class PilotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The methods a study run needs from the daemon.
const std::vector<std::string>& required_methods();

/// Throws PilotError naming every method in `needed` that `available` lacks.
void require_methods(const std::set<std::string>& available, const std::vector<std::string>& needed,
                     const std::string& where);

/// The daemon config for one participant: their listener name, no audio output, no HTTP,
/// manual iterations only, `tracks_per_iteration`, a training seed, and the study's
/// daemon_config merged over that. Throws StudyError if daemon_config_yaml is not a mapping.
std::string participant_config(const study::PilotStudy& study, const study::Participant& p,
                               std::size_t index);

/// Starts `exe --config CONFIG --data-dir DIR/data --socket SOCKET` with its output in
/// DIR/tuneloopd.log and waits up to `wait_s` for the socket to answer; the daemon is
/// stopped (shutdown method, then SIGTERM, then SIGKILL) when the result is destroyed.
/// Throws PilotError with the log's tail when it exits or doesn't answer in time.
client::DaemonProcess start_daemon(const std::filesystem::path& exe, const std::filesystem::path& dir,
                                   const std::filesystem::path& config,
                                   const std::filesystem::path& socket, double wait_s = 60);

/// tuneloopd next to the running program, else on the PATH.
std::filesystem::path default_daemon_path();

struct RunOptions {
  std::filesystem::path output;  // overrides the study's output folder when not empty
  std::filesystem::path daemon;  // tuneloopd; empty = default_daemon_path()
  bool plots = true;             // render the plots with gnuplot
  int parallel = 0;              // participants at once; 0 = the study's `parallel`
  std::function<void(const std::string&)> progress;  // one line per step; may be empty
};

struct StudyResult {
  std::filesystem::path output;
  std::vector<study::Event> events;
  std::vector<study::IterationRecord> iterations;  // per participant and iteration, in study order
  nlohmann::json summary;
};

/// Runs every simulated participant (`parallel` at a time, each with its own daemon)
/// through all iterations and the final evaluation round, then writes events.csv,
/// iterations.csv (each iteration's metrics as the daemon recorded them), summary.json,
/// report.md and the plots to the output folder. Human participants are left out (they
/// take part through `tuneloop pilot session`). Throws PilotError, StudyError or ReportError.
StudyResult run_study(const study::PilotStudy& study, const RunOptions& options);

}  // namespace tuneloop::pilot

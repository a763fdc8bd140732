#pragma once
// `tuneloop pilot …`: run a study file, check one, rebuild a report from recorded events,
// and run a blinded rating session for a human participant.

#include <filesystem>
#include <vector>

#include "study/report.hpp"

namespace CLI {
class App;
}

namespace tuneloop::pilot {

/// What a finished study's output folder records: its events (events.csv, with human
/// participants' participants/*/session-events.csv in place of their rows) and, when the
/// run wrote one, iterations.csv.
struct RecordedRun {
  std::vector<study::Event> events;
  std::vector<study::IterationRecord> iterations;
};

/// Reads a study's output folder. Throws ReportError when it holds no events or a file
/// is malformed.
RecordedRun read_run(const std::filesystem::path& dir);

/// Several runs of one study (seeds) as one: each participant of the k-th run (from 1) is
/// renamed "runk/NAME" in both tables, so each listener-run counts once. Throws ReportError.
RecordedRun pool_runs(const std::vector<std::filesystem::path>& runs);

/// Adds the `pilot` subcommand (run, pool, check, report).
void add_pilot_commands(CLI::App& app);

}  // namespace tuneloop::pilot

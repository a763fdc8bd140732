#include "pilot/commands.hpp"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "client/client.hpp"
#include "study/report.hpp"
#include "pilot/runner.hpp"
#include "study/study.hpp"
#include "audio/audio.hpp"
#include "audio/features.hpp"

#include <yaml-cpp/yaml.h>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace tuneloop::pilot {

using study::Event;
using study::load_study;
using study::Participant;
using study::PilotStudy;
using study::read_events_csv;
using study::read_iterations_csv;
using study::render_markdown;
using study::ReportError;
using study::ReportOptions;
using study::StudyError;
using study::write_report;

namespace {

struct Options {
  std::string study, out, daemon, dir;
  bool no_plots = false;
  int parallel = 0;
  long long seed = -1;
  std::vector<std::string> settings;  // section.key=value, over the study's daemon_config
  std::vector<std::string> runs;      // pool: finished study folders
};

// The study's daemon_config with section.key=value settings laid over it.
// Throws StudyError on a setting that is not of that form.
std::string with_settings(const std::string& yaml, const std::vector<std::string>& settings) {
  YAML::Node root = yaml.empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(yaml);
  for (const auto& s : settings) {
    const auto eq = s.find('='), dot = s.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
      throw StudyError("--set " + s + ": expected section.key=value, e.g. training.init=parent");
    root[s.substr(0, dot)][s.substr(dot + 1, eq - dot - 1)] = YAML::Load(s.substr(eq + 1));
  }
  YAML::Emitter out;
  out << root;
  return out.c_str();
}

void print_study(const PilotStudy& s) {
  std::cout << "study " << s.name << ": " << s.participants.size() << " participants, "
            << s.iterations << " iterations after the base, " << s.tracks_per_iteration
            << " tracks each, design " << to_string(s.design) << ", scale " << s.scale.min << "–"
            << s.scale.max << " step " << s.scale.step << ", seed " << s.seed << ", output "
            << s.output.string() << "\n";
  for (const auto& p : s.participants) {
    std::cout << "  " << p.name << " ("
              << (p.kind == Participant::Kind::human ? "human" : "simulated") << ")";
    if (p.kind == Participant::Kind::simulated) {
      std::cout << " taste:";
      for (const auto& [f, v] : p.taste.target) std::cout << " " << f << "=" << v;
      std::cout << " bias=" << p.bias << " noise=" << p.noise << " skip=" << p.skip_tendency;
      if (!p.drift.empty()) std::cout << " (drifts)";
    }
    std::cout << "\n";
  }
}

int run(const Options& o) {
  try {
    PilotStudy s = load_study(o.study);
    if (o.seed >= 0) s.seed = static_cast<std::uint64_t>(o.seed);
    if (!o.settings.empty()) s.daemon_config_yaml = with_settings(s.daemon_config_yaml, o.settings);
    RunOptions ro;
    ro.output = o.out;
    ro.daemon = o.daemon;
    ro.plots = !o.no_plots;
    ro.parallel = o.parallel;
    ro.progress = [](const std::string& line) { std::cout << line << std::endl; };
    const StudyResult r = run_study(s, ro);
    std::cout << "\n" << render_markdown(r.summary).substr(0, 4000) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop pilot run: " << e.what() << "\n";
    return 1;
  }
}

std::vector<Event> read_events_under(const fs::path& dir) {
  auto read = [](const fs::path& f) {
    std::ifstream in(f);
    if (!in) throw ReportError("cannot read " + f.string());
    return read_events_csv(in, f.string());
  };
  // Human sessions record into their own files; those are authoritative for their
  // participants, so a merged events.csv from an earlier report is not counted twice.
  std::vector<Event> events;
  std::set<std::string> in_sessions;
  if (fs::exists(dir / "participants"))
    for (const auto& p : fs::directory_iterator(dir / "participants"))
      if (fs::exists(p.path() / "session-events.csv")) {
        auto e = read(p.path() / "session-events.csv");
        for (const auto& x : e) in_sessions.insert(x.participant);
        events.insert(events.end(), e.begin(), e.end());
      }
  if (fs::exists(dir / "events.csv"))
    for (auto& e : read(dir / "events.csv"))
      if (!in_sessions.count(e.participant)) events.push_back(std::move(e));
  if (events.empty())
    throw ReportError("no events.csv or participants/*/session-events.csv under " + dir.string());
  return events;
}

}  // namespace

RecordedRun read_run(const fs::path& dir) {
  RecordedRun recorded;
  recorded.events = read_events_under(dir);
  // Written by `pilot run`; a study without it reports without the reward model.
  const fs::path iterations = dir / "iterations.csv";
  if (fs::exists(iterations)) {
    std::ifstream in(iterations);
    if (!in) throw ReportError("cannot read " + iterations.string());
    recorded.iterations = read_iterations_csv(in, iterations.string());
  }
  return recorded;
}

RecordedRun pool_runs(const std::vector<fs::path>& runs) {
  RecordedRun pooled;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const std::string prefix = "run" + std::to_string(k + 1) + "/";
    RecordedRun recorded = read_run(runs[k]);
    for (auto& e : recorded.events) {
      e.participant = prefix + e.participant;
      pooled.events.push_back(std::move(e));
    }
    for (auto& r : recorded.iterations) {
      r.participant = prefix + r.participant;
      pooled.iterations.push_back(std::move(r));
    }
  }
  return pooled;
}

namespace {

int report(const Options& o) {
  try {
    ReportOptions ro;
    if (!o.study.empty()) {
      const PilotStudy s = load_study(o.study);
      ro.study_name = s.name;
      ro.scale = s.scale;
      ro.seed = s.seed;
    }
    const fs::path dir = o.dir;
    const RecordedRun recorded = read_run(dir);
    const fs::path out = o.out.empty() ? dir : fs::path(o.out);
    const json s = write_report(recorded.events, ro, out, !o.no_plots, recorded.iterations);
    std::cout << render_markdown(s);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop pilot report: " << e.what() << "\n";
    return 1;
  }
}

// Several finished runs (seeds) of one study pooled: each listener of each run counts as
// one listener-run, so the tests are over all of them.
int pool(const Options& o) {
  try {
    ReportOptions ro;
    if (!o.study.empty()) {
      const PilotStudy s = load_study(o.study);
      ro.study_name = s.name + " (pooled over " + std::to_string(o.runs.size()) + " runs)";
      ro.scale = s.scale;
      ro.seed = s.seed;
    }
    const RecordedRun pooled = pool_runs(std::vector<fs::path>(o.runs.begin(), o.runs.end()));
    const json s = write_report(pooled.events, ro, o.out, !o.no_plots, pooled.iterations);
    std::cout << render_markdown(s);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop pilot pool: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

void add_pilot_commands(CLI::App& app) {
  // `tuneloop study` (human studies over IPC) sits beside `pilot`; registered here so the
  // CLI's main needs no line for it.
  auto o = std::make_shared<Options>();
  auto* pilot =
      app.add_subcommand("pilot", "pilot studies: run a study file, check it, report on it");
  pilot->require_subcommand(1);

  auto* run_cmd =
      pilot->add_subcommand("run",
                            "run a study: one scratch tuneloopd per simulated participant, "
                            "all iterations, a blinded evaluation, then the report");
  run_cmd->add_option("study", o->study, "study file (YAML; see docs/study-guide.md)")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--out", o->out, "output folder (default: the study's output:)");
  run_cmd->add_option("--daemon", o->daemon,
                      "tuneloopd to start (default: next to tuneloop, else on the PATH)");
  run_cmd->add_flag("--no-plots", o->no_plots, "skip rendering the plots with gnuplot");
  run_cmd->add_option("--parallel", o->parallel,
                      "participants run at once, one daemon each (default: the study's parallel:, 1)");
  run_cmd->add_option("--seed", o->seed, "use this seed instead of the study's seed:");
  run_cmd->add_option("--set", o->settings,
                      "a tuneloopd setting over the study's daemon_config, section.key=value "
                      "(repeatable), e.g. --set training.init=parent");
  run_cmd->callback([o] {
    if (const int rc = run(*o)) std::exit(rc);
  });

  auto* pool_cmd = pilot->add_subcommand(
      "pool", "pool finished runs of one study (several seeds) into one report over listener-runs");
  pool_cmd->add_option("runs", o->runs, "the runs' output folders")->required()->check(CLI::ExistingDirectory);
  pool_cmd->add_option("--out", o->out, "where the pooled report goes")->required();
  pool_cmd->add_option("--study", o->study, "the study file (for its name and scale)");
  pool_cmd->add_flag("--no-plots", o->no_plots, "skip rendering the plots with gnuplot");
  pool_cmd->callback([o] {
    if (const int rc = pool(*o)) std::exit(rc);
  });

  auto* check_cmd =
      pilot->add_subcommand("check", "validate a study file and print what it describes");
  check_cmd->add_option("study", o->study, "study file")->required();
  check_cmd->callback([o] {
    try {
      print_study(load_study(o->study));
    } catch (const std::exception& e) {
      std::cerr << "tuneloop pilot check: " << e.what() << "\n";
      std::exit(1);
    }
  });

  auto* report_cmd =
      pilot->add_subcommand("report",
                            "rebuild summary.json, report.md and the plots from a study's "
                            "events.csv and iterations.csv (and human sessions' "
                            "session-events.csv)");
  report_cmd->add_option("dir", o->dir, "the study's output folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  report_cmd->add_option("--study", o->study, "the study file (for its name, scale and seed)");
  report_cmd->add_option("--out", o->out, "write the report here instead (default: DIR)");
  report_cmd->add_flag("--no-plots", o->no_plots, "skip rendering the plots with gnuplot");
  report_cmd->callback([o] {
    if (const int rc = report(*o)) std::exit(rc);
  });
}

}  // namespace tuneloop::pilot

#include "loop/pilot/runner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "config/config.hpp"
#include "model/audio/audio.hpp"

using namespace tuneloop;
using namespace tuneloop::pilot;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/pilot-runner-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

fs::path daemon_binary() {
  return fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloopd";
}

PilotStudy tiny_study(const fs::path& out) {
  PilotStudy s = parse_study(R"(name: tiny
iterations: 1
tracks_per_iteration: 2
iteration_timeout_s: 300
daemon_config:
  generation: {seconds: 2.0}
  training: {steps: 5, batch_size: 2}
  schedule: {min_feedback: 1}
participants:
  - name: fast
    taste: {onset_rate: 6}
  - name: slow
    taste: {onset_rate: 2}
)");
  s.output = out;
  return s;
}

}  // namespace

TEST(PilotRunner, TheBlindedOrderMixesIterationsAndTakesTheChosenNumberFromEach) {
  std::vector<std::pair<int, long long>> tracks;
  for (int it = 0; it < 3; ++it)
    for (int i = 0; i < 6; ++i) tracks.emplace_back(it, it * 100 + i);
  const auto order = blinded_order(tracks, 4, 42);
  ASSERT_EQ(order.size(), 12u);
  std::map<int, int> per;
  for (const auto& [it, id] : order) {
    ++per[it];
    EXPECT_EQ(id / 100, it);
  }
  EXPECT_EQ(per, (std::map<int, int>{{0, 4}, {1, 4}, {2, 4}}));
  // Not grouped by iteration: some neighbours come from different iterations.
  int switches = 0;
  for (std::size_t i = 1; i < order.size(); ++i) switches += order[i].first != order[i - 1].first;
  EXPECT_GE(switches, 4);
  EXPECT_EQ(blinded_order(tracks, 4, 42), order);
  EXPECT_NE(blinded_order(tracks, 4, 43), order);
  EXPECT_EQ(blinded_order(tracks, 0, 1).size(), 18u);
}

TEST(PilotRunner, EachParticipantsDaemonConfigIsAcceptedByTheConfigLoader) {
  TempDir dir;
  PilotStudy s = tiny_study(dir.path);
  const fs::path file = dir.path / "tuneloopd.yaml";
  std::ofstream(file) << participant_config(s, s.participants[1], 1);
  const config::Config c = config::load_config_file(file);
  EXPECT_EQ(c.daemon.listener, "slow");
  EXPECT_EQ(c.audio.output, config::AudioOutput::none);
  EXPECT_FALSE(c.http.enabled);
  EXPECT_EQ(c.generation.tracks_per_iteration, 2);
  EXPECT_EQ(c.schedule.after_new_ratings, 0);
  EXPECT_EQ(c.schedule.min_feedback, 1) << "the study's daemon_config is merged in";
  EXPECT_EQ(c.training.steps, 5);
  EXPECT_DOUBLE_EQ(c.generation.seconds, 2.0);
}

TEST(PilotRunner, TheDefaultStudysDaemonConfigIsValidForEveryParticipant) {
  TempDir dir;
  const PilotStudy s = load_study(fs::path(TUNELOOP_SOURCE_DIR) / "studies" / "default.yaml");
  for (std::size_t i = 0; i < s.participants.size(); ++i) {
    const fs::path file = dir.path / (s.participants[i].name + ".yaml");
    std::ofstream(file) << participant_config(s, s.participants[i], i);
    const config::Config c = config::load_config_file(file);
    EXPECT_EQ(c.daemon.listener, s.participants[i].name);
    EXPECT_EQ(c.generation.tracks_per_iteration, s.tracks_per_iteration);
  }
}

TEST(PilotRunner, AMissingDaemonMethodIsNamedInTheError) {
  try {
    require_methods({"tracks.list", "rate", "listen.report"}, required_methods(), "tuneloopd (x)");
    FAIL();
  } catch (const PilotError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'iterate'"), std::string::npos) << m;
    EXPECT_NE(m.find("'iterations.list'"), std::string::npos) << m;
    EXPECT_EQ(m.find("'rate'"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(require_methods({"a", "b"}, {"a"}, "x"));
}

TEST(PilotRunner, ADaemonThatCannotStartIsReportedWithItsLog) {
  TempDir dir;
  std::ofstream(dir.path / "bad.yaml") << "audio: {output: nowhere}\n";
  if (!fs::exists(daemon_binary())) GTEST_SKIP() << "tuneloopd is not built at " << daemon_binary();
  try {
    DaemonProcess d(daemon_binary(), dir.path / "p", dir.path / "bad.yaml", dir.path / "s.sock",
                    20);
    FAIL();
  } catch (const PilotError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
}

TEST(PilotRunner, ATinyStudyRunsEndToEndAgainstARealDaemon) {
  if (!fs::exists(daemon_binary())) GTEST_SKIP() << "tuneloopd is not built at " << daemon_binary();
  TempDir dir;
  const PilotStudy s = tiny_study(dir.path / "out");
  std::set<std::string> methods;
  {
    fs::create_directories(dir.path / "probe");
    std::ofstream(dir.path / "probe.yaml") << participant_config(s, s.participants[0], 0);
    DaemonProcess d(daemon_binary(), dir.path / "probe", dir.path / "probe.yaml",
                    dir.path / "probe.sock", 30);
    auto c = d.connect();
    for (const auto& m : c.call("methods")) methods.insert(m.value("name", ""));
  }
  if (!methods.count("iterate") || !methods.count("iterations.list")) {
    // Without the loop's methods the runner must stop at once and say why.
    RunOptions o;
    o.daemon = daemon_binary();
    o.plots = false;
    try {
      run_study(s, o);
      FAIL() << "ran without the iterate method";
    } catch (const PilotError& e) {
      EXPECT_NE(std::string(e.what()).find("'iterate'"), std::string::npos) << e.what();
    }
    GTEST_SKIP() << "this tuneloopd has no 'iterate'/'iterations.list' yet (the loop integration); "
                    "checked that the runner names the missing method instead";
  }
  // The study's daemons use the shipped base model; without it no iteration can be made.
  const fs::path weights = fs::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  if (!fs::exists(weights / "autoencoder.safetensors") || !fs::exists(weights / "denoiser.safetensors"))
    GTEST_SKIP() << "no shipped base model in " << weights << ": a study needs one to make iterations";
  RunOptions o;
  o.daemon = daemon_binary();
  o.plots = false;
  const StudyResult r = run_study(s, o);
  EXPECT_TRUE(fs::exists(r.output / "events.csv"));
  EXPECT_TRUE(fs::exists(r.output / "report.md"));
  int eval = 0, listens = 0;
  std::set<int> iterations;
  for (const auto& e : r.events) {
    eval += e.phase == "evaluation" && e.kind == "rating";
    listens += e.kind == "listen";
    iterations.insert(e.iteration);
    EXPECT_EQ(e.features.size(), audio::feature_names().size());
  }
  EXPECT_EQ(iterations, (std::set<int>{0, 1}));
  EXPECT_EQ(listens, 2 * 2 * 2) << "2 participants x 2 iterations x 2 tracks";
  EXPECT_EQ(eval, 2 * 2 * 2);
  EXPECT_EQ(r.summary["per_iteration"].size(), 2u);
}

namespace {

// A shell wrapper so DaemonProcess can exec the Python stand-in like a binary.
fs::path fake_daemon(const fs::path& dir) {
  const fs::path exe = dir / "fake-tuneloopd";
  std::ofstream(exe) << "#!/bin/sh\nexec python3 " << TUNELOOP_SOURCE_DIR
                     << "/tests/pilot/fake_tuneloopd.py \"$@\"\n";
  fs::permissions(exe, fs::perms::owner_all);
  return exe;
}

std::map<std::string, int> calls_by_method(const fs::path& data_dir) {
  std::map<std::string, int> n;
  std::ifstream in(data_dir / "calls.jsonl");
  std::string line;
  while (std::getline(in, line)) ++n[nlohmann::json::parse(line)["method"].get<std::string>()];
  return n;
}

}  // namespace

TEST(PilotRunner, AStudyDrivesEachParticipantsDaemonThroughEveryIterationAndTheBlindedEvaluation) {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 is needed for the stand-in daemon";
  TempDir dir;
  PilotStudy s = parse_study(R"(iterations: 2
tracks_per_iteration: 4
participants:
  - {name: bright, taste: {brightness: 2500}, noise: 0}
  - {name: dark, taste: {brightness: 300}, noise: 0.3}
)");
  s.output = dir.path / "out";
  RunOptions o;
  o.daemon = fake_daemon(dir.path);
  o.plots = false;
  std::vector<std::string> progress;
  o.progress = [&](const std::string& line) { progress.push_back(line); };
  const StudyResult r = run_study(s, o);

  std::map<std::string, int> n;
  for (const auto& e : r.events) {
    ++n[e.phase + "/" + e.kind];
    ASSERT_EQ(e.features.size(), audio::feature_names().size());
    EXPECT_GT(e.features[2], 50.0) << "brightness measured from the tone's audio";
  }
  EXPECT_EQ(n["training/listen"], 2 * 3 * 4);
  EXPECT_EQ(n["training/rating"], 2 * 3 * 4);
  EXPECT_EQ(n["evaluation/rating"], 2 * 3 * 4) << "every track of every iteration, base included";
  for (const char* who : {"bright", "dark"}) {
    auto calls = calls_by_method(s.output / "participants" / who / "data");
    EXPECT_EQ(calls["iterate"], 3) << who;
    EXPECT_EQ(calls["rate"], 12) << who << ": evaluation ratings are not sent as feedback";
    EXPECT_EQ(calls["listen.report"], 12) << who;
    EXPECT_GE(calls["job.status"], 1) << who << ": progress is polled while waiting";
    EXPECT_EQ(calls["shutdown"], 1) << who;
  }
  for (const char* f : {"events.csv", "summary.json", "report.md", "plots.gp"})
    EXPECT_TRUE(fs::exists(s.output / f)) << f;
  EXPECT_EQ(r.summary["per_iteration"].size(), 3u);
  EXPECT_EQ(r.summary["rating_source"], "evaluation");
  // The stand-in moves towards the best-rated pitch, so the noiseless bright listener gains.
  EXPECT_GT(r.summary["per_listener"]["bright"]["delta_vs_base"]["2"].get<double>(), 0.0);
  bool waited = false;
  for (const auto& line : progress) waited = waited || line.find("step=1") != std::string::npos;
  EXPECT_TRUE(waited) << "job progress is printed";
}

TEST(PilotRunner, AnAbPairsStudyRecordsAChoiceForEachTrackAgainstABaseTrack) {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 is needed for the stand-in daemon";
  TempDir dir;
  PilotStudy s = parse_study(R"(iterations: 1
tracks_per_iteration: 3
design: ab_pairs
participants:
  - {name: bright, taste: {brightness: 2500}}
)");
  s.output = dir.path / "out";
  RunOptions o;
  o.daemon = fake_daemon(dir.path);
  o.plots = false;
  const StudyResult r = run_study(s, o);
  int choices = 0;
  for (const auto& e : r.events)
    if (e.kind == "choice") {
      ++choices;
      EXPECT_EQ(e.iteration, 1);
      EXPECT_EQ(e.other_iteration, 0);
      EXPECT_TRUE(e.preferred == 0 || e.preferred == 1);
    }
  EXPECT_EQ(choices, 3);
  ASSERT_EQ(r.summary["ab_choices"].size(), 1u);
}

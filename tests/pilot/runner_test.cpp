#include "pilot/runner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "config/config.hpp"
#include "audio/audio.hpp"
#include "pilot/commands.hpp"
#include "store/store.hpp"
#include "tests/pilot/pilot_daemon.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop;
using namespace tuneloop::pilot;
using namespace tuneloop::study;
namespace fs = std::filesystem;

namespace {

using tuneloop::testing::TempDir;

fs::path daemon_binary() {
  return tuneloop::testing::tuneloopd_path();
}

PilotStudy tiny_study(const fs::path& out) {
  PilotStudy s = parse_study(R"(name: tiny
iterations: 1
tracks_per_iteration: 2
iteration_timeout_s: 300
daemon_config:
  paths: {weights_dir: /tmp/pilot-test-weights}
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
  TempDir dir("pilot-runner");
  PilotStudy s = tiny_study(dir.path());
  const fs::path file = dir.path() / "tuneloopd.yaml";
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
  EXPECT_EQ(c.paths.weights_dir, fs::path("/tmp/pilot-test-weights"));
}

TEST(PilotRunner, TheDefaultStudysDaemonConfigIsValidForEveryParticipant) {
  TempDir dir("pilot-runner");
  const PilotStudy s = load_study(fs::path(TUNELOOP_SOURCE_DIR) / "studies" / "default.yaml");
  for (std::size_t i = 0; i < s.participants.size(); ++i) {
    const fs::path file = dir.path() / (s.participants[i].name + ".yaml");
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
  TempDir dir("pilot-runner");
  std::ofstream(dir.path() / "bad.yaml")
      << "paths: {weights_dir: \"" << tuneloop::testing::fixture_weights()
      << "\"}\naudio: {output: nowhere}\n";
  try {
    auto d = start_daemon(daemon_binary(), dir.path() / "p", dir.path() / "bad.yaml",
                          dir.path() / "s.sock", 20);
    FAIL();
  } catch (const PilotError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
}

namespace {

// The participant's daemon database, read after the study stopped the daemon.
store::Store participant_store(const fs::path& out, const std::string& who) {
  return store::Store::open((out / "participants" / who / "data" / "tuneloop.db").string());
}

}  // namespace

TEST(PilotRunner, AStudyDrivesEachParticipantsRealDaemonInParallelThroughEveryIterationAndTheBlindedEvaluation) {
  TempDir dir("pilot-runner");
  PilotStudy s = parse_study(R"(iterations: 2
tracks_per_iteration: 3
iteration_timeout_s: 300
parallel: 2
daemon_config:
)" + tuneloop::testing::tiny_loop_yaml() + R"(participants:
  - {name: bright, taste: {brightness: 2500}, noise: 0}
  - {name: dark, taste: {brightness: 300}, noise: 0.3}
)");
  s.output = dir.path() / "out";
  RunOptions o;
  o.daemon = daemon_binary();
  o.plots = false;
  std::vector<std::string> progress;
  o.progress = [&](const std::string& line) { progress.push_back(line); };
  const StudyResult r = run_study(s, o);

  std::map<std::string, int> n;
  for (const auto& e : r.events) {
    ++n[e.phase + "/" + e.kind];
    ASSERT_EQ(e.features.size(), audio::feature_names().size());
    EXPECT_TRUE(std::isfinite(e.features[2])) << "brightness measured from the generated audio";
  }
  EXPECT_EQ(n["training/listen"], 2 * 3 * 3);
  EXPECT_EQ(n["training/rating"], 2 * 3 * 3);
  EXPECT_EQ(n["evaluation/rating"], 2 * 3 * 3) << "every track of every iteration, base included";
  EXPECT_EQ(r.events.front().participant, "bright") << "events in study order, though run in parallel";
  EXPECT_EQ(r.events.back().participant, "dark");
  for (const char* who : {"bright", "dark"}) {
    auto st = participant_store(s.output, who);
    const auto listener = st.find_listener(who);
    ASSERT_TRUE(listener) << who << ": the daemon recorded under the participant's name";
    const auto its = st.iterations(listener->id);
    ASSERT_EQ(its.size(), 3u) << who;
    for (const auto& it : its) {
      EXPECT_EQ(it.status, store::IterationStatus::ready) << who << " iteration " << it.number;
      EXPECT_EQ(st.tracks(listener->id, it.id).size(), 3u) << who << " iteration " << it.number;
    }
    EXPECT_FALSE(its[2].adapter_path.empty()) << who << ": iteration 2 was fine-tuned";
    EXPECT_EQ(st.rating_history_for_listener(listener->id).size(), 9u)
        << who << ": evaluation ratings are not sent as feedback";
    EXPECT_EQ(st.plays_for_listener(listener->id).size(), 9u) << who;
  }
  for (const char* f : {"events.csv", "iterations.csv", "summary.json", "report.md", "plots.gp"})
    EXPECT_TRUE(fs::exists(s.output / f)) << f;
  EXPECT_EQ(r.summary["per_iteration"].size(), 3u);
  EXPECT_EQ(r.summary["rating_source"], "evaluation");
  // Each iteration's reward model as the daemon recorded it, in study order.
  ASSERT_EQ(r.iterations.size(), 2u * 3);
  EXPECT_EQ(r.iterations.front().participant, "bright");
  EXPECT_EQ(r.iterations.back().participant, "dark");
  EXPECT_EQ(r.iterations.back().iteration, 2);
  for (const auto& rec : r.iterations) {
    if (rec.iteration == 0) {
      EXPECT_TRUE(std::isnan(rec.reward_accuracy))
          << rec.participant << ": the base has no reward model";
      continue;
    }
    EXPECT_GT(rec.feedback_tracks, 0) << rec.participant << " iteration " << rec.iteration;
    if (!std::isnan(rec.reward_accuracy)) {
      EXPECT_GE(rec.reward_accuracy, 0.0);
      EXPECT_LE(rec.reward_accuracy, 1.0);
    }
  }
  ASSERT_TRUE(r.summary.contains("reward_model"));
  EXPECT_EQ(r.summary["reward_model"].size(), 3u);
  EXPECT_EQ(read_run(s.output).iterations.size(), r.iterations.size())
      << "iterations.csv reads back";
  int ready_lines = 0;
  for (const auto& line : progress) ready_lines += line.find(" ready after ") != std::string::npos;
  EXPECT_EQ(ready_lines, 2 * 3) << "each iteration's wait is reported";
}

TEST(PilotRunner, AnAbPairsStudyRecordsAChoiceForEachTrackAgainstABaseTrack) {
  TempDir dir("pilot-runner");
  PilotStudy s = parse_study(R"(iterations: 1
tracks_per_iteration: 3
design: ab_pairs
iteration_timeout_s: 300
daemon_config:
)" + tuneloop::testing::tiny_loop_yaml() + R"(participants:
  - {name: bright, taste: {brightness: 2500}}
)");
  s.output = dir.path() / "out";
  RunOptions o;
  o.daemon = daemon_binary();
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

namespace {

Event pool_rating(const std::string& who, int it, double stars) {
  Event e;
  e.participant = who;
  e.phase = "evaluation";
  e.iteration = it;
  e.track_id = 10 * it + static_cast<long long>(stars);
  e.stars = stars;
  return e;
}

IterationRecord pool_record(const std::string& who, int it, double accuracy) {
  IterationRecord r;
  r.participant = who;
  r.iteration = it;
  r.reward_accuracy = accuracy;
  return r;
}

}  // namespace

TEST(PilotPool, EachRunsListenerCountsOnceInTheRewardModelsMeanAndARunWithoutTheTableStillPools) {
  TempDir dir("pilot-pool");
  const fs::path one = dir.path() / "seed1", two = dir.path() / "seed2",
                 three = dir.path() / "seed3";
  write_report({pool_rating("a", 0, 2), pool_rating("a", 1, 4)}, ReportOptions{}, one, false,
               {pool_record("a", 0, Event::none), pool_record("a", 1, 0.6)});
  write_report({pool_rating("a", 0, 3), pool_rating("a", 1, 3)}, ReportOptions{}, two, false,
               {pool_record("a", 0, Event::none), pool_record("a", 1, 1.0)});
  write_report({pool_rating("a", 0, 1), pool_rating("a", 1, 5)}, ReportOptions{}, three, false);
  EXPECT_FALSE(fs::exists(three / "iterations.csv"));
  EXPECT_TRUE(read_run(three).iterations.empty());
  EXPECT_EQ(read_run(one).iterations.size(), 2u);

  const RecordedRun pooled = pool_runs({one, two, three});
  EXPECT_EQ(pooled.events.size(), 6u);
  ASSERT_EQ(pooled.iterations.size(), 4u);
  EXPECT_EQ(pooled.iterations[1].participant, "run1/a");
  EXPECT_EQ(pooled.iterations[3].participant, "run2/a");
  const auto s = summarise(pooled.events, ReportOptions{}, pooled.iterations);
  EXPECT_EQ(s["participants"].size(), 3u);
  const auto& rm = s["reward_model"];
  ASSERT_EQ(rm.size(), 2u);
  EXPECT_EQ(rm[1]["n_listeners"], 2) << "the same name in two runs is two listener-runs";
  EXPECT_NEAR(rm[1]["mean_accuracy"].get<double>(), 0.8, 1e-12);
  EXPECT_NE(render_markdown(s).find("## Reward model"), std::string::npos);
}

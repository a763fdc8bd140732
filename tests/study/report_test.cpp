#include "study/report.hpp"

#include <gtest/gtest.h>

#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "audio/features.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop::study;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using tuneloop::testing::TempDir;

Event rating(const std::string& who, int it, double stars,
             const std::string& phase = "evaluation") {
  static long long next_id = 1000;
  Event e;
  e.participant = who;
  e.phase = phase;
  e.kind = "rating";
  e.iteration = it;
  e.track_id = ++next_id;
  e.stars = stars;
  return e;
}

std::vector<double> feat(double first) {
  std::vector<double> f(tuneloop::audio::feature_names().size(), 0.5);
  f[0] = first;
  return f;
}

// Three listeners, hand-checkable: listener means at iteration 0 are 2.5, 3, 1 and at
// iteration 1 are 4, 4, 2, so the deltas are +1.5, +1, +1.
std::vector<Event> synthetic() {
  std::vector<Event> ev = {rating("a", 0, 2),
                           rating("a", 0, 3),
                           rating("a", 1, 4),
                           rating("b", 0, 3),
                           rating("b", 1, 3.5),
                           rating("b", 1, 4.5),
                           rating("c", 0, 1),
                           rating("c", 1, 2),
                           rating("a", 0, 5, "training")};  // training ratings are not the measure
  Event l1;
  l1.participant = "a";
  l1.kind = "listen";
  l1.iteration = 0;
  l1.track_id = 1;
  l1.seconds_heard = 2;
  l1.duration = 8;
  l1.ended = "skipped";
  Event l2 = l1;
  l2.track_id = 2;
  l2.seconds_heard = 8;
  l2.ended = "completed";
  l1.features = feat(0);
  l2.features = feat(2);
  Event l3 = l2, l4 = l2;
  l3.iteration = l4.iteration = 1;
  l3.track_id = 3;
  l4.track_id = 4;
  l3.features = feat(0);
  l4.features = feat(1);
  ev.insert(ev.end(), {l1, l2, l3, l4});
  return ev;
}

IterationRecord record(const std::string& who, int it, double accuracy, int feedback = -1) {
  IterationRecord r;
  r.participant = who;
  r.iteration = it;
  r.reward_accuracy = accuracy;
  r.feedback_tracks = feedback;
  return r;
}

// The synthetic listeners' iterations: no reward model at iteration 0; at iteration 1,
// a and b have one (0.6, 0.8) and c's daemon fitted none.
std::vector<IterationRecord> synthetic_iterations() {
  return {record("a", 0, Event::none, 0), record("b", 0, Event::none, 0),
          record("c", 0, Event::none, 0), record("a", 1, 0.6, 4),
          record("b", 1, 0.8, 3),         record("c", 1, Event::none)};
}

const json& iteration(const json& s, int it) {
  for (const auto& r : s["per_iteration"])
    if (r["iteration"] == it) return r;
  throw std::runtime_error("no iteration");
}

}  // namespace

TEST(PilotReport, MeansAreOverListenerMeansFromTheEvaluationPhase) {
  const json s = summarise(synthetic(), ReportOptions{});
  EXPECT_EQ(s["rating_source"], "evaluation");
  const auto& r0 = iteration(s, 0);
  const auto& r1 = iteration(s, 1);
  EXPECT_EQ(r0["n_listeners"], 3);
  EXPECT_EQ(r0["n_ratings"], 4);
  EXPECT_NEAR(r0["mean"].get<double>(), (2.5 + 3 + 1) / 3, 1e-12);
  EXPECT_NEAR(r1["mean"].get<double>(), (4 + 4 + 2) / 3.0, 1e-12);
  EXPECT_LE(r1["ci_lower"].get<double>(), r1["mean"].get<double>());
  EXPECT_GE(r1["ci_upper"].get<double>(), r1["mean"].get<double>());
  EXPECT_GE(r1["ci_lower"].get<double>(), 2.0);
  EXPECT_LE(r1["ci_upper"].get<double>(), 4.0);
}

TEST(PilotReport, PairedTestsAndEffectSizesMatchHandComputedValues) {
  const json s = summarise(synthetic(), ReportOptions{});
  const auto& v = iteration(s, 1)["vs_base"];
  EXPECT_EQ(v["n_listeners"], 3);
  EXPECT_NEAR(v["mean_delta"].get<double>(), 3.5 / 3, 1e-12);
  // All three deltas positive: exact two-sided p = 2 / 2^3 for both tests.
  EXPECT_NEAR(v["wilcoxon"]["p_value"].get<double>(), 0.25, 1e-12);
  EXPECT_TRUE(v["wilcoxon"]["exact"].get<bool>());
  EXPECT_NEAR(v["permutation"]["p_value"].get<double>(), 0.25, 1e-12);
  // d_z = mean / sd = (7/6) / sqrt(1/12).
  EXPECT_NEAR(v["cohens_dz"].get<double>(), (7.0 / 6) / std::sqrt(1.0 / 12), 1e-9);
  EXPECT_DOUBLE_EQ(v["rank_biserial"].get<double>(), 1.0);
  EXPECT_EQ(v["wins"], 3);
  EXPECT_NEAR(s["per_listener"]["a"]["delta_vs_base"]["1"].get<double>(), 1.5, 1e-12);
  EXPECT_NEAR(s["per_listener"]["c"]["mean_rating"]["0"].get<double>(), 1.0, 1e-12);
}

TEST(PilotReport, TheTargetIsCheckedAndAShortfallIsMeasured) {
  const json s = summarise(synthetic(), ReportOptions{});
  const auto& t = s["target"]["iteration_1"];
  EXPECT_FALSE(t["met"].get<bool>()) << "p = 0.25 is not below 0.01";
  EXPECT_DOUBLE_EQ(t["short_by"].get<double>(), 0.0) << "the delta itself is above +0.5";
  EXPECT_TRUE(s["target"]["iteration_2"].is_null());
  EXPECT_DOUBLE_EQ(s["paper"]["iteration_1_vs_0"].get<double>(), 0.20);
}

TEST(PilotReport, ListeningAndDiversityAreSummarisedPerIteration) {
  const json s = summarise(synthetic(), ReportOptions{});
  const auto& l0 = s["listening"][0];
  EXPECT_EQ(l0["iteration"], 0);
  EXPECT_DOUBLE_EQ(l0["mean_fraction_heard"].get<double>(), (0.25 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(l0["skip_share"].get<double>(), 0.5);
  // Listener a's batches differ only in the first feature: {0, 2} vs {0, 1} on one pooled
  // scale, so iteration 1 is exactly half as diverse.
  const auto& d = s["diversity"];
  EXPECT_DOUBLE_EQ(d[0]["relative_to_base"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(d[1]["relative_to_base"].get<double>(), 0.5);
  EXPECT_TRUE(s["target"]["diversity"]["met"].get<bool>());
}

TEST(PilotReport, TrainingRatingsAreUsedWhenThereWasNoEvaluation) {
  const json s =
      summarise({rating("a", 0, 2, "training"), rating("a", 1, 4, "training")}, ReportOptions{});
  EXPECT_EQ(s["rating_source"], "training");
  EXPECT_DOUBLE_EQ(iteration(s, 1)["vs_base"]["mean_delta"].get<double>(), 2.0);
  EXPECT_TRUE(iteration(s, 1)["vs_base"]["cohens_dz"].is_null()) << "one listener has no d_z";
}

TEST(PilotReport, AbChoicesGiveEachListenersShareOfPairsWon) {
  std::vector<Event> ev;
  for (auto [who, won] : std::vector<std::pair<std::string, int>>{
           {"x", 1}, {"x", 1}, {"x", 0}, {"x", 1}, {"y", 1}, {"y", 1}}) {
    Event e;
    e.participant = who;
    e.phase = "evaluation";
    e.kind = "choice";
    e.iteration = 1;
    e.preferred = won;
    ev.push_back(e);
  }
  const json s = summarise(ev, ReportOptions{});
  ASSERT_EQ(s["ab_choices"].size(), 1u);
  EXPECT_DOUBLE_EQ(s["ab_choices"][0]["mean_share_preferred"].get<double>(), (0.75 + 1.0) / 2);
  EXPECT_EQ(s["ab_choices"][0]["n_listeners"], 2);
}

TEST(PilotReport, EventsSurviveACsvRoundTrip) {
  const auto ev = synthetic();
  std::stringstream csv;
  write_events_csv(ev, csv);
  const auto back = read_events_csv(csv);
  ASSERT_EQ(back.size(), ev.size());
  for (std::size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(back[i].participant, ev[i].participant);
    EXPECT_EQ(back[i].kind, ev[i].kind);
    EXPECT_EQ(back[i].iteration, ev[i].iteration);
    EXPECT_EQ(back[i].track_id, ev[i].track_id);
    EXPECT_EQ(std::isnan(back[i].stars), std::isnan(ev[i].stars));
    if (!std::isnan(ev[i].stars)) {
      EXPECT_DOUBLE_EQ(back[i].stars, ev[i].stars);
    }
    EXPECT_EQ(back[i].ended, ev[i].ended);
    EXPECT_EQ(back[i].features, ev[i].features);
  }
  EXPECT_EQ(summarise(back, ReportOptions{}).dump(), summarise(ev, ReportOptions{}).dump());
}

TEST(PilotReport, AMalformedEventsFileIsReportedWithItsLine) {
  std::stringstream bad_header("a,b,c\n");
  EXPECT_THROW(read_events_csv(bad_header), ReportError);
  std::stringstream csv;
  write_events_csv({rating("a", 0, 3)}, csv);
  std::string text = csv.str();
  text.replace(text.find(",3,"), 3, ",x,");
  std::stringstream bad(text);
  try {
    read_events_csv(bad, "e.csv");
    FAIL();
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("e.csv:2: stars"), std::string::npos) << e.what();
  }
}

TEST(PilotReport, TheMarkdownReportShowsTheTableNextToThePaper) {
  const std::string md = render_markdown(summarise(synthetic(), ReportOptions{}));
  EXPECT_NE(md.find("| 1 | 3 | 4 | 3.33 | ["), std::string::npos) << md;
  EXPECT_NE(md.find("+1.17"), std::string::npos);
  EXPECT_NE(md.find("+0.20"), std::string::npos);
  EXPECT_NE(md.find("| a | 2.50 | 4.00 | +1.50 |"), std::string::npos) << md;
  EXPECT_NE(md.find("not met"), std::string::npos);
}

TEST(PilotReport, IterationRecordsSurviveACsvRoundTrip) {
  const auto records = synthetic_iterations();
  std::stringstream csv;
  write_iterations_csv(records, csv);
  EXPECT_EQ(csv.str().substr(0, csv.str().find('\n')),
            "participant,iteration,reward_accuracy,feedback_tracks");
  const auto back = read_iterations_csv(csv);
  ASSERT_EQ(back.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(back[i].participant, records[i].participant);
    EXPECT_EQ(back[i].iteration, records[i].iteration);
    EXPECT_EQ(std::isnan(back[i].reward_accuracy), std::isnan(records[i].reward_accuracy)) << i;
    if (!std::isnan(records[i].reward_accuracy)) {
      EXPECT_DOUBLE_EQ(back[i].reward_accuracy, records[i].reward_accuracy);
    }
    EXPECT_EQ(back[i].feedback_tracks, records[i].feedback_tracks) << i;
  }
}

TEST(PilotReport, AnIterationsFileIsReadByColumnName) {
  std::stringstream csv("iteration,extra,participant,reward_accuracy\n2,x,a,0.75\n");
  const auto back = read_iterations_csv(csv);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].participant, "a");
  EXPECT_EQ(back[0].iteration, 2);
  EXPECT_DOUBLE_EQ(back[0].reward_accuracy, 0.75);
  EXPECT_EQ(back[0].feedback_tracks, -1) << "no feedback_tracks column";
}

TEST(PilotReport, AMalformedIterationsFileIsReportedWithItsLine) {
  std::stringstream bad_header("participant,stars\n");
  EXPECT_THROW(read_iterations_csv(bad_header), ReportError);
  std::stringstream bad(
      "participant,iteration,reward_accuracy,feedback_tracks\na,0,,0\nb,1,high,3\n");
  try {
    read_iterations_csv(bad, "i.csv");
    FAIL();
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("i.csv:3: reward_accuracy"), std::string::npos)
        << e.what();
  }
}

TEST(PilotReport, RewardAccuracyIsAveragedOverTheListenersWhoseLoopFittedAModel) {
  const json s = summarise(synthetic(), ReportOptions{}, synthetic_iterations());
  ASSERT_TRUE(s.contains("reward_model"));
  const auto& rm = s["reward_model"];
  ASSERT_EQ(rm.size(), 2u);
  EXPECT_EQ(rm[0]["iteration"], 0);
  EXPECT_EQ(rm[0]["n_listeners"], 0);
  EXPECT_EQ(rm[0]["n_recorded"], 3);
  EXPECT_TRUE(rm[0]["mean_accuracy"].is_null());
  EXPECT_EQ(rm[1]["iteration"], 1);
  EXPECT_EQ(rm[1]["n_listeners"], 2) << "c's iteration has no reward model";
  EXPECT_EQ(rm[1]["n_recorded"], 3);
  EXPECT_NEAR(rm[1]["mean_accuracy"].get<double>(), 0.7, 1e-12);
  EXPECT_DOUBLE_EQ(rm[1]["min_accuracy"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(rm[1]["max_accuracy"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(rm[1]["mean_feedback_tracks"].get<double>(), 3.5);
  // The rest of the summary is what it is without the records.
  json rest = s;
  rest.erase("reward_model");
  EXPECT_EQ(rest.dump(), summarise(synthetic(), ReportOptions{}).dump());
}

TEST(PilotReport, AReportWithoutIterationRecordsHasNoRewardModelSection) {
  const json s = summarise(synthetic(), ReportOptions{});
  EXPECT_FALSE(s.contains("reward_model"));
  const std::string md = render_markdown(s);
  EXPECT_EQ(md.find("Reward model"), std::string::npos) << md;
  EXPECT_NE(md.find("## Within-batch diversity"), std::string::npos);
}

TEST(PilotReport, TheMarkdownReportShowsTheRewardModelsAccuracyPerIteration) {
  const std::string md =
      render_markdown(summarise(synthetic(), ReportOptions{}, synthetic_iterations()));
  EXPECT_NE(md.find("## Reward model"), std::string::npos) << md;
  EXPECT_NE(md.find("0.5 = chance"), std::string::npos) << md;
  EXPECT_NE(md.find("| 0 | 0 | – | – | – | 0.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | 2 | 0.70 | 0.60 | 0.80 | 3.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | 3 | 4 | 3.33 | ["), std::string::npos)
      << "the existing table is unchanged";
}

TEST(PilotReport, TheReportFolderHoldsTheIterationsTableOnlyWhenThereAreRecords) {
  TempDir dir("pilot-report");
  write_report(synthetic(), ReportOptions{}, dir.path(), false, synthetic_iterations());
  ASSERT_TRUE(fs::exists(dir.path() / "iterations.csv"));
  {
    std::ifstream in(dir.path() / "iterations.csv");
    EXPECT_EQ(read_iterations_csv(in).size(), synthetic_iterations().size());
  }
  std::ifstream summary(dir.path() / "summary.json");
  EXPECT_TRUE(json::parse(summary).contains("reward_model"));
  write_report(synthetic(), ReportOptions{}, dir.path(), false);
  EXPECT_FALSE(fs::exists(dir.path() / "iterations.csv")) << "a stale table is removed";
  EXPECT_TRUE(fs::exists(dir.path() / "report.md"));
}

TEST(PilotReport, GnuplotRendersNonEmptyPngPlots) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "gnuplot is not installed";
  TempDir dir("pilot-report");
  const json s = write_report(synthetic(), ReportOptions{}, dir.path(), true);
  for (const char* f : {"events.csv", "summary.json", "report.md", "plots.gp"})
    EXPECT_TRUE(fs::exists(dir.path() / f)) << f;
  for (const char* f : {"rating_by_iteration.png", "rating_by_listener.png", "diversity.png"}) {
    ASSERT_TRUE(fs::exists(dir.path() / f)) << f;
    EXPECT_GT(fs::file_size(dir.path() / f), 1000u) << f;
    std::ifstream in(dir.path() / f, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << f;
  }
  std::ifstream in(dir.path() / "summary.json");
  EXPECT_EQ(json::parse(in), s);
}

TEST(PilotReport, AMissingPlottingProgramIsAClearError) {
  TempDir dir("pilot-report");
  write_plot_data(summarise(synthetic(), ReportOptions{}), dir.path());
  try {
    render_plots(dir.path(), "no-such-gnuplot-binary");
    FAIL();
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-gnuplot-binary"), std::string::npos);
  }
}

TEST(PilotReport, AGnuplotThatHangsIsKilledAfterTheTimeoutAndReported) {
  TempDir dir("pilot-report");
  write_plot_data(summarise(synthetic(), ReportOptions{}), dir.path());
  // A plotting program that never finishes and says who it is.
  const std::filesystem::path fake = dir.path() / "wedged-gnuplot";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\necho $$ > \"" << (dir.path() / "wedged.pid").string() << "\"\nexec sleep 600\n";
  }
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  try {
    render_plots(dir.path(), fake.string(), std::chrono::milliseconds(2000));
    FAIL() << "a wedged gnuplot was waited for";
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("did not finish within 2 s; killed"), std::string::npos)
        << e.what();
  }
  std::ifstream in(dir.path() / "wedged.pid");
  pid_t pid = 0;
  ASSERT_TRUE(in >> pid) << "the fake never ran";
  // Killed and reaped: no such process any more (not even a zombie).
  EXPECT_NE(::kill(pid, 0), 0);
  EXPECT_EQ(errno, ESRCH);
}

// Human studies against a real tuneloopd on fixture weights: study.start draws a blinded
// playlist, study.rate records judgements apart from feedback, study.export writes the
// simulated studies' formats, and `tuneloop study session` drives it from the keyboard.
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "client/client.hpp"
#include "study/report.hpp"
#include "pilot/runner.hpp"
#include "tests/pilot/pilot_daemon.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using tuneloop::client::CallError;
using tuneloop::client::Client;
using tuneloop::client::DaemonProcess;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One daemon for the suite: iteration 0 (3 tracks) and iteration 1 (3 tracks) made once.
class StudySession : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new tuneloop::testing::TempDir("pilot-study");
    std::ofstream(dir() / "tuneloopd.yaml")
        << "daemon: {listener: alice}\nhttp: {enabled: false}\naudio: {output: none}\n"
        << tuneloop::testing::tiny_loop_yaml("", 3);
    daemon_ = new DaemonProcess(tuneloop::pilot::start_daemon(
        tuneloop::testing::tuneloopd_path(), dir() / "d", dir() / "tuneloopd.yaml", dir() / "d.sock", 60));
    auto c = client();
    wait_ready(c, 0);
    for (const auto& t : c.call("tracks.list"))
      c.call("rate", {{"track_id", t["id"]}, {"stars", t["id"].get<int>() % 2 ? 5 : 1}});
    c.call("iterate", {{"force", true}});
    wait_ready(c, 1);
    for (const auto& it : c.call("iterations.list"))
      for (const auto& t : c.call("tracks.list", {{"iteration", it["id"]}}))
        iteration_of_content_[read_file(t["path"].get<std::string>())] = it["number"].get<int>();
    ratings_before_ = c.call("ratings.list").size();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete dir_;
  }

  static Client client() {
    auto c = daemon_->connect();
    c.set_timeout_ms(60000);
    return c;
  }

  static void wait_ready(Client& c, int number) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& it : c.call("iterations.list"))
        if (it["number"] == number) {
          ASSERT_NE(it["status"], "failed") << it.dump();
          if (it["status"] == "ready") return;
        }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "iteration " << number << " not ready";
  }

  // Which iteration a blinded copy came from, by its content.
  static int iteration_of(const std::string& blinded_path) {
    auto f = iteration_of_content_.find(read_file(blinded_path));
    return f == iteration_of_content_.end() ? -1 : f->second;
  }

  static const fs::path& dir() { return dir_->path(); }

  static inline tuneloop::testing::TempDir* dir_ = nullptr;
  static inline DaemonProcess* daemon_ = nullptr;
  static inline std::map<std::string, int> iteration_of_content_;
  static inline std::size_t ratings_before_ = 0;
};

}  // namespace

TEST_F(StudySession, StartingAStudyGivesABlindedShuffledPlaylistFromTheChosenIterations) {
  auto c = client();
  const json r = c.call("study.start", {{"name", "blind"}, {"iterations", {0, 1}},
                                        {"tracks_per_iteration", 2}, {"seed", 5}});
  ASSERT_EQ(r["total"], 4);
  EXPECT_EQ(r["participant"], "alice") << "defaults to the daemon's listener";
  std::set<std::string> codes;
  for (const auto& q : r["queue"]) codes.insert(q["code"].get<std::string>());
  EXPECT_EQ(codes.size(), 4u);
  std::map<int, int> per_iteration;
  const json first = c.call("study.next", {{"study_id", r["study_id"]}});
  EXPECT_EQ(first["code"], r["queue"][0]["code"]);
  EXPECT_EQ(first["position"], 0);
  EXPECT_FALSE(first.contains("track_id")) << "the participant must not learn which track it is";
  EXPECT_FALSE(first.contains("iteration"));
  // Walk the playlist by code: every copy is named by its code and holds one real track.
  for (const auto& q : r["queue"]) {
    const json rated = c.call("study.rate", {{"study_id", r["study_id"]}, {"code", q["code"]}, {"skip", true}});
    EXPECT_EQ(rated["code"], q["code"]);
  }
  for (const auto& s : c.call("study.list"))
    if (s["study_id"] == r["study_id"]) {
      EXPECT_EQ(s["answered"], 4);
    }
  // The blinded copies: code-named files whose content is one track of iteration 0 or 1.
  const fs::path folder = fs::path(first["path"].get<std::string>()).parent_path();
  int files = 0;
  for (const auto& f : fs::directory_iterator(folder)) {
    ++files;
    const std::string stem = f.path().stem().string();
    EXPECT_TRUE(codes.count(stem)) << f.path();
    EXPECT_EQ(f.path().string().find("iter"), std::string::npos) << f.path();
    ++per_iteration[iteration_of(f.path())];
  }
  EXPECT_EQ(files, 4);
  EXPECT_EQ(per_iteration, (std::map<int, int>{{0, 2}, {1, 2}}));
}

TEST_F(StudySession, StudyRatingsAreKeptApartFromFeedbackAndExportLikeASimulatedStudy) {
  auto c = client();
  const json r = c.call("study.start", {{"name", "export"}, {"seed", 11}});
  ASSERT_EQ(r["total"], 6) << "all tracks of all iterations by default";
  const auto id = r["study_id"];
  std::map<std::string, double> given;  // code -> stars
  json item = c.call("study.next", {{"study_id", id}});
  double stars = 1.0;
  while (!item.value("done", false)) {
    const std::string code = item["code"];
    if (item["position"] == 2) {
      c.call("study.rate", {{"study_id", id}, {"skip", true}});
    } else {
      c.call("study.rate", {{"study_id", id}, {"stars", stars}, {"seconds_heard", 0.75}});
      given[code] = stars;
      stars += 0.5;
    }
    item = c.call("study.next", {{"study_id", id}});
  }
  EXPECT_EQ(c.call("ratings.list").size(), ratings_before_) << "study ratings are not feedback";

  const fs::path out = dir() / "export-out";
  const json fin = c.call("study.finish", {{"study_id", id}, {"out", out.string()}, {"plots", false}});
  EXPECT_EQ(fin["status"], "finished");
  EXPECT_EQ(fin["answered"], 6);
  EXPECT_EQ(fin["export"]["ratings"], 5) << "the skip is not a rating";
  EXPECT_THROW(c.call("study.rate", {{"study_id", id}, {"stars", 3}, {"code", r["queue"][0]["code"]}}), CallError)
      << "a finished study takes no more ratings";

  for (const char* f : {"events.csv", "summary.json", "report.md", "plots.gp"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  std::ifstream in(out / "events.csv");
  const auto events = tuneloop::study::read_events_csv(in);
  ASSERT_EQ(events.size(), 5u);
  // Each exported rating is the one given to that track's code, under its true iteration.
  std::map<long long, std::string> path_of;
  for (const auto& t : c.call("tracks.list")) path_of[t["id"].get<long long>()] = t["path"];
  std::multiset<double> exported, expected;
  for (const auto& e : events) {
    EXPECT_EQ(e.participant, "alice");
    EXPECT_EQ(e.phase, "evaluation");
    EXPECT_EQ(e.iteration, iteration_of_content_.at(read_file(path_of.at(e.track_id))));
    EXPECT_DOUBLE_EQ(e.seconds_heard, 0.75);
    EXPECT_EQ(e.features.size(), 7u);
    exported.insert(e.stars);
  }
  for (const auto& [code, s] : given) expected.insert(s);
  EXPECT_EQ(exported, expected);
  const json summary = json::parse(read_file(out / "summary.json"));
  EXPECT_EQ(summary["per_iteration"].size(), 2u);
  EXPECT_EQ(summary["rating_source"], "evaluation");
}

TEST_F(StudySession, AnIterationWithoutTracksOrAnUnknownStudyIsAClearError) {
  auto c = client();
  try {
    c.call("study.start", {{"name", "x"}, {"iterations", {0, 7}}});
    FAIL() << "started a study from a missing iteration";
  } catch (const CallError& e) {
    EXPECT_NE(std::string(e.what()).find("iteration 7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(c.call("study.next", {{"study_id", 424242}}), CallError);
  EXPECT_THROW(c.call("study.rate", {{"study_id", 424242}, {"stars", 3}}), CallError);
}

TEST_F(StudySession, TheStudySessionCommandRatesEveryTrackFromTheKeyboardAndExports) {
  const fs::path out = dir() / "cli-out";
  const fs::path input = dir() / "keys.txt";
  std::ofstream(input) << "4\nnonsense\ns\n2.5\n";  // iteration 0 has 3 tracks
  const std::string cmd = tuneloop::testing::tuneloop_path().string() + " --socket " +
                          (dir() / "d.sock").string() +
                          " study session cli --iterations 0 --seed 3 --no-plots --out " + out.string() +
                          " < " + input.string() + " > " + (dir() / "cli.log").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  ASSERT_EQ(WEXITSTATUS(rc), 0) << read_file(dir() / "cli.log");
  const std::string log = read_file(dir() / "cli.log");
  EXPECT_NE(log.find("please type"), std::string::npos) << "a bad answer is asked again:\n" << log;
  EXPECT_NE(log.find("play this file yourself"), std::string::npos) << "no sound card: the file is named\n" << log;
  std::ifstream in(out / "events.csv");
  const auto events = tuneloop::study::read_events_csv(in);
  ASSERT_EQ(events.size(), 2u) << log;
  std::multiset<double> stars;
  for (const auto& e : events) {
    stars.insert(e.stars);
    EXPECT_EQ(e.iteration, 0);
  }
  EXPECT_EQ(stars, (std::multiset<double>{2.5, 4.0}));
  auto c = client();
  bool finished = false;
  for (const auto& s : c.call("study.list"))
    finished = finished || (s["name"] == "cli" && s["status"] == "finished");
  EXPECT_TRUE(finished);
}

// rate -> iterate -> a new iteration (adapter, manifest, tracks) -> rollback; too little
// feedback; SIGKILL mid-fine-tune -> resume; a corrupt parent adapter -> failed iteration.
#include "corpus/tags.hpp"
#include "loop/iteration_runner.hpp"
#include "tests/daemon/scratch_daemon.hpp"
#include "tests/model/fixtures.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <set>
#include <string>
#include <thread>

namespace tuneloop::testing {
namespace {

using nlohmann::json;

class LoopIntegration : public ::testing::Test {
 protected:
  void make_daemon(int training_steps, int min_feedback, int checkpoint_every = 2,
                   const std::string& generation_extra = "", const std::string& training_extra = "",
                   const std::string& audio_output = "none") {
    const std::string yaml =
        "model:\n  steps: 2\n  device: cpu\n"
        "training:\n  steps: " + std::to_string(training_steps) +
        "\n  batch_size: 2\n  rank: 2\n  alpha: 2\n  threads: 1\n  checkpoint_every: " +
        std::to_string(checkpoint_every) + "\n" + training_extra +
        "generation:\n" +
        (generation_extra.find("tracks_per_iteration") == std::string::npos
             ? "  tracks_per_iteration: 3\n  seconds: 1.0\n" + generation_extra
             : generation_extra) +
        "schedule:\n  min_feedback: " + std::to_string(min_feedback) +
        "\n  after_new_ratings: 0\n"
        "dataset:\n  min_ratings: 2\n";
    daemon_ = std::make_unique<ScratchDaemon>(audio_output, audio_output == "none" ? yaml : "  sample_rate: 16000\n" + yaml);
    daemon_->use_weights(weights_.file("w"));
    write_fixture_weights(weights_.file("w"));
  }

  json call(const std::string& method, const json& params = nullptr) {
    auto c = daemon_->client();
    return c.call(method, params);
  }

  // Polls until pred() holds; fails with the daemon log after `seconds`.
  void wait_for(const std::function<bool()>& pred, const std::string& what, int seconds = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "timed out waiting for " << what << "; log:\n" << daemon_->log_text();
  }

  json iteration(int number) {
    for (const auto& i : call("iterations.list"))
      if (i["number"] == number) return i;
    return nullptr;
  }

  bool iteration_done(int number) {
    const json i = iteration(number);
    return i.is_object() && (i["status"] == "ready" || i["status"] == "failed");
  }

  // Starts the daemon and waits for iteration 0's first batch.
  std::vector<std::int64_t> start_with_first_batch() {
    daemon_->start();
    wait_for([&] { return iteration_done(0); }, "iteration 0");
    EXPECT_EQ(iteration(0)["status"], "ready") << daemon_->log_text();
    std::vector<std::int64_t> ids;
    for (const auto& t : call("tracks.list")) ids.push_back(t["id"].get<std::int64_t>());
    return ids;
  }

  // Rates the tracks with these stars, starts iteration 1 and returns iterations.show of it.
  json rate_and_iterate(const std::vector<std::int64_t>& tracks, const std::vector<double>& stars) {
    for (std::size_t i = 0; i < tracks.size() && i < stars.size(); ++i)
      call("rate", {{"track_id", tracks[i]}, {"stars", stars[i]}});
    const json r = call("iterate");
    EXPECT_TRUE(r["started"].get<bool>()) << r.dump();
    wait_for([&] { return iteration_done(1); }, "iteration 1");
    return call("iterations.show", {{"id", r["iteration_id"]}});
  }

  TempDir weights_{"tuneloop-model"};
  std::unique_ptr<ScratchDaemon> daemon_;
};

TEST_F(LoopIntegration, RatingsAndIterateMakeANewIterationWithAdapterManifestAndTracksThatCanBeRolledBack) {
  make_daemon(4, 3, 2, "  liked_fraction: 0.67\n");
  const auto first = start_with_first_batch();
  ASSERT_EQ(first.size(), 3u);
  const json one = rate_and_iterate(first, {5, 1, 1});
  const json r = {{"iteration_id", one["id"]}};
  ASSERT_EQ(one["status"], "ready") << one.dump() << daemon_->log_text();
  EXPECT_TRUE(one["active"].get<bool>());
  EXPECT_TRUE(fs::exists(one["adapter_path"].get<std::string>()));
  EXPECT_EQ(one["metrics"]["dataset_size"], 1);
  EXPECT_TRUE(one["metrics"]["final_train_loss"].is_number());

  std::set<std::int64_t> in_manifest;
  for (const auto& item : one["manifest"]["items"])
    if (item["kind"] == "track") in_manifest.insert(item["id"].get<std::int64_t>());
  EXPECT_EQ(in_manifest, (std::set<std::int64_t>{first[0]}));

  ASSERT_EQ(one["track_ids"].size(), 3u);
  const json tracks = call("tracks.list", {{"iteration", r["iteration_id"]}});
  ASSERT_EQ(tracks.size(), 3u);
  int variations = 0;
  for (const auto& t : tracks) {
    EXPECT_TRUE(fs::exists(t["path"].get<std::string>()));
    EXPECT_NE(t["path"].get<std::string>().find("iter-1"), std::string::npos);
    // generation.liked_fraction 0.67 of 3 tracks is two slots, but one liked track gives one
    // variation (two of one track would sound nearly the same); the other slot is drawn fresh.
    if (t["params"].contains("variation_of")) {
      ++variations;
      EXPECT_EQ(t["params"]["variation_of"], first[0]) << t.dump();
      EXPECT_EQ(t["variation_of"], first[0]) << t.dump();
      EXPECT_TRUE(t["params"]["seeded"].get<bool>()) << t.dump();
    }
  }
  EXPECT_EQ(variations, 1) << tracks.dump();
  EXPECT_EQ(call("status")["iteration"]["number"], 1);

  const json zero = iteration(0);
  call("iterations.activate", {{"id", zero["id"]}});
  EXPECT_EQ(call("status")["iteration"]["number"], 0);
  EXPECT_TRUE(iteration(0)["active"].get<bool>());
  EXPECT_FALSE(iteration(1)["active"].get<bool>());
}

TEST_F(LoopIntegration, AKtoIterationLearnsFromLikesAndDislikesAndPicksEachTrackFromCandidates) {
  make_daemon(3, 3, 2, "  candidates: 3\n  preview_steps: 1\n  liked_fraction: 0\n",
              "  objective: kto\n");
  const auto first = start_with_first_batch();
  ASSERT_EQ(first.size(), 3u);
  const json one = rate_and_iterate(first, {5, 3, 1});
  const json r = {{"iteration_id", one["id"]}};
  ASSERT_EQ(one["status"], "ready") << one.dump() << daemon_->log_text();
  const json& m = one["metrics"];
  EXPECT_EQ(m["objective"], "kto");
  EXPECT_EQ(m["init"], "base");
  EXPECT_EQ(m["negatives"], 1) << m.dump();          // the 1-star track
  EXPECT_EQ(m["feedback_tracks"], 3) << m.dump();
  EXPECT_EQ(m["candidates"], 9) << m.dump();         // 3 tracks x 3 candidates
  EXPECT_TRUE(m["reward_accuracy"].is_number()) << m.dump();
  EXPECT_TRUE(fs::exists(m["reward_model"].get<std::string>()));
  for (const auto& t : call("tracks.list", {{"iteration", r["iteration_id"]}})) {
    EXPECT_TRUE(t["predicted_score"].is_number()) << t.dump();
    EXPECT_FALSE(t["params"].contains("variation_of")) << t.dump();  // liked_fraction 0
  }
}

TEST_F(LoopIntegration, WithLearnTagsFreeTracksDrawTheirTagsAndTheNextIterationLearnsFromThem) {
  make_daemon(2, 3, 2, "  tracks_per_iteration: 4\n  seconds: 1.0\n  liked_fraction: 0\n  learn_tags: true\n");
  const auto first = start_with_first_batch();
  ASSERT_EQ(first.size(), 4u);
  for (const auto& t : call("tracks.list"))  // the first batch is the base model's, untagged
    EXPECT_FALSE(t["params"].contains("tags_drawn")) << t.dump();
  const json one = rate_and_iterate(first, {5, 4, 2, 1});
  ASSERT_EQ(one["status"], "ready") << one.dump() << daemon_->log_text();
  std::vector<std::int64_t> drawn;
  int words = 0;
  for (const auto& t : call("tracks.list", {{"iteration", one["id"]}})) {
    ASSERT_TRUE(t["params"].contains("tags_drawn")) << t.dump();
    drawn.push_back(t["id"].get<std::int64_t>());
    std::string joined;
    for (const auto& w : t["params"]["tags_drawn"]) {
      ++words;
      EXPECT_GE(corpus::tag_index(w.get<std::string>()), 0) << w;
      EXPECT_EQ(w.get<std::string>().rfind("key-", 0), std::string::npos) << "keys come from the seed, not the draw";
      if (!joined.empty()) joined += ',';
      joined += w.get<std::string>();
    }
    EXPECT_EQ(t["tags"], joined) << t.dump();  // no tags fixed by the config: the tags are the drawn words
  }
  ASSERT_EQ(drawn.size(), 4u);
  EXPECT_GT(words, 0);  // 4 tracks x 8 categories, each "no word" with probability 1/3 or less
  EXPECT_NE(daemon_->log_text().find("iteration 1 draws tags from 0 tracks"), std::string::npos);
  EXPECT_NE(one["metrics"]["tag_preferences"].get<std::string>().find("tempo "), std::string::npos)
      << one["metrics"].dump();
  for (std::size_t i = 0; i < drawn.size(); ++i)
    call("rate", {{"track_id", drawn[i]}, {"stars", i % 2 ? 1.0 : 5.0}});
  const json r = call("iterate");
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  wait_for([&] { return iteration_done(2); }, "iteration 2");
  EXPECT_EQ(iteration(2)["status"], "ready") << daemon_->log_text();
  // The four rated tracks of iteration 1 carried their drawn tags through the plan.
  EXPECT_NE(daemon_->log_text().find("iteration 2 draws tags from 4 tracks drawn with tags"),
            std::string::npos)
      << daemon_->log_text();
}

TEST_F(LoopIntegration, ACrossoverStartsFromTheMergeOfTwoLikedTracksOfDifferentLineages) {
  make_daemon(2, 3, 2,
              "  tracks_per_iteration: 4\n  seconds: 1.0\n  liked_fraction: 0.5\n  crossover_fraction: 0.5\n");
  const auto first = start_with_first_batch();
  ASSERT_EQ(first.size(), 4u);
  const json one = rate_and_iterate(first, {5, 5, 1, 1});
  ASSERT_EQ(one["status"], "ready") << one.dump() << daemon_->log_text();
  int variations = 0, crossovers = 0, fresh = 0;
  for (const auto& t : call("tracks.list", {{"iteration", one["id"]}})) {
    const json& params = t["params"];
    if (params.contains("variation_of")) {
      ++variations;
    } else if (params.contains("crossover_of")) {
      // Two liked lineages make one pair: crossover_fraction 0.5 asks for two slots, one is drawn fresh.
      ++crossovers;
      auto parents = params["crossover_of"].get<std::vector<std::int64_t>>();
      std::sort(parents.begin(), parents.end());
      EXPECT_EQ(parents, (std::vector<std::int64_t>{std::min(first[0], first[1]), std::max(first[0], first[1])}))
          << t.dump();
      EXPECT_TRUE(params["seeded"].get<bool>()) << t.dump();
      EXPECT_EQ(t["tags"], "") << t.dump();
    } else {
      ++fresh;
      EXPECT_FALSE(params["seeded"].get<bool>()) << t.dump();
    }
  }
  EXPECT_EQ(variations, 2);
  EXPECT_EQ(crossovers, 1);
  EXPECT_EQ(fresh, 1);
}

TEST(IterationPlanJson, AResumedPlanKeepsLearnTagsCrossoversAndTheDrawnTagsOfItsFeedback) {
  loop::IterationPlan p;
  p.number = 2;
  p.generation.learn_tags = true;
  p.generation.crossover_fraction = 0.25;
  p.feedback.push_back({"a.wav", 0.8, 1.0, true, std::vector<std::string>{"slow", "piano"}});
  p.feedback.push_back({"b.wav", 0.2, 0.3, false, std::vector<std::string>{}});
  p.feedback.push_back({"c.wav", 0.5, 1.0, true, std::nullopt});
  const loop::IterationPlan back = loop::plan_from_json(loop::plan_to_json(p));
  EXPECT_TRUE(back.generation.learn_tags);
  EXPECT_DOUBLE_EQ(back.generation.crossover_fraction, 0.25);
  ASSERT_EQ(back.feedback.size(), 3u);
  EXPECT_EQ(back.feedback[0].drawn_tags, (std::optional<std::vector<std::string>>{{"slow", "piano"}}));
  ASSERT_TRUE(back.feedback[1].drawn_tags.has_value());  // drawn, no word came up
  EXPECT_TRUE(back.feedback[1].drawn_tags->empty());
  EXPECT_FALSE(back.feedback[2].drawn_tags.has_value());
  EXPECT_DOUBLE_EQ(back.feedback[1].weight, 0.3);
}

TEST_F(LoopIntegration, SongsSeedOneTrackEachAndTheirMergeOneTheRestAreDrawnFresh) {
  // Every slot may be seeded (seeded_fraction 1), but a batch takes one track per source.
  make_daemon(2, 3, 2, "  tracks_per_iteration: 4\n  seconds: 1.0\n  liked_fraction: 0\n  seeded_fraction: 1\n");
  const auto first = start_with_first_batch();
  ASSERT_EQ(first.size(), 4u);
  TempDir songs{"tuneloop-songs"};
  call("songs.add", {{"path", write_tone(songs.file("low.wav"), 2.0, 220).string()}});
  std::vector<std::int64_t> latest;
  const auto seeded_in = [&](int number) {
    int seeded = 0;
    latest.clear();
    for (const auto& t : call("tracks.list", {{"iteration", iteration(number)["id"]}})) {
      latest.push_back(t["id"].get<std::int64_t>());
      seeded += t["params"]["seeded"].get<bool>();
    }
    EXPECT_EQ(latest.size(), 4u) << daemon_->log_text();
    return seeded;
  };
  // One song: one track from it, three free.
  const json one = rate_and_iterate(first, {5, 4, 2, 1});
  ASSERT_EQ(one["status"], "ready") << one.dump() << daemon_->log_text();
  EXPECT_EQ(seeded_in(1), 1);

  // Two songs: their merge and each song, three tracks; one free.
  call("songs.add", {{"path", write_tone(songs.file("high.wav"), 2.0, 880).string()}});
  for (std::size_t i = 0; i < latest.size(); ++i) call("rate", {{"track_id", latest[i]}, {"stars", 1.0 + i}});
  const json r = call("iterate");
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  wait_for([&] { return iteration_done(2); }, "iteration 2");
  ASSERT_EQ(iteration(2)["status"], "ready") << daemon_->log_text();
  EXPECT_EQ(seeded_in(2), 3);
}

TEST_F(LoopIntegration, TooLittleFeedbackStartsNoIterationAndSaysHowMuchIsMissing) {
  make_daemon(4, 5);
  const auto first = start_with_first_batch();
  call("rate", {{"track_id", first[0]}, {"stars", 4}});
  const json r = call("iterate");
  EXPECT_FALSE(r["started"].get<bool>());
  EXPECT_NE(r["reason"].get<std::string>().find("1 of 5"), std::string::npos) << r.dump();
  EXPECT_EQ(call("iterations.list").size(), 1u);
  const json loop = call("status")["loop"];
  EXPECT_EQ(loop["state"], "waiting") << loop.dump();
  EXPECT_NE(loop["text"].get<std::string>().find("1 of 5"), std::string::npos) << loop.dump();
}

TEST_F(LoopIntegration, AnIterationWithNothingToTrainOnIsRefusedAtIterateAndLeavesNoIterationBehind) {
  make_daemon(4, 3);
  ASSERT_EQ(start_with_first_batch().size(), 3u);  // no rating, no listen: every score is 0
  const json r = call("iterate", {{"force", true}});
  EXPECT_FALSE(r["started"].get<bool>()) << r.dump();
  EXPECT_NE(r["reason"].get<std::string>().find("nothing to train iteration 1 on"), std::string::npos)
      << r.dump();
  EXPECT_EQ(call("iterations.list").size(), 1u);
  EXPECT_EQ(call("status")["iteration"]["number"], 0);
  const json job = call("job.status")["job"];  // the latest job is still iteration 0's
  ASSERT_TRUE(job.is_object()) << job.dump();
  EXPECT_EQ(job["state"], "done") << job.dump();
}

TEST_F(LoopIntegration, ADaemonKilledMidFineTuneResumesTheJobFromItsCheckpointAfterARestart) {
  make_daemon(400, 1, 5);
  const auto first = start_with_first_batch();
  call("rate", {{"track_id", first[0]}, {"stars", 5}});
  call("rate", {{"track_id", first[1]}, {"stars", 2}});
  const json r = call("iterate");
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  const auto job = r["job_id"].get<std::int64_t>();
  const fs::path checkpoint = daemon_->data() / "jobs" / std::to_string(job) / "checkpoint.safetensors";
  wait_for([&] { return fs::exists(checkpoint); }, "the first checkpoint", 120);
  ASSERT_FALSE(iteration_done(1)) << "the fine-tune finished before it could be killed";
  daemon_->stop(SIGKILL);
  EXPECT_TRUE(fs::exists(checkpoint));

  daemon_->start();
  wait_for([&] { return iteration_done(1); }, "iteration 1 after the restart", 240);
  EXPECT_EQ(iteration(1)["status"], "ready") << daemon_->log_text();
  EXPECT_NE(daemon_->log_text().find("resuming job " + std::to_string(job)), std::string::npos);
  const json js = call("job.status");
  EXPECT_EQ(js["job"]["id"], job);
  EXPECT_EQ(js["job"]["state"], "done");
  EXPECT_FALSE(fs::exists(checkpoint));
}

TEST_F(LoopIntegration, ADaemonKilledAfterTheAdapterIsWrittenResumesAtGenerationWithoutTrainingAgain) {
  // Many long tracks with candidates: generation takes long enough to be caught in.
  make_daemon(20, 1, 5, "  candidates: 4\n  tracks_per_iteration: 12\n  seconds: 12.0\n");
  const auto first = start_with_first_batch();
  call("rate", {{"track_id", first[0]}, {"stars", 5}});
  call("rate", {{"track_id", first[1]}, {"stars", 2}});
  const json r = call("iterate");
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  auto adapter_written = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(daemon_->data() / "adapters", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("iter-1-", 0) == 0 && e.path().extension() == ".safetensors") return true;
    }
    return false;
  };
  wait_for(adapter_written, "iteration 1's adapter", 240);
  ASSERT_FALSE(iteration_done(1)) << "the iteration finished before it could be killed";
  daemon_->stop(SIGKILL);

  daemon_->start();
  wait_for([&] { return iteration_done(1); }, "iteration 1 after the restart", 240);
  EXPECT_EQ(iteration(1)["status"], "ready") << daemon_->log_text();
  const std::string log = daemon_->log_text();
  EXPECT_NE(log.find("resumes with its adapter already trained"), std::string::npos) << log;
  EXPECT_EQ(call("tracks.list", {{"iteration", iteration(1)["id"]}}).size(), 12u);
}

TEST_F(LoopIntegration, ListenerDeleteDuringGenerationLeavesNoFileOfTheCancelledJob) {
  // Enough tracks that the deletion lands while they are still being written.
  make_daemon(4, 1, 2, "  candidates: 1\n  tracks_per_iteration: 8\n  seconds: 8.0\n");
  const auto first = start_with_first_batch();
  call("rate", {{"track_id", first[0]}, {"stars", 5}});
  call("rate", {{"track_id", first[1]}, {"stars", 2}});
  const json r = call("iterate");
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  const fs::path tracks = daemon_->data() / "tracks" / "iter-1";
  auto first_track_written = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tracks, ec))
      if (e.path().extension() == ".wav") return true;
    return false;
  };
  wait_for(first_track_written, "iteration 1's first track", 240);
  ASSERT_FALSE(iteration_done(1)) << "the iteration finished before the listener was deleted";
  call("listener.delete", {{"confirm", true}});
  // The cancelled job ends on the worker; then nothing it wrote is left.
  auto cancelled_job_ended = [&] {
    const json job = call("job.status")["job"];
    return job.is_null() || job["id"] != r["job_id"] || job["state"] != "running";
  };
  wait_for(cancelled_job_ended, "the cancelled job to end", 120);
  // fail_iteration runs on the io thread right after the job's state changes.
  wait_for([&] { return !fs::exists(tracks); }, "the cancelled job's tracks to go", 60);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(daemon_->data() / "adapters", ec))
    EXPECT_NE(e.path().filename().string().rfind("iter-1-", 0), 0u) << e.path();
}

// What the sanitiser builds (scripts/sanitize.sh) look at most: the worker loading the
// model while SIGHUP replaces the config, and fine-tuning while the player's thread plays.
TEST_F(LoopIntegration, ASighupDuringTheModelLoadAndAFineTuneBesidePlaybackLeaveEverythingWhole) {
  if (std::system("test \"$(jack_wait -c 2>/dev/null)\" = running") != 0)
    GTEST_SKIP() << "no JACK server (scripts/test.sh starts a dummy one)";
  make_daemon(40, 1, 10, "", "", "portaudio");
  daemon_->start();
  for (int i = 0; i < 5 && !iteration_done(0); ++i) {  // iteration 0 loads the model now
    ::kill(daemon_->pid(), SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  wait_for([&] { return iteration_done(0); }, "iteration 0");
  ASSERT_EQ(iteration(0)["status"], "ready") << daemon_->log_text();
  const auto first = call("tracks.list");
  call("rate", {{"track_id", first[0]["id"]}, {"stars", 5}});
  call("rate", {{"track_id", first[1]["id"]}, {"stars", 2}});

  const json tone = call("tracks.add", {{"path", write_tone(daemon_->dir() / "tone.wav", 600).string()}});
  call("player.play", {{"track_id", tone["id"]}});
  const json r = call("iterate");
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  ::kill(daemon_->pid(), SIGHUP);
  wait_for([&] { return iteration_done(1); }, "iteration 1 beside playback", 240);
  EXPECT_EQ(iteration(1)["status"], "ready") << daemon_->log_text();
  const json st = call("status");
  EXPECT_EQ(st["state"], "playing") << st.dump();
  EXPECT_EQ(st["track"]["id"], tone["id"]) << st.dump();
}

TEST_F(LoopIntegration, AFailingJobMarksItsIterationFailedAndLeavesThePreviousOneActive) {
  make_daemon(4, 1, 2, "", "  init: parent\n");  // the next adapter starts from the corrupt one
  const auto first = start_with_first_batch();
  call("rate", {{"track_id", first[0]}, {"stars", 5}});
  call("rate", {{"track_id", first[1]}, {"stars", 1}});
  ASSERT_TRUE(call("iterate")["started"].get<bool>());
  wait_for([&] { return iteration_done(1); }, "iteration 1");
  const json one = iteration(1);
  ASSERT_EQ(one["status"], "ready");
  std::ofstream(one["adapter_path"].get<std::string>(), std::ios::trunc) << "not an adapter";

  const json r = call("iterate", {{"force", true}});
  ASSERT_TRUE(r["started"].get<bool>()) << r.dump();
  wait_for([&] { return iteration_done(2); }, "iteration 2");
  EXPECT_EQ(iteration(2)["status"], "failed");
  EXPECT_TRUE(iteration(1)["active"].get<bool>());
  EXPECT_EQ(call("status")["iteration"]["number"], 1);
  const json js = call("job.status");
  EXPECT_EQ(js["job"]["state"], "failed");
  EXPECT_FALSE(js["job"]["error"].get<std::string>().empty());
}

TEST_F(LoopIntegration, IterateWithATagTheModelDoesNotKnowGetsTheModelErrorCodeNamingTheTag) {
  make_daemon(4, 1, 2, "  tags: [plaid]\n");
  daemon_->start();
  // Iteration 0 is refused too, once the model (tags: low high slow fast) has loaded.
  wait_for([&] { return daemon_->log_text().find("unknown tag 'plaid'") != std::string::npos; },
           "the model to load and refuse iteration 0", 60);
  auto c = daemon_->client();
  const json reply = c.request("iterate", {{"force", true}});
  EXPECT_EQ(reply["error"]["code"], -32006) << reply.dump();
  const std::string message = reply["error"]["message"];
  EXPECT_NE(message.find("iterate: config generation.tags: unknown tag 'plaid'"), std::string::npos) << message;
  EXPECT_NE(message.find("slow"), std::string::npos) << message;
  EXPECT_TRUE(call("iterations.list").empty());
  EXPECT_NE(call("loop.status")["state"], "unavailable");
}

}  // namespace
}  // namespace tuneloop::testing

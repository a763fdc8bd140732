// The feedback reader against a real SQLite file: feedback goes in through the Store
// API, a dataset is built from what the reader gathers.
#include "loop/feedback_reader.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

namespace {

namespace fs = std::filesystem;
using namespace tuneloop;
using store::EndReason;
using store::PlayTarget;

constexpr std::int64_t kT = 1'700'000'000'000;  // when iteration 0 was created

class FeedbackReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.emplace(store::Store::open((dir_ / "tuneloop.db").string()));
  }
  void TearDown() override { db_.reset(); }

  store::Id add_track(store::Id listener, int n) {
    store::NewTrack t;
    t.listener_id = listener;
    t.path = "tracks/" + std::to_string(n) + ".wav";
    t.duration_s = 8.0;
    t.created_at = kT - 10'000;
    return db_->add_track(t);
  }

  void listen(store::Id track, double heard, std::int64_t at,
              EndReason reason = EndReason::completed) {
    store::ListenEvent e;
    e.target = PlayTarget::track(track);
    e.started_at = at - static_cast<std::int64_t>(heard * 1000);
    e.ended_at = at;
    e.seconds_heard = heard;
    e.duration_s = 8.0;
    e.end_reason = reason;
    db_->record_listen(e);
  }

  tuneloop::testing::TempDir tmp_{"tuneloop-loop"};
  const fs::path dir_ = tmp_.path();
  std::optional<store::Store> db_;
};

TEST_F(FeedbackReaderTest, ManifestFromARealDatabaseHoldsExactlyTheExpectedTracks) {
  const auto ana = db_->create_listener("ana").id;
  const auto bo = db_->create_listener("bo").id;
  store::NewSong song;
  song.listener_id = ana;
  song.path = "songs/mine.flac";
  song.original_name = "mine.flac";
  song.sha256 = std::string(64, 'a');
  song.duration_s = 30;
  song.sample_rate = 16000;
  const auto song_id = db_->add_song(song).id;
  db_->create_iteration(ana, std::nullopt, kT);

  store::Id t[9];
  for (int i = 1; i <= 8; ++i) t[i] = add_track(ana, i);
  const auto other = add_track(bo, 99);

  // Scores with the defaults and min_ratings 1 (range of current ratings: 1..5):
  db_->rate(t[1], 5.0, kT - 1000);  // before iteration 0
  listen(t[1], 8, kT - 500);        // → 1.0
  db_->rate(t[2], 4.5, kT + 1000);
  db_->rate(t[2], 2.0, kT + 2000);  // changed their mind: r̂ 0.25
  listen(t[2], 8, kT + 1500);       // → 0.475
  db_->rate(t[3], 4.0, kT + 1000);
  listen(t[3], 8, kT + 1000);  // → 0.825
  db_->rate(t[4], 3.0, kT + 1000);
  listen(t[4], 8, kT + 1000);  // → 0.65
  db_->rate(t[5], 1.0, kT + 1000);
  listen(t[5], 8, kT + 1000);  // → 0.3
  listen(t[6], 8, kT + 1000);
  listen(t[6], 8, kT + 2000);  // unrated, one replay: 0.5·1.1 → 0.55
  // t7: nothing. t8: rated then cleared, and a play cut short by a crash.
  db_->rate(t[8], 5.0, kT + 1000);
  db_->clear_rating(t[8], kT + 1100);
  listen(t[8], 2, kT + 1200, EndReason::interrupted);
  db_->rate(other, 5.0, kT + 1000);  // another listener's: must not leak in
  listen(other, 8, kT + 1000);

  const auto inputs = loop::read_dataset_inputs(*db_, ana);
  ASSERT_EQ(inputs.tracks.size(), 8u);
  ASSERT_EQ(inputs.songs.size(), 1u);

  config::DatasetConfig dataset;
  dataset.min_ratings = 1;
  const auto manifest =
      loop::DatasetBuilder(config::FeedbackConfig{}, dataset).build(inputs, 1, kT + 5000);
  // p75 of {1.0, 0.475, 0.825, 0.65, 0.3, 0.55}: h = 3.75 → 0.65 + 0.75·0.175 = 0.78125
  ASSERT_TRUE(manifest.threshold);
  EXPECT_NEAR(*manifest.threshold, 0.78125, 1e-12);
  ASSERT_EQ(manifest.items.size(), 3u);
  EXPECT_EQ(manifest.items[0].kind, loop::ManifestItem::Kind::song);
  EXPECT_EQ(manifest.items[0].id, song_id);
  EXPECT_EQ(manifest.items[1].id, t[1]);
  EXPECT_DOUBLE_EQ(*manifest.items[1].score, 1.0);
  EXPECT_EQ(manifest.items[1].path, "tracks/1.wav");
  EXPECT_EQ(manifest.items[2].id, t[3]);
  EXPECT_NEAR(*manifest.items[2].score, 0.825, 1e-12);
  EXPECT_EQ(manifest.tracks_with_feedback, 6);
  EXPECT_EQ(manifest.excluded.no_feedback, 2);
  EXPECT_EQ(manifest.excluded.below_threshold, 4);

  // What the manifest says survives being stored with the iteration.
  const auto iteration = db_->create_iteration(ana, std::nullopt, kT + 6000);
  db_->set_iteration_manifest(iteration.id, loop::to_json(manifest));
  EXPECT_TRUE(loop::manifest_from_json(db_->get_iteration(iteration.id)->dataset_manifest) ==
              manifest);
}

TEST_F(FeedbackReaderTest, ScheduleStateCountsFeedbackSinceTheLatestIteration) {
  const auto ana = db_->create_listener("ana").id;
  db_->create_iteration(ana, std::nullopt, kT);
  const auto a = add_track(ana, 1);
  const auto b = add_track(ana, 2);
  const auto c = add_track(ana, 3);
  add_track(ana, 4);             // never touched
  db_->rate(a, 4.0, kT - 1000);  // before the iteration
  listen(a, 8, kT - 900);
  db_->rate(b, 2.0, kT + 1000);
  db_->rate(b, 3.0, kT + 2000);
  listen(b, 3, kT + 1500, EndReason::skipped);
  listen(c, 1, kT + 1600, EndReason::interrupted);  // not feedback

  const auto state = loop::read_schedule_state(*db_, ana, kT + 10'000, true);
  ASSERT_TRUE(state.last_iteration_at);
  EXPECT_EQ(*state.last_iteration_at, kT);
  EXPECT_EQ(state.feedback_count, 2);
  EXPECT_EQ(state.new_ratings, 2);
  EXPECT_EQ(state.new_feedback, 3);
  EXPECT_TRUE(state.job_running);

  config::ScheduleConfig schedule;
  schedule.min_feedback = 3;
  EXPECT_EQ(loop::decide(state, schedule, loop::Request::manual).reason, "job already running");
  auto idle = state;
  idle.job_running = false;
  EXPECT_EQ(loop::decide(idle, schedule, loop::Request::manual).reason,
            "waiting: 2 of 3 feedback events needed");
}

TEST_F(FeedbackReaderTest, TracksWhoseTagsTheLoopDrewCarryThem) {
  const auto ana = db_->create_listener("ana").id;
  const auto add = [&](const std::string& params, const std::string& tags) {
    store::NewTrack t;
    t.listener_id = ana;
    t.path = "tracks/" + tags + ".wav";
    t.params_json = params;
    t.tags = tags;
    return db_->add_track(t);
  };
  // "minor" was fixed by generation.tags: among the track's tags, not among the drawn words.
  const auto drawn = add(R"({"tags_drawn":["slow","piano"]})", "minor,slow,piano");
  const auto drawn_none = add(R"({"tags_drawn":[]})", "");
  const auto fixed = add(R"({"seeded":false})", "fast");
  const auto broken = add("not json", "dense");
  const auto odd = add(R"({"tags_drawn":"yes"})", "loud");
  const auto mixed = add(R"({"tags_drawn":["low",3]})", "low");
  const auto inputs = loop::read_dataset_inputs(*db_, ana);
  std::map<std::int64_t, std::optional<std::vector<std::string>>> by_id;
  for (const auto& t : inputs.tracks) by_id[t.track_id] = t.drawn_tags;
  ASSERT_TRUE(by_id.at(drawn).has_value());
  EXPECT_EQ(*by_id.at(drawn), (std::vector<std::string>{"slow", "piano"}));
  ASSERT_TRUE(by_id.at(drawn_none).has_value());  // drawn, and no word came up
  EXPECT_TRUE(by_id.at(drawn_none)->empty());
  EXPECT_FALSE(by_id.at(fixed).has_value());  // generation.tags, not drawn
  EXPECT_FALSE(by_id.at(broken).has_value());
  EXPECT_FALSE(by_id.at(odd).has_value());  // not a list of words: not read as drawn, and no throw
  EXPECT_FALSE(by_id.at(mixed).has_value());
}

TEST_F(FeedbackReaderTest, UnknownListenerIsReportedAsNotFound) {
  EXPECT_THROW(loop::read_dataset_inputs(*db_, 12345), store::NotFoundError);
}

}  // namespace

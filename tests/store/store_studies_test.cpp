// Human studies in the store (schema v3): a blinded playlist per study and its answers,
// kept apart from the listener's feedback ratings.

#include <gtest/gtest.h>

#include <filesystem>

#include "store/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace tuneloop::store;

namespace {

using tuneloop::testing::TempDir;

struct Fixture {
  TempDir dir{"tuneloop-store-study"};
  Store store = Store::open((dir.path() / "s.db").string());
  Listener listener = store.create_listener("alice");
  std::vector<Id> tracks;
  Fixture() {
    for (int i = 0; i < 3; ++i) {
      NewTrack t;
      t.listener_id = listener.id;
      t.path = "/tmp/t" + std::to_string(i) + ".wav";
      t.duration_s = 4;
      tracks.push_back(store.add_track(t));
    }
  }
  Id study() {
    return store.create_study(listener.id, "pilot", "alice", R"({"seed":1})",
                              {{tracks[2], 1, "K7", "/b/K7.wav"}, {tracks[0], 0, "Q2", "/b/Q2.wav"}});
  }
};

}  // namespace

TEST(StoreStudies, AStudyKeepsItsPlaylistInPresentationOrder) {
  Fixture f;
  const Id id = f.study();
  const auto s = f.store.get_study(id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->name, "pilot");
  EXPECT_EQ(s->participant, "alice");
  EXPECT_EQ(s->status, StudyStatus::running);
  EXPECT_EQ(s->params_json, R"({"seed":1})");
  const auto items = f.store.study_items(id);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].code, "K7");
  EXPECT_EQ(items[0].track_id, f.tracks[2]);
  EXPECT_EQ(items[0].iteration_number, 1);
  EXPECT_EQ(items[0].position, 0);
  EXPECT_EQ(items[1].blinded_path, "/b/Q2.wav");
  EXPECT_FALSE(items[0].answered_at);
  EXPECT_EQ(f.store.studies(f.listener.id).size(), 1u);
}

TEST(StoreStudies, StudyAnswersAreNotFeedbackRatings) {
  Fixture f;
  const Id id = f.study();
  const auto items = f.store.study_items(id);
  f.store.answer_study_item(items[0].id, 4.5, 3.0);
  f.store.answer_study_item(items[1].id, std::nullopt, 0.5);  // a skip
  const auto after = f.store.study_items(id);
  EXPECT_EQ(after[0].stars, 4.5);
  EXPECT_EQ(after[0].seconds_heard, 3.0);
  EXPECT_TRUE(after[1].answered_at);
  EXPECT_FALSE(after[1].stars);
  EXPECT_TRUE(f.store.ratings(f.listener.id).empty());
  EXPECT_FALSE(f.store.current_rating(f.tracks[2]));
}

TEST(StoreStudies, BadStarsAndAnswersToAFinishedStudyAreRefused) {
  Fixture f;
  const Id id = f.study();
  const Id item = f.store.study_items(id)[0].id;
  EXPECT_THROW(f.store.answer_study_item(item, 4.3, std::nullopt), InvalidValueError);
  EXPECT_THROW(f.store.answer_study_item(item, 3.0, -1.0), InvalidValueError);
  EXPECT_THROW(f.store.answer_study_item(9999, 3.0, std::nullopt), NotFoundError);
  f.store.finish_study(id);
  EXPECT_EQ(f.store.get_study(id)->status, StudyStatus::finished);
  EXPECT_TRUE(f.store.get_study(id)->finished_at);
  EXPECT_THROW(f.store.answer_study_item(item, 3.0, std::nullopt), InvalidValueError);
  EXPECT_THROW(f.store.finish_study(9999), NotFoundError);
}

TEST(StoreStudies, ARepeatedCodeOrAnUnknownTrackCreatesNoStudy) {
  Fixture f;
  EXPECT_THROW(f.store.create_study(f.listener.id, "x", "alice", "{}",
                                    {{f.tracks[0], 0, "A", ""}, {f.tracks[1], 0, "A", ""}}),
               InvalidValueError);
  EXPECT_THROW(f.store.create_study(f.listener.id, "x", "alice", "{}", {{424242, 0, "A", ""}}),
               NotFoundError);
  EXPECT_TRUE(f.store.studies(f.listener.id).empty());
}

TEST(StoreStudies, DeletingTheListenerDeletesTheirStudies) {
  Fixture f;
  const Id id = f.study();
  f.store.delete_listener(f.listener.id);
  EXPECT_FALSE(f.store.get_study(id));
  EXPECT_TRUE(f.store.study_items(id).empty());
}

// Tests of the SQLite store on real database files in temporary folders.
// Raw sqlite3 calls appear here only to craft bad files and inspect schemas.

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store/schema.hpp"
#include "store/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace tuneloop::store;

namespace {

using tuneloop::testing::TempDir;

std::string hash_of(int n) {
  std::string h = std::to_string(n);
  return std::string(64 - h.size(), 'a') + h;
}

// Raw inspection of a database file, independent of the Store.
struct RawDb {
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("raw open");
  }
  ~RawDb() { sqlite3_close(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("raw exec: " + m);
    }
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
    std::string out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
      out += (p ? p : "NULL");
      out += "\n";
    }
    sqlite3_finalize(s);
    return out;
  }
  sqlite3* db = nullptr;
};

std::string schema_of(const std::string& path) {
  RawDb raw(path);
  return raw.text(
      "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master "
      "ORDER BY type, name");
}

struct Fixture {
  Listener listener;
  Id track = 0;
};

Fixture add_listener_and_track(Store& store, const std::string& name = "ada") {
  Fixture f;
  f.listener = store.create_listener(name);
  NewTrack t;
  t.listener_id = f.listener.id;
  t.seed = 42;
  t.path = "tracks/1.wav";
  t.duration_s = 4.0;
  t.tags = "fast,drums";
  f.track = store.add_track(t);
  return f;
}

// Unmounts on scope exit, so a failing test leaves no mount behind.
struct Mount {
  explicit Mount(const fs::path& at) : at(at) {}
  ~Mount() { umount(at.c_str()); }
  fs::path at;
};

}  // namespace

// ---------------------------------------------------------------- migrations

TEST(StoreMigrations, AnEmptyFileIsMigratedToTheLatestVersion) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  EXPECT_EQ(store.schema_version(), Store::latest_version());
  EXPECT_GE(Store::latest_version(), 2);
  auto f = add_listener_and_track(store);
  EXPECT_GT(store.create_job({.kind = "finetune", .listener_id = f.listener.id}), 0);
}

TEST(StoreMigrations, EveryEarlierVersionMigratesToTheSameSchemaAsAFreshDatabase) {
  TempDir dir("tuneloop-store");
  { auto fresh = Store::open(dir.file("fresh.db")); }
  const std::string fresh_schema = schema_of(dir.file("fresh.db"));
  for (int from = 0; from < Store::latest_version(); ++from) {
    SCOPED_TRACE("from version " + std::to_string(from));
    const std::string path = dir.file(std::to_string(from) + "-old.db");
    Id track = 0;
    {
      auto old = Store::open(path, {.max_version = from});
      ASSERT_EQ(old.schema_version(), from);
      if (from >= 1) {  // v1 already holds feedback; it must survive the upgrade
        auto f = add_listener_and_track(old);
        track = f.track;
        old.rate(track, 3.5);
        old.create_iteration(f.listener.id, std::nullopt);
      }
    }
    auto store = Store::open(path);
    EXPECT_EQ(store.schema_version(), Store::latest_version());
    EXPECT_EQ(schema_of(path), fresh_schema);
    if (from >= 1) {
      EXPECT_EQ(store.current_rating(track), 3.5);
      ASSERT_TRUE(store.active_iteration(store.listeners().at(0).id));
    }
    Id job = store.create_job({.kind = "generate"});
    EXPECT_EQ(store.get_job(job)->state, JobState::queued);
  }
}

TEST(StoreMigrations, ReopeningAMigratedDatabaseChangesNothing) {
  TempDir dir("tuneloop-store");
  { Store::open(dir.file("a.db")); }
  const std::string before = schema_of(dir.file("a.db"));
  auto store = Store::open(dir.file("a.db"));
  EXPECT_EQ(store.schema_version(), Store::latest_version());
  EXPECT_EQ(schema_of(dir.file("a.db")), before);
}

TEST(StoreMigrations, AMigrationThatFailsHalfwayLeavesTheDatabaseAtItsOldVersion) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  { Store::open(path, {.max_version = 1}); }
  {
    RawDb raw(path);  // something in the way of step 2, after it has created its first table
    raw.exec("CREATE INDEX plays_by_song ON plays(started_at)");
  }
  const std::string before = schema_of(path);
  try {
    Store::open(path);
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("schema version 2"), std::string::npos) << m;
  }
  EXPECT_EQ(schema_of(path), before);  // no jobs table, no other v2 index
  EXPECT_EQ(RawDb(path).text("PRAGMA user_version"), "1\n");
}

TEST(StoreMigrations, AnOldDatabaseOpenedReadOnlyIsRefusedRatherThanMigrated) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  { Store::open(path, {.max_version = 1}); }
  EXPECT_THROW(Store::open(path, {.read_only = true}), StoreError);
  EXPECT_EQ(RawDb(path).text("PRAGMA user_version"), "1\n");
}

TEST(StoreMigrations, ADatabaseFromANewerSchemaIsRefusedNamingFileAndVersions) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("future.db");
  {
    RawDb raw(path);
    raw.exec("CREATE TABLE x(a); PRAGMA user_version = 99;");
  }
  try {
    Store::open(path);
    FAIL() << "expected SchemaTooNewError";
  } catch (const SchemaTooNewError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("99"), std::string::npos) << m;
    EXPECT_NE(m.find("version " + std::to_string(Store::latest_version())), std::string::npos) << m;
  }
  RawDb raw(path);  // left untouched
  EXPECT_EQ(raw.text("PRAGMA user_version"), "99\n");
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete\n");
}

TEST(StoreMigrations, AFileThatIsNotADatabaseIsRefusedNamingTheFile) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out << "this is not an sqlite file ";
  }
  try {
    Store::open(path);
    FAIL() << "expected CorruptDatabaseError";
  } catch (const CorruptDatabaseError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("not a"), std::string::npos) << m;
  }
}

// ---------------------------------------------------------------- bad environments

TEST(StoreEnvironment, AFolderThatCannotHoldFilesIsRefusedNamingThePath) {
  // Root ignores chmod, so use a folder no one can create files in.
  const std::string path = "/proc/self/tuneloop-no-such-dir/store.db";
  try {
    Store::open(path);
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("cannot open"), std::string::npos) << m;
  }
}

TEST(StoreEnvironment, AWriteToAReadOnlyDatabaseFailsWithSqlitesMessageAndWritesNothing) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  Fixture f;
  {
    auto store = Store::open(path);
    f = add_listener_and_track(store);
    store.rate(f.track, 2.0);
  }
  auto ro = Store::open(path, {.read_only = true});
  try {
    ro.rate(f.track, 5.0);
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.sqlite_code() & 0xff, SQLITE_READONLY);
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find("readonly"), std::string::npos) << m;
  }
  EXPECT_EQ(ro.current_rating(f.track), 2.0);
  EXPECT_EQ(Store::open(path).rating_history(f.track).size(), 1u);
}

TEST(StoreEnvironment, AReadOnlyMountedDataFolderIsRefused) {
  TempDir dir("tuneloop-store");
  const fs::path mnt = dir.path() / "ro";
  fs::create_directory(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a read-only tmpfs here (needs root and mount rights)";
  Mount guard(mnt);
  const std::string path = (mnt / "store.db").string();
  EXPECT_THROW(
      {
        try {
          Store::open(path);
        } catch (const StoreError& e) {
          EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
          throw;
        }
      },
      StoreError);
}

namespace {
// Fills the store until it reports a full disk; returns how many tracks went in.
int fill_until_full(Store& store, Id listener, int& error_code, std::string& message) {
  const std::string big(2000, 'x');
  for (int i = 0; i < 100000; ++i) {
    NewTrack t;
    t.listener_id = listener;
    t.path = "tracks/" + std::to_string(i) + ".wav";
    t.params_json = "{\"pad\":\"" + big + "\"}";
    try {
      store.add_track(t);
    } catch (const StoreError& e) {
      error_code = e.sqlite_code();
      message = e.what();
      return i;
    }
  }
  return -1;
}
}  // namespace

TEST(StoreEnvironment, AFullDatabaseReportsTheErrorAndKeepsEarlierData) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  Fixture f;
  {
    auto store = Store::open(path);
    f = add_listener_and_track(store);
    store.rate(f.track, 4.0);
  }
  int added = 0;
  {
    auto store = Store::open(path, {.max_page_count = 40});
    int code = 0;
    std::string msg;
    added = fill_until_full(store, f.listener.id, code, msg);
    ASSERT_GE(added, 0) << "never became full";
    EXPECT_EQ(code & 0xff, SQLITE_FULL);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("full"), std::string::npos) << msg;
    EXPECT_EQ(store.current_rating(f.track), 4.0);  // the connection is still usable
  }
  auto store = Store::open(path);
  EXPECT_EQ(store.current_rating(f.track), 4.0);
  EXPECT_EQ(store.tracks(f.listener.id).size(), static_cast<size_t>(added) + 1);
}

TEST(StoreEnvironment, AFullFilesystemReportsTheErrorAndKeepsEarlierData) {
  TempDir dir("tuneloop-store");
  const fs::path mnt = dir.path() / "small";
  fs::create_directory(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root and mount rights)";
  Mount guard(mnt);
  const std::string path = (mnt / "store.db").string();
  int added = -1;
  Fixture f;
  {
    auto store = Store::open(path);
    f = add_listener_and_track(store);
    store.rate(f.track, 4.0);
    int code = 0;
    std::string msg;
    added = fill_until_full(store, f.listener.id, code, msg);
    EXPECT_GE(added, 0);
    EXPECT_EQ(code & 0xff, SQLITE_FULL) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
  {
    auto store = Store::open(path);
    EXPECT_EQ(store.current_rating(f.track), 4.0);
    EXPECT_EQ(store.tracks(f.listener.id).size(), static_cast<size_t>(added) + 1);
  }
}

// ---------------------------------------------------------------- listeners and songs

TEST(StoreListeners, EnsureListenerCreatesOnceAndNamesAreUnique) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto a = store.ensure_listener("default");
  auto b = store.ensure_listener("default");
  EXPECT_EQ(a.id, b.id);
  EXPECT_THROW(store.create_listener("default"), AlreadyExistsError);
  EXPECT_THROW(store.create_listener(""), InvalidValueError);
  EXPECT_EQ(store.listeners().size(), 1u);
  EXPECT_EQ(store.find_listener("default")->id, a.id);
  EXPECT_FALSE(store.get_listener(a.id + 100));
}

TEST(StoreListeners, DeletingAListenerRemovesAllTheirDataAndNobodyElses) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto keep = add_listener_and_track(store, "keep");
  store.rate(keep.track, 3.0);
  auto gone = add_listener_and_track(store, "gone");
  auto song = store.add_song({gone.listener.id, "songs/a.wav", "a.wav", hash_of(1), 3.0, 22050});
  auto it = store.create_iteration(gone.listener.id, std::nullopt);
  NewTrack t;
  t.listener_id = gone.listener.id;
  t.iteration_id = it.id;
  t.path = "x.wav";
  Id t2 = store.add_track(t);
  store.rate(gone.track, 5.0);
  store.rate(t2, 1.0);
  store.record_listen(
      {PlayTarget::song(song.id), PlaySource::player, 1, 2, 3.0, 3.0, EndReason::completed});
  Id p = store.start_play(PlayTarget::track(gone.track), PlaySource::player);
  Id job = store.create_job(
      {.kind = "finetune", .listener_id = gone.listener.id, .iteration_id = it.id});

  store.delete_listener(gone.listener.id);

  EXPECT_FALSE(store.get_listener(gone.listener.id));
  EXPECT_FALSE(store.get_song(song.id));
  EXPECT_FALSE(store.get_track(gone.track));
  EXPECT_FALSE(store.get_track(t2));
  EXPECT_FALSE(store.get_iteration(it.id));
  EXPECT_FALSE(store.get_play(p));
  EXPECT_FALSE(store.get_job(job));
  EXPECT_TRUE(store.rating_history_for_listener(gone.listener.id).empty());
  EXPECT_EQ(store.current_rating(keep.track), 3.0);
  EXPECT_TRUE(store.get_track(keep.track));
  EXPECT_THROW(store.delete_listener(gone.listener.id), NotFoundError);
}

TEST(StoreSongs, TheSameContentIsStoredOncePerListener) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto ada = store.create_listener("ada");
  auto bob = store.create_listener("bob");
  auto first = store.add_song({ada.id, "songs/1.wav", "mine.wav", hash_of(7), 30.0, 44100});
  auto again = store.add_song({ada.id, "songs/2.wav", "copy.wav", hash_of(7), 30.0, 44100});
  std::string upper = hash_of(7);
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  auto shouted = store.add_song({ada.id, "songs/3.wav", "copy2.wav", upper, 30.0, 44100});
  auto other = store.add_song({bob.id, "songs/4.wav", "mine.wav", hash_of(7), 30.0, 44100});
  EXPECT_TRUE(first.inserted);
  EXPECT_FALSE(again.inserted);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(shouted.id, first.id);
  EXPECT_TRUE(other.inserted);
  EXPECT_NE(other.id, first.id);
  ASSERT_EQ(store.songs(ada.id).size(), 1u);
  EXPECT_EQ(store.songs(ada.id)[0].original_name, "mine.wav");
  EXPECT_EQ(store.find_song_by_hash(ada.id, hash_of(7))->id, first.id);
  EXPECT_FALSE(store.find_song_by_hash(ada.id, hash_of(8)));
  EXPECT_THROW(store.add_song({ada.id, "x", "x", "not-a-hash", 1.0, 8000}), InvalidValueError);
  EXPECT_THROW(store.add_song({999, "x", "x", hash_of(9), 1.0, 8000}), NotFoundError);
  store.remove_song(first.id);
  EXPECT_TRUE(store.songs(ada.id).empty());
  EXPECT_THROW(store.remove_song(first.id), NotFoundError);
}

// ---------------------------------------------------------------- tracks and plays

TEST(StoreTracks, TracksAreListedPerListenerAndIteration) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  auto it = store.create_iteration(f.listener.id, std::nullopt);
  NewTrack t;
  t.listener_id = f.listener.id;
  t.iteration_id = it.id;
  t.seed = -7;
  t.params_json = R"({"steps":25})";
  t.path = "tracks/2.wav";
  t.duration_s = 4.1;
  Id id = store.add_track(t);
  auto got = store.get_track(id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->seed, -7);
  EXPECT_EQ(got->params_json, R"({"steps":25})");
  EXPECT_EQ(got->iteration_id, it.id);
  EXPECT_EQ(store.tracks(f.listener.id).size(), 2u);
  ASSERT_EQ(store.tracks(f.listener.id, it.id).size(), 1u);
  EXPECT_EQ(store.tracks(f.listener.id, it.id)[0].id, id);
  t.iteration_id = 12345;
  EXPECT_THROW(store.add_track(t), NotFoundError);
  store.delete_track(id);
  EXPECT_FALSE(store.get_track(id));
}

TEST(StorePlays, APlayRecordsCheckpointsAndItsEnd) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  Id p = store.start_play(PlayTarget::track(f.track), PlaySource::player, 1000);
  EXPECT_FALSE(store.get_play(p)->ended_at);
  store.update_play_progress(p, 1.5);
  EXPECT_EQ(store.get_play(p)->seconds_heard, 1.5);
  store.finish_play(p, 4000, 2.0, 4.0, EndReason::skipped);
  auto play = *store.get_play(p);
  EXPECT_EQ(play.ended_at, 4000);
  EXPECT_EQ(play.seconds_heard, 2.0);
  EXPECT_EQ(play.end_reason, EndReason::skipped);
  EXPECT_EQ(play.track_id, f.track);
  EXPECT_FALSE(play.song_id);
  EXPECT_THROW(store.update_play_progress(p, -1), InvalidValueError);
  EXPECT_THROW(store.update_play_progress(9999, 1), NotFoundError);
  EXPECT_THROW(store.start_play(PlayTarget::track(9999), PlaySource::player), NotFoundError);

  Id q = store.record_listen({PlayTarget::track(f.track), PlaySource::external, 5000, 9000, 4.0,
                              4.0, EndReason::completed});
  EXPECT_EQ(store.get_play(q)->source, PlaySource::external);
  EXPECT_EQ(store.plays_for_track(f.track).size(), 2u);
  EXPECT_EQ(store.plays_for_listener(f.listener.id).front().id, q);  // newest first
  EXPECT_EQ(store.plays_for_listener(f.listener.id, 5000).size(), 1u);
}

TEST(StorePlays, PlaysLeftOpenByACrashAreClosedAsInterruptedWithTheirLastCheckpoint) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  Id p = store.start_play(PlayTarget::track(f.track), PlaySource::player, 1000);
  store.update_play_progress(p, 2.5);
  EXPECT_EQ(store.close_dangling_plays(7000), 1);
  auto play = *store.get_play(p);
  EXPECT_EQ(play.end_reason, EndReason::interrupted);
  EXPECT_EQ(play.ended_at, 7000);
  EXPECT_EQ(play.seconds_heard, 2.5);
  EXPECT_EQ(store.close_dangling_plays(), 0);
}

TEST(StorePlays, TrackFeedbackSummarisesRatingsAndListeningTime) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);  // 4 s long
  store.record_listen(
      {PlayTarget::track(f.track), PlaySource::player, 1, 2, 1.0, 4.0, EndReason::skipped});
  store.record_listen(
      {PlayTarget::track(f.track), PlaySource::player, 3, 4, 6.0, 4.0, EndReason::completed});
  store.rate(f.track, 2.5);
  NewTrack t;
  t.listener_id = f.listener.id;
  t.path = "unheard.wav";
  t.duration_s = 4.0;
  Id unheard = store.add_track(t);
  auto fb = store.track_feedback(f.listener.id);
  ASSERT_EQ(fb.size(), 2u);
  EXPECT_EQ(fb[0].track.id, f.track);
  EXPECT_EQ(fb[0].stars, 2.5);
  EXPECT_EQ(fb[0].play_count, 2);
  EXPECT_DOUBLE_EQ(fb[0].seconds_heard, 7.0);
  EXPECT_DOUBLE_EQ(fb[0].best_listen_fraction, 1.0);  // capped at the track's length
  EXPECT_EQ(fb[1].track.id, unheard);
  EXPECT_FALSE(fb[1].stars);
  EXPECT_EQ(fb[1].play_count, 0);
  EXPECT_EQ(fb[1].best_listen_fraction, 0.0);
}

// ---------------------------------------------------------------- ratings

TEST(StoreRatings, OnlyWholeAndHalfStarsFromOneToFiveAreAccepted) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  for (double bad : {0.0, 0.5, 5.5, 4.3, -1.0, 6.0, std::nan(""), HUGE_VAL}) {
    SCOPED_TRACE(bad);
    try {
      store.rate(f.track, bad);
      FAIL() << "accepted " << bad;
    } catch (const InvalidValueError& e) {
      EXPECT_NE(std::string(e.what()).find("steps of 0.5"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(store.rating_history(f.track).empty());
  for (double good = 1.0; good <= 5.0; good += 0.5) {
    store.rate(f.track, good);
    EXPECT_EQ(store.current_rating(f.track), good);
  }
  EXPECT_THROW(store.rate(9999, 3.0), NotFoundError);
}

TEST(StoreRatings, TheLatestRatingCountsAndTheHistoryIsKept) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  EXPECT_FALSE(store.current_rating(f.track));
  store.rate(f.track, 3.0, 1000);
  store.rate(f.track, 4.5, 2000);
  EXPECT_EQ(store.current_rating(f.track), 4.5);
  store.clear_rating(f.track, 3000);
  EXPECT_FALSE(store.current_rating(f.track));
  EXPECT_TRUE(store.ratings(f.listener.id).empty());
  auto history = store.rating_history(f.track);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].stars, 3.0);
  EXPECT_EQ(history[1].stars, 4.5);
  EXPECT_FALSE(history[2].stars);
  store.rate(f.track, 2.0, 4000);
  auto current = store.ratings(f.listener.id);
  ASSERT_EQ(current.size(), 1u);
  EXPECT_EQ(current[0].stars, 2.0);
  EXPECT_EQ(current[0].rated_at, 4000);
  EXPECT_EQ(store.rating_history_for_listener(f.listener.id).size(), 4u);
}

TEST(StoreRatings, RatingsAreCountedSinceATimeAndSinceAnIteration) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  store.rate(f.track, 3.0, 1000);
  auto it = store.create_iteration(f.listener.id, std::nullopt, 1500);
  store.rate(f.track, 4.0, 2000);
  store.clear_rating(f.track, 2500);
  store.rate(f.track, 5.0, 3000);
  EXPECT_EQ(store.count_ratings_since(f.listener.id, 0), 3);
  EXPECT_EQ(store.count_ratings_since(f.listener.id, 2000), 2);
  EXPECT_EQ(store.count_ratings_since_iteration(it.id), 2);
  EXPECT_THROW(store.count_ratings_since_iteration(9999), NotFoundError);
}

// ---------------------------------------------------------------- iterations

TEST(StoreIterations, ExactlyOneIterationIsActiveAndAnyReadyOneCanBeRestored) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto ada = store.create_listener("ada");
  auto base = store.create_iteration(ada.id, std::nullopt);
  EXPECT_EQ(base.number, 0);
  EXPECT_TRUE(base.active);
  EXPECT_EQ(base.status, IterationStatus::pending);
  store.set_iteration_status(base.id, IterationStatus::ready, 100);
  auto one = store.create_iteration(ada.id, base.id);
  auto two = store.create_iteration(ada.id, one.id);
  EXPECT_EQ(one.number, 1);
  EXPECT_EQ(two.number, 2);
  EXPECT_EQ(two.parent_id, one.id);
  EXPECT_FALSE(one.active);
  store.set_iteration_adapter(two.id, "adapters/2.safetensors");
  store.set_iteration_manifest(two.id, R"({"tracks":[1,2]})");
  store.set_iteration_metrics(two.id, R"({"loss":0.1})");
  store.set_iteration_status(two.id, IterationStatus::ready, 200);
  store.activate_iteration(two.id);
  auto active_ids = [&] {
    std::vector<Id> ids;
    for (auto& it : store.iterations(ada.id))
      if (it.active) ids.push_back(it.id);
    return ids;
  };
  EXPECT_EQ(active_ids(), std::vector<Id>{two.id});
  auto got = *store.get_iteration(two.id);
  EXPECT_EQ(got.adapter_path, "adapters/2.safetensors");
  EXPECT_EQ(got.dataset_manifest, R"({"tracks":[1,2]})");
  EXPECT_EQ(got.metrics_json, R"({"loss":0.1})");
  EXPECT_EQ(got.finished_at, 200);

  store.activate_iteration(base.id);  // roll back
  EXPECT_EQ(active_ids(), std::vector<Id>{base.id});
  EXPECT_EQ(store.active_iteration(ada.id)->id, base.id);

  store.set_iteration_status(one.id, IterationStatus::failed);
  EXPECT_THROW(store.activate_iteration(one.id), InvalidValueError);
  EXPECT_THROW(store.set_iteration_status(base.id, IterationStatus::deleted), InvalidValueError);
  EXPECT_EQ(active_ids(), std::vector<Id>{base.id});
  EXPECT_THROW(store.activate_iteration(9999), NotFoundError);

  auto bob = store.create_listener("bob");
  auto bob_base = store.create_iteration(bob.id, std::nullopt);
  EXPECT_TRUE(bob_base.active);  // per listener
  EXPECT_EQ(store.active_iteration(ada.id)->id, base.id);
  EXPECT_THROW(store.create_iteration(bob.id, base.id), NotFoundError);  // ada's parent
}

// ---------------------------------------------------------------- jobs

TEST(StoreJobs, AJobGoesFromQueuedToFinishedAndUnfinishedOnesSurviveAReopen) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  Id a = 0, b = 0;
  {
    auto store = Store::open(path);
    auto ada = store.create_listener("ada");
    a = store.create_job({.kind = "finetune",
                          .listener_id = ada.id,
                          .params_json = R"({"steps":300})",
                          .created_at = 10});
    b = store.create_job({.kind = "generate", .listener_id = ada.id});
    store.start_job(a, 20);
    store.update_job_progress(a, 0.5, "step 150/300");
    store.set_job_checkpoint(a, "ckpt/a.safetensors");
    EXPECT_THROW(store.update_job_progress(a, 1.5), InvalidValueError);
    EXPECT_THROW(store.finish_job(a, JobState::running), InvalidValueError);
  }
  auto store = Store::open(path);
  auto unfinished = store.unfinished_jobs();
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[0].id, a);
  EXPECT_EQ(unfinished[0].state, JobState::running);
  EXPECT_EQ(unfinished[0].progress, 0.5);
  EXPECT_EQ(unfinished[0].message, "step 150/300");
  EXPECT_EQ(unfinished[0].checkpoint_path, "ckpt/a.safetensors");
  EXPECT_EQ(unfinished[0].params_json, R"({"steps":300})");
  EXPECT_EQ(unfinished[0].started_at, 20);
  EXPECT_EQ(unfinished[1].state, JobState::queued);

  store.finish_job(a, JobState::done, {}, 30);
  store.finish_job(b, JobState::failed, "out of memory", 40);
  EXPECT_TRUE(store.unfinished_jobs().empty());
  EXPECT_EQ(store.get_job(b)->error, "out of memory");
  EXPECT_EQ(store.get_job(a)->finished_at, 30);
  EXPECT_THROW(store.finish_job(a, JobState::cancelled), InvalidValueError);
  EXPECT_THROW(store.start_job(9999), NotFoundError);
  EXPECT_EQ(store.jobs(1).size(), 1u);
  EXPECT_EQ(store.jobs().front().id, b);
}

// ---------------------------------------------------------------- transactions and events

TEST(StoreEvents, TheChangeListenerHearsEachCommittedWriteOnceAndNotFailedOnes) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  std::vector<std::string> heard;
  store.set_change_listener([&](std::string_view t) { heard.emplace_back(t); });
  store.rate(f.track, 3.0);
  EXPECT_EQ(heard, std::vector<std::string>{"ratings"});
  heard.clear();
  EXPECT_THROW(store.rate(f.track, 3.3), InvalidValueError);
  EXPECT_THROW(store.rate(9999, 3.0), NotFoundError);
  EXPECT_TRUE(heard.empty());
  store.transaction([&] {
    store.rate(f.track, 4.0);
    store.rate(f.track, 5.0);
    EXPECT_TRUE(heard.empty());  // not before the commit
  });
  EXPECT_EQ(heard, std::vector<std::string>{"ratings"});
}

TEST(StoreEvents, ATransactionThatThrowsWritesNothing) {
  TempDir dir("tuneloop-store");
  auto store = Store::open(dir.file("a.db"));
  auto f = add_listener_and_track(store);
  EXPECT_THROW(store.transaction([&] {
    store.rate(f.track, 4.0);
    store.create_listener("someone");
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_TRUE(store.rating_history(f.track).empty());
  EXPECT_FALSE(store.find_listener("someone"));
  store.rate(f.track, 1.0);  // and the connection carries on
  EXPECT_EQ(store.current_rating(f.track), 1.0);
}

TEST(StoreEvents, EnumNamesRoundTrip) {
  EXPECT_EQ(end_reason_from_string(to_string(EndReason::interrupted)), EndReason::interrupted);
  EXPECT_EQ(job_state_from_string("cancelled"), JobState::cancelled);
  EXPECT_EQ(iteration_status_from_string("generating"), IterationStatus::generating);
  EXPECT_EQ(play_source_from_string("external"), PlaySource::external);
  EXPECT_THROW(end_reason_from_string("bored"), InvalidValueError);
}

// ---------------------------------------------------------------- concurrency and durability

TEST(StoreConcurrency, ReadersOnAnotherConnectionSeeConsistentDataDuringWrites) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  auto writer = Store::open(path);
  auto f = add_listener_and_track(writer);
  constexpr int kWrites = 300;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::string reader_error;
  std::size_t last_seen = 0;
  bool went_backwards = false;
  std::thread reader([&] {
    try {
      auto store = Store::open(path);
      while (!done.load()) {
        auto n = store.rating_history_for_listener(f.listener.id).size();
        if (n < last_seen) went_backwards = true;
        last_seen = n;
        // Every committed rating is complete: the feedback view agrees with the history.
        auto fb = store.track_feedback(f.listener.id);
        if (fb.size() != 1) reader_error = "feedback rows: " + std::to_string(fb.size());
        ++reads;
      }
      last_seen = store.rating_history_for_listener(f.listener.id).size();
    } catch (const std::exception& e) {
      reader_error = e.what();
    }
  });
  Id play = writer.start_play(PlayTarget::track(f.track), PlaySource::player);
  for (int i = 0; i < kWrites; ++i) {
    writer.rate(f.track, 1.0 + (i % 9) * 0.5);
    writer.update_play_progress(play, i);
  }
  done = true;
  reader.join();
  EXPECT_EQ(reader_error, "");
  EXPECT_FALSE(went_backwards);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(last_seen, static_cast<std::size_t>(kWrites));
}

TEST(StoreDurability, AnAcknowledgedRatingSurvivesSigkillOfTheWriter) {
  TempDir dir("tuneloop-store");
  const std::string path = dir.file("a.db");
  Fixture f;
  Id other = 0;
  {
    auto store = Store::open(path);
    f = add_listener_and_track(store);
    NewTrack t;
    t.listener_id = f.listener.id;
    t.path = "other.wav";
    other = store.add_track(t);
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    try {
      auto store = Store::open(path);
      Id rating = store.rate(f.track, 4.5);
      // Acknowledge only after rate() returned, as the daemon replies to its client.
      if (write(fds[1], &rating, sizeof rating) != sizeof rating) _exit(2);
      for (int i = 0;; ++i) store.rate(other, 1.0 + (i % 9) * 0.5);
    } catch (...) {
      _exit(3);
    }
  }
  close(fds[1]);
  Id acknowledged = 0;
  ASSERT_EQ(read(fds[0], &acknowledged, sizeof acknowledged),
            static_cast<ssize_t>(sizeof acknowledged));
  close(fds[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer ended on its own (status " << status << ")";

  auto store = Store::open(path);
  EXPECT_EQ(store.current_rating(f.track), 4.5);
  auto history = store.rating_history(f.track);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].id, acknowledged);
}

#include "store/store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <set>
#include <utility>

#include "store/schema.hpp"

namespace tuneloop::store {

UnixMs now_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

UnixMs or_now(UnixMs at) {
  return at == 0 ? now_ms() : at;
}

// ---------------------------------------------------------------- enum names

constexpr std::array<std::string_view, 2> kPlaySources = {"player", "external"};
constexpr std::array<std::string_view, 4> kEndReasons = {"completed", "skipped", "stopped",
                                                         "interrupted"};
constexpr std::array<std::string_view, 6> kIterationStatuses = {"pending", "training", "generating",
                                                                "ready",   "failed",   "deleted"};
constexpr std::array<std::string_view, 2> kStudyStatuses = {"running", "finished"};
constexpr std::array<std::string_view, 5> kJobStates = {"queued", "running", "done", "failed",
                                                        "cancelled"};

template <class E, std::size_t N>
E enum_from(const std::array<std::string_view, N>& names, std::string_view s, const char* what) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<E>(i);
  std::string all;
  for (auto n : names) all += (all.empty() ? "" : ", ") + std::string(n);
  throw InvalidValueError("unknown " + std::string(what) + " '" + std::string(s) +
                          "' (expected one of: " + all + ")");
}

// ---------------------------------------------------------------- SQL as data

// Every statement the store runs, prepared on first use and cached for the life of the
// connection. Lazily, because an old-schema database (tests) lacks later tables.
enum class Q {
  listener_insert,
  listener_by_id,
  listener_by_name,
  listener_all,
  listener_delete,
  song_insert,
  song_by_id,
  song_by_hash,
  song_by_listener,
  song_delete,
  track_insert,
  track_by_id,
  track_by_listener,
  track_by_listener_iteration,
  track_delete,
  play_insert,
  play_progress,
  play_finish,
  play_by_id,
  play_by_listener,
  play_by_track,
  play_close_dangling,
  rating_insert,
  rating_current,
  rating_latest_by_listener,
  rating_history_track,
  rating_history_listener,
  rating_count_since,
  track_feedback,
  iteration_next_number,
  iteration_insert,
  iteration_by_id,
  iteration_by_listener,
  iteration_active,
  iteration_set_status,
  iteration_set_adapter,
  iteration_set_manifest,
  iteration_set_metrics,
  iteration_deactivate_all,
  iteration_activate,
  job_insert,
  job_by_id,
  job_start,
  job_progress,
  job_checkpoint,
  job_finish,
  job_unfinished,
  job_recent,
  study_insert,
  study_item_insert,
  study_by_id,
  study_by_listener,
  study_items,
  study_item_answer,
  study_item_status,
  study_finish,
  count_,
};

#define LISTENER_COLS "id, name, created_at"
#define SONG_COLS "id, listener_id, path, original_name, sha256, duration_s, sample_rate, added_at"
#define TRACK_COLS \
  "id, listener_id, iteration_id, seed, params_json, tags, path, duration_s, created_at"
#define PLAY_COLS                                                                     \
  "id, listener_id, track_id, song_id, source, started_at, ended_at, seconds_heard, " \
  "duration_s, end_reason"
#define RATING_COLS "id, listener_id, track_id, stars, rated_at"
#define ITERATION_COLS                                                                 \
  "id, listener_id, number, parent_id, adapter_path, dataset_manifest, metrics_json, " \
  "status, active, created_at, finished_at"
#define STUDY_COLS \
  "id, listener_id, name, participant, params_json, status, created_at, finished_at"
#define STUDY_ITEM_COLS                                                                \
  "id, study_id, position, code, track_id, iteration_number, blinded_path, answered_at, " \
  "stars, seconds_heard"
#define JOB_COLS                                                                        \
  "id, kind, listener_id, iteration_id, params_json, state, progress, message, error, " \
  "checkpoint_path, created_at, started_at, finished_at"

struct Statement {
  Q id;
  const char* sql;
};

constexpr Statement kStatements[] = {
    {Q::listener_insert, "INSERT INTO listeners(name, created_at) VALUES (?, ?)"},
    {Q::listener_by_id, "SELECT " LISTENER_COLS " FROM listeners WHERE id = ?"},
    {Q::listener_by_name, "SELECT " LISTENER_COLS " FROM listeners WHERE name = ?"},
    {Q::listener_all, "SELECT " LISTENER_COLS " FROM listeners ORDER BY id"},
    {Q::listener_delete, "DELETE FROM listeners WHERE id = ?"},

    {Q::song_insert,
     "INSERT INTO songs(listener_id, path, original_name, sha256, duration_s, sample_rate, "
     "added_at) VALUES (?, ?, ?, ?, ?, ?, ?)"},
    {Q::song_by_id, "SELECT " SONG_COLS " FROM songs WHERE id = ?"},
    {Q::song_by_hash, "SELECT " SONG_COLS " FROM songs WHERE listener_id = ? AND sha256 = ?"},
    {Q::song_by_listener, "SELECT " SONG_COLS " FROM songs WHERE listener_id = ? ORDER BY id"},
    {Q::song_delete, "DELETE FROM songs WHERE id = ?"},

    {Q::track_insert,
     "INSERT INTO tracks(listener_id, iteration_id, seed, params_json, tags, path, duration_s, "
     "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
    {Q::track_by_id, "SELECT " TRACK_COLS " FROM tracks WHERE id = ?"},
    {Q::track_by_listener,
     "SELECT " TRACK_COLS " FROM tracks WHERE listener_id = ? ORDER BY id DESC"},
    {Q::track_by_listener_iteration,
     "SELECT " TRACK_COLS
     " FROM tracks WHERE listener_id = ? AND iteration_id = ? ORDER BY id DESC"},
    {Q::track_delete, "DELETE FROM tracks WHERE id = ?"},

    {Q::play_insert,
     "INSERT INTO plays(listener_id, track_id, song_id, source, started_at, duration_s) "
     "VALUES (?, ?, ?, ?, ?, ?)"},
    {Q::play_progress, "UPDATE plays SET seconds_heard = ? WHERE id = ?"},
    {Q::play_finish,
     "UPDATE plays SET ended_at = ?, seconds_heard = ?, duration_s = ?, end_reason = ? "
     "WHERE id = ?"},
    {Q::play_by_id, "SELECT " PLAY_COLS " FROM plays WHERE id = ?"},
    {Q::play_by_listener,
     "SELECT " PLAY_COLS
     " FROM plays WHERE listener_id = ? AND started_at >= ? ORDER BY started_at DESC, id DESC"},
    {Q::play_by_track,
     "SELECT " PLAY_COLS " FROM plays WHERE track_id = ? ORDER BY started_at DESC, id DESC"},
    {Q::play_close_dangling,
     "UPDATE plays SET ended_at = ?, end_reason = 'interrupted' WHERE ended_at IS NULL"},

    {Q::rating_insert,
     "INSERT INTO ratings(listener_id, track_id, stars, rated_at) VALUES (?, ?, ?, ?)"},
    {Q::rating_current, "SELECT stars FROM ratings WHERE track_id = ? ORDER BY id DESC LIMIT 1"},
    {Q::rating_latest_by_listener,
     "SELECT " RATING_COLS " FROM ratings r WHERE listener_id = ? AND stars IS NOT NULL"
     " AND id = (SELECT MAX(id) FROM ratings r2 WHERE r2.track_id = r.track_id)"
     " ORDER BY track_id"},
    {Q::rating_history_track, "SELECT " RATING_COLS " FROM ratings WHERE track_id = ? ORDER BY id"},
    {Q::rating_history_listener,
     "SELECT " RATING_COLS " FROM ratings WHERE listener_id = ? ORDER BY id"},
    {Q::rating_count_since,
     "SELECT COUNT(*) FROM ratings WHERE listener_id = ? AND rated_at >= ? AND stars IS NOT NULL"},
    {Q::track_feedback,
     "SELECT t.id, t.listener_id, t.iteration_id, t.seed, t.params_json, t.tags, t.path,"
     " t.duration_s, t.created_at,"
     " (SELECT r.stars FROM ratings r WHERE r.track_id = t.id ORDER BY r.id DESC LIMIT 1),"
     " (SELECT COUNT(*) FROM plays p WHERE p.track_id = t.id AND p.ended_at IS NOT NULL),"
     " (SELECT TOTAL(p.seconds_heard) FROM plays p WHERE p.track_id = t.id),"
     " (SELECT MAX(MIN(1.0, p.seconds_heard / COALESCE(NULLIF(p.duration_s, 0), t.duration_s)))"
     "    FROM plays p WHERE p.track_id = t.id AND p.ended_at IS NOT NULL"
     "    AND COALESCE(NULLIF(p.duration_s, 0), t.duration_s) > 0)"
     " FROM tracks t WHERE t.listener_id = ? ORDER BY t.id"},

    {Q::iteration_next_number,
     "SELECT COALESCE(MAX(number) + 1, 0), COUNT(*) FROM iterations WHERE listener_id = ?"},
    {Q::iteration_insert,
     "INSERT INTO iterations(listener_id, number, parent_id, status, active, created_at) "
     "VALUES (?, ?, ?, 'pending', ?, ?)"},
    {Q::iteration_by_id, "SELECT " ITERATION_COLS " FROM iterations WHERE id = ?"},
    {Q::iteration_by_listener,
     "SELECT " ITERATION_COLS " FROM iterations WHERE listener_id = ? ORDER BY number"},
    {Q::iteration_active,
     "SELECT " ITERATION_COLS " FROM iterations WHERE listener_id = ? AND active = 1"},
    {Q::iteration_set_status,
     "UPDATE iterations SET status = ?, finished_at = COALESCE(?, finished_at) WHERE id = ?"},
    {Q::iteration_set_adapter, "UPDATE iterations SET adapter_path = ? WHERE id = ?"},
    {Q::iteration_set_manifest, "UPDATE iterations SET dataset_manifest = ? WHERE id = ?"},
    {Q::iteration_set_metrics, "UPDATE iterations SET metrics_json = ? WHERE id = ?"},
    {Q::iteration_deactivate_all,
     "UPDATE iterations SET active = 0 WHERE listener_id = ? AND active = 1"},
    {Q::iteration_activate, "UPDATE iterations SET active = 1 WHERE id = ?"},

    {Q::job_insert,
     "INSERT INTO jobs(kind, listener_id, iteration_id, params_json, state, created_at) "
     "VALUES (?, ?, ?, ?, 'queued', ?)"},
    {Q::job_by_id, "SELECT " JOB_COLS " FROM jobs WHERE id = ?"},
    {Q::job_start, "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ?"},
    {Q::job_progress, "UPDATE jobs SET progress = ?, message = ? WHERE id = ?"},
    {Q::job_checkpoint, "UPDATE jobs SET checkpoint_path = ? WHERE id = ?"},
    {Q::job_finish, "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?"},
    {Q::job_unfinished,
     "SELECT " JOB_COLS " FROM jobs WHERE state IN ('queued', 'running') ORDER BY id"},
    {Q::job_recent, "SELECT " JOB_COLS " FROM jobs ORDER BY id DESC LIMIT ?"},

    {Q::study_insert,
     "INSERT INTO studies(listener_id, name, participant, params_json, status, created_at) "
     "VALUES (?, ?, ?, ?, 'running', ?)"},
    {Q::study_item_insert,
     "INSERT INTO study_items(study_id, position, code, track_id, iteration_number, "
     "blinded_path) VALUES (?, ?, ?, ?, ?, ?)"},
    {Q::study_by_id, "SELECT " STUDY_COLS " FROM studies WHERE id = ?"},
    {Q::study_by_listener, "SELECT " STUDY_COLS " FROM studies WHERE listener_id = ? ORDER BY id"},
    {Q::study_items,
     "SELECT " STUDY_ITEM_COLS " FROM study_items WHERE study_id = ? ORDER BY position"},
    {Q::study_item_answer,
     "UPDATE study_items SET answered_at = ?, stars = ?, seconds_heard = ? WHERE id = ?"},
    {Q::study_item_status,
     "SELECT s.status FROM study_items i JOIN studies s ON s.id = i.study_id WHERE i.id = ?"},
    {Q::study_finish,
     "UPDATE studies SET status = 'finished', finished_at = COALESCE(finished_at, ?) "
     "WHERE id = ?"},
};
static_assert(std::size(kStatements) == static_cast<std::size_t>(Q::count_),
              "every Q has exactly one row in kStatements");

bool is_corruption(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

}  // namespace

// ---------------------------------------------------------------- enum names (public)

std::string_view to_string(PlaySource s) noexcept {
  return kPlaySources[int(s)];
}
std::string_view to_string(EndReason r) noexcept {
  return kEndReasons[int(r)];
}
std::string_view to_string(IterationStatus s) noexcept {
  return kIterationStatuses[int(s)];
}
std::string_view to_string(JobState s) noexcept {
  return kJobStates[int(s)];
}
std::string_view to_string(StudyStatus s) noexcept {
  return kStudyStatuses[int(s)];
}
PlaySource play_source_from_string(std::string_view s) {
  return enum_from<PlaySource>(kPlaySources, s, "play source");
}
EndReason end_reason_from_string(std::string_view s) {
  return enum_from<EndReason>(kEndReasons, s, "end reason");
}
IterationStatus iteration_status_from_string(std::string_view s) {
  return enum_from<IterationStatus>(kIterationStatuses, s, "iteration status");
}
JobState job_state_from_string(std::string_view s) {
  return enum_from<JobState>(kJobStates, s, "job state");
}

// ---------------------------------------------------------------- the connection

struct Store::Impl {
  std::string path;
  sqlite3* db = nullptr;
  std::array<sqlite3_stmt*, static_cast<std::size_t>(Q::count_)> cache{};
  int tx_depth = 0;
  std::set<std::string_view> changed;  // tables written in the open transaction
  std::function<void(std::string_view)> on_change;

  ~Impl() {
    for (auto* s : cache) sqlite3_finalize(s);
    sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(const std::string& what, int rc) const {
    std::string msg =
        "database " + path + ": " + what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (is_corruption(rc))
      throw CorruptDatabaseError(msg + " (the file is not a tuneloop database or is damaged)", rc);
    throw StoreError(msg, rc);
  }

  void exec(const char* sql, const char* what) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(what, sqlite3_extended_errcode(db));
  }

  sqlite3_stmt* statement(Q q) {
    auto& slot = cache[static_cast<std::size_t>(q)];
    if (!slot) {
      const char* sql = kStatements[static_cast<std::size_t>(q)].sql;
      int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr);
      if (rc != SQLITE_OK) fail(std::string("preparing '") + sql + "'", rc);
    }
    return slot;
  }

  void touched(std::string_view table) {
    if (tx_depth > 0) changed.insert(table);
  }

  int user_version() {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
    if (rc != SQLITE_OK) fail("reading the schema version", sqlite3_extended_errcode(db));
    rc = sqlite3_step(s);
    int v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) fail("reading the schema version", sqlite3_extended_errcode(db));
    return v;
  }
};

namespace {

using Impl = Store::Impl;

// A cached statement in use: binds, steps, reads columns, and resets on scope exit so the
// statement never holds a read lock or stale bindings after its call.
class Stmt {
 public:
  Stmt(Impl& impl, Q q) : impl_(impl), s_(impl.statement(q)) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  template <class... A>
  Stmt& bind(const A&... args) {
    int i = 0;
    (bind_one(++i, args), ...);
    return *this;
  }

  // True while there is a row to read.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    impl_.fail(std::string("running '") + sqlite3_sql(s_) + "'",
               sqlite3_extended_errcode(impl_.db));
  }
  void run() {
    while (step()) {
    }
  }
  int changes() const { return sqlite3_changes(impl_.db); }

  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double real(int c) const { return sqlite3_column_double(s_, c); }
  bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, sqlite3_column_bytes(s_, c)) : std::string();
  }
  std::optional<std::int64_t> opt_i64(int c) const {
    return null(c) ? std::nullopt : std::optional(i64(c));
  }
  std::optional<double> opt_real(int c) const {
    return null(c) ? std::nullopt : std::optional(real(c));
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) impl_.fail("binding a parameter", rc);
  }
  void bind_one(int i, std::int64_t v) { check(sqlite3_bind_int64(s_, i, v)); }
  void bind_one(int i, int v) { check(sqlite3_bind_int64(s_, i, v)); }
  void bind_one(int i, bool v) { check(sqlite3_bind_int64(s_, i, v ? 1 : 0)); }
  void bind_one(int i, double v) { check(sqlite3_bind_double(s_, i, v)); }
  void bind_one(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void bind_one(int i, const std::string& v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, const char* v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, std::nullopt_t) { check(sqlite3_bind_null(s_, i)); }
  template <class T>
  void bind_one(int i, const std::optional<T>& v) {
    if (v)
      bind_one(i, *v);
    else
      check(sqlite3_bind_null(s_, i));
  }

  Impl& impl_;
  sqlite3_stmt* s_;
};

// One write transaction (BEGIN IMMEDIATE, so the write lock is taken up front), or a
// savepoint when nested. Rolls back unless commit() ran. Change events fire only after
// the outermost COMMIT succeeded.
class Tx {
 public:
  explicit Tx(Impl& impl) : impl_(impl) {
    if (impl_.tx_depth == 0)
      impl_.exec("BEGIN IMMEDIATE", "starting a write transaction");
    else
      impl_.exec("SAVEPOINT nested", "starting a savepoint");
    ++impl_.tx_depth;
  }
  ~Tx() {
    if (done_) return;
    --impl_.tx_depth;
    if (impl_.tx_depth == 0) {
      if (!sqlite3_get_autocommit(impl_.db))
        sqlite3_exec(impl_.db, "ROLLBACK", nullptr, nullptr, nullptr);
      impl_.changed.clear();
    } else {
      sqlite3_exec(impl_.db, "ROLLBACK TO nested; RELEASE nested", nullptr, nullptr, nullptr);
    }
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  void commit() {
    if (impl_.tx_depth == 1) {
      impl_.exec("COMMIT", "committing");
      done_ = true;
      impl_.tx_depth = 0;
      auto changed = std::move(impl_.changed);
      impl_.changed.clear();
      if (impl_.on_change)
        for (auto table : changed) try {
            impl_.on_change(table);
          } catch (...) {
            // A listener's failure must not turn a committed write into an error.
          }
    } else {
      impl_.exec("RELEASE nested", "releasing a savepoint");
      done_ = true;
      --impl_.tx_depth;
    }
  }

 private:
  Impl& impl_;
  bool done_ = false;
};

Listener read_listener(const Stmt& s) {
  return {s.i64(0), s.text(1), s.i64(2)};
}

Song read_song(const Stmt& s) {
  return {
      s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4), s.real(5), static_cast<int>(s.i64(6)),
      s.i64(7)};
}

Track read_track(const Stmt& s) {
  return {s.i64(0),  s.i64(1),  s.opt_i64(2), s.i64(3), s.text(4),
          s.text(5), s.text(6), s.real(7),    s.i64(8)};
}

Play read_play(const Stmt& s) {
  Play p;
  p.id = s.i64(0);
  p.listener_id = s.i64(1);
  p.track_id = s.opt_i64(2);
  p.song_id = s.opt_i64(3);
  p.source = play_source_from_string(s.text(4));
  p.started_at = s.i64(5);
  p.ended_at = s.opt_i64(6);
  p.seconds_heard = s.real(7);
  p.duration_s = s.opt_real(8);
  if (!s.null(9)) p.end_reason = end_reason_from_string(s.text(9));
  return p;
}

Rating read_rating(const Stmt& s) {
  return {s.i64(0), s.i64(1), s.i64(2), s.opt_real(3), s.i64(4)};
}

Iteration read_iteration(const Stmt& s) {
  Iteration it;
  it.id = s.i64(0);
  it.listener_id = s.i64(1);
  it.number = static_cast<int>(s.i64(2));
  it.parent_id = s.opt_i64(3);
  it.adapter_path = s.text(4);
  it.dataset_manifest = s.text(5);
  it.metrics_json = s.text(6);
  it.status = iteration_status_from_string(s.text(7));
  it.active = s.i64(8) != 0;
  it.created_at = s.i64(9);
  it.finished_at = s.opt_i64(10);
  return it;
}

Job read_job(const Stmt& s) {
  Job j;
  j.id = s.i64(0);
  j.kind = s.text(1);
  j.listener_id = s.opt_i64(2);
  j.iteration_id = s.opt_i64(3);
  j.params_json = s.text(4);
  j.state = job_state_from_string(s.text(5));
  j.progress = s.real(6);
  j.message = s.text(7);
  j.error = s.text(8);
  j.checkpoint_path = s.text(9);
  j.created_at = s.i64(10);
  j.started_at = s.opt_i64(11);
  j.finished_at = s.opt_i64(12);
  return j;
}

Study read_study(const Stmt& s) {
  Study st;
  st.id = s.i64(0);
  st.listener_id = s.i64(1);
  st.name = s.text(2);
  st.participant = s.text(3);
  st.params_json = s.text(4);
  st.status = enum_from<StudyStatus>(kStudyStatuses, s.text(5), "study status");
  st.created_at = s.i64(6);
  st.finished_at = s.opt_i64(7);
  return st;
}

StudyItem read_study_item(const Stmt& s) {
  StudyItem it;
  it.id = s.i64(0);
  it.study_id = s.i64(1);
  it.position = static_cast<int>(s.i64(2));
  it.code = s.text(3);
  it.track_id = s.i64(4);
  it.iteration_number = static_cast<int>(s.i64(5));
  it.blinded_path = s.text(6);
  it.answered_at = s.opt_i64(7);
  it.stars = s.opt_real(8);
  it.seconds_heard = s.opt_real(9);
  return it;
}

template <class T, class Read, class... A>
std::optional<T> query_one(Impl& impl, Q q, Read read, const A&... args) {
  Stmt s(impl, q);
  s.bind(args...);
  if (!s.step()) return std::nullopt;
  return read(s);
}

template <class T, class Read, class... A>
std::vector<T> query_all(Impl& impl, Q q, Read read, const A&... args) {
  Stmt s(impl, q);
  s.bind(args...);
  std::vector<T> out;
  while (s.step()) out.push_back(read(s));
  return out;
}

// Runs an UPDATE/DELETE by id; throws NotFoundError naming `what` when no row matched.
template <class... A>
void update_one(Impl& impl, Q q, const std::string& what, const A&... args) {
  Stmt s(impl, q);
  s.bind(args...);
  s.run();
  if (s.changes() == 0) throw NotFoundError("database " + impl.path + ": no " + what);
}

std::string fmt_id(const char* kind, Id id) {
  return std::string(kind) + " " + std::to_string(id);
}

void check_non_negative(const Impl& impl, double v, const char* what) {
  if (!std::isfinite(v) || v < 0)
    throw InvalidValueError("database " + impl.path + ": " + what +
                            " must be a finite number >= 0, got " + std::to_string(v));
}

}  // namespace

// ---------------------------------------------------------------- open / migrate

int Store::latest_version() noexcept {
  return static_cast<int>(schema::migrations().size());
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

const std::string& Store::path() const noexcept {
  return impl_->path;
}
int Store::schema_version() const {
  return impl_->user_version();
}

Store Store::open(const std::string& path, const OpenOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  int flags =
      options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &impl->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "database " + path + ": cannot open: " +
                      (impl->db ? sqlite3_errmsg(impl->db) : sqlite3_errstr(rc));
    if (!options.read_only) msg += " (is the data folder writable?)";
    throw StoreError(msg, rc);
  }
  sqlite3_extended_result_codes(impl->db, 1);
  sqlite3_busy_timeout(impl->db, options.busy_timeout_ms);

  // Read the version before changing anything, so a newer or foreign file is left untouched.
  const int latest = latest_version();
  const int found = impl->user_version();
  if (found > latest)
    throw SchemaTooNewError("database " + path + ": schema version " + std::to_string(found) +
                            " is newer than this tuneloop understands (version " +
                            std::to_string(latest) + "); use a newer tuneloop or another file");

  impl->exec("PRAGMA foreign_keys = ON", "enabling foreign keys");
  if (options.max_page_count > 0)
    impl->exec(("PRAGMA max_page_count = " + std::to_string(options.max_page_count)).c_str(),
               "capping the page count");
  if (options.read_only) {
    if (found < latest)
      throw StoreError("database " + path + ": schema version " + std::to_string(found) +
                       " is older than version " + std::to_string(latest) +
                       " and cannot be migrated read-only");
    return Store(std::move(impl));
  }
  impl->exec("PRAGMA journal_mode = WAL", "switching to WAL");
  // FULL: a commit is on disk before the call returns, so acknowledged feedback survives.
  impl->exec("PRAGMA synchronous = FULL", "setting synchronous");
  // Deleted rows are overwritten, not left readable in free pages (listener.delete).
  impl->exec("PRAGMA secure_delete = ON", "setting secure_delete");

  const int target = options.max_version < 0 ? latest : std::min(options.max_version, latest);
  if (found < target) {
    Tx tx(*impl);
    // Re-read under the write lock: another process may have migrated meanwhile.
    const int now = impl->user_version();
    const auto& steps = schema::migrations();
    for (int v = now; v < target; ++v) {
      impl->exec(steps[v].sql, ("migrating to schema version " + std::to_string(v + 1)).c_str());
      impl->exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str(),
                 "recording the schema version");
    }
    impl->changed.clear();
    tx.commit();
  }
  return Store(std::move(impl));
}

void Store::set_change_listener(std::function<void(std::string_view)> callback) {
  impl_->on_change = std::move(callback);
}

void Store::transaction(const std::function<void()>& body) {
  Tx tx(*impl_);
  body();
  tx.commit();
}

// ---------------------------------------------------------------- listeners

Listener Store::create_listener(const std::string& name) {
  if (name.empty())
    throw InvalidValueError("database " + impl_->path + ": a listener name cannot be empty");
  Tx tx(*impl_);
  if (find_listener(name))
    throw AlreadyExistsError("database " + impl_->path + ": listener '" + name +
                             "' already exists");
  Listener l{0, name, now_ms()};
  {
    Stmt s(*impl_, Q::listener_insert);
    s.bind(name, l.created_at).run();
  }
  l.id = sqlite3_last_insert_rowid(impl_->db);
  impl_->touched("listeners");
  tx.commit();
  return l;
}

Listener Store::ensure_listener(const std::string& name) {
  if (auto l = find_listener(name)) return *l;
  return create_listener(name);
}

std::optional<Listener> Store::get_listener(Id id) {
  return query_one<Listener>(*impl_, Q::listener_by_id, read_listener, id);
}

std::optional<Listener> Store::find_listener(const std::string& name) {
  return query_one<Listener>(*impl_, Q::listener_by_name, read_listener, name);
}

std::vector<Listener> Store::listeners() {
  return query_all<Listener>(*impl_, Q::listener_all, read_listener);
}

void Store::delete_listener(Id id) {
  Tx tx(*impl_);
  update_one(*impl_, Q::listener_delete, fmt_id("listener", id), id);
  for (auto t : {"listeners", "songs", "tracks", "plays", "ratings", "iterations", "jobs"})
    impl_->touched(t);
  tx.commit();
  // The deleted rows' old pages would otherwise stay in the write-ahead log until the next
  // checkpoint; best effort (another connection reading can hold it back).
  try {
    impl_->exec("PRAGMA wal_checkpoint(TRUNCATE)", "truncating the write-ahead log");
  } catch (const StoreError&) {
  }
}

// ---------------------------------------------------------------- songs

namespace {
void require_listener(Store& store, Impl& impl, Id id) {
  if (!store.get_listener(id))
    throw NotFoundError("database " + impl.path + ": no listener " + std::to_string(id));
}
}  // namespace

SongAdded Store::add_song(const NewSong& song) {
  std::string hash = song.sha256;
  std::transform(hash.begin(), hash.end(), hash.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (hash.size() != 64 ||
      !std::all_of(hash.begin(), hash.end(), [](char c) { return std::isxdigit(c); }))
    throw InvalidValueError("database " + impl_->path + ": song '" + song.original_name +
                            "': sha256 must be 64 hex digits, got '" + song.sha256 + "'");
  check_non_negative(*impl_, song.duration_s, "song duration");
  Tx tx(*impl_);
  require_listener(*this, *impl_, song.listener_id);
  if (auto existing = find_song_by_hash(song.listener_id, hash)) return {existing->id, false};
  {
    Stmt s(*impl_, Q::song_insert);
    s.bind(song.listener_id, song.path, song.original_name, hash, song.duration_s, song.sample_rate,
           or_now(song.added_at))
        .run();
  }
  Id id = sqlite3_last_insert_rowid(impl_->db);
  impl_->touched("songs");
  tx.commit();
  return {id, true};
}

std::optional<Song> Store::get_song(Id id) {
  return query_one<Song>(*impl_, Q::song_by_id, read_song, id);
}

std::optional<Song> Store::find_song_by_hash(Id listener_id, const std::string& sha256) {
  std::string hash = sha256;
  std::transform(hash.begin(), hash.end(), hash.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return query_one<Song>(*impl_, Q::song_by_hash, read_song, listener_id, hash);
}

std::vector<Song> Store::songs(Id listener_id) {
  return query_all<Song>(*impl_, Q::song_by_listener, read_song, listener_id);
}

void Store::remove_song(Id id) {
  Tx tx(*impl_);
  update_one(*impl_, Q::song_delete, fmt_id("song", id), id);
  impl_->touched("songs");
  impl_->touched("plays");
  tx.commit();
}

// ---------------------------------------------------------------- tracks

Id Store::add_track(const NewTrack& track) {
  check_non_negative(*impl_, track.duration_s, "track duration");
  Tx tx(*impl_);
  require_listener(*this, *impl_, track.listener_id);
  if (track.iteration_id) {
    auto it = get_iteration(*track.iteration_id);
    if (!it || it->listener_id != track.listener_id)
      throw NotFoundError("database " + impl_->path + ": no iteration " +
                          std::to_string(*track.iteration_id) + " of listener " +
                          std::to_string(track.listener_id));
  }
  {
    Stmt s(*impl_, Q::track_insert);
    s.bind(track.listener_id, track.iteration_id, track.seed, track.params_json, track.tags,
           track.path, track.duration_s, or_now(track.created_at))
        .run();
  }
  Id id = sqlite3_last_insert_rowid(impl_->db);
  impl_->touched("tracks");
  tx.commit();
  return id;
}

std::optional<Track> Store::get_track(Id id) {
  return query_one<Track>(*impl_, Q::track_by_id, read_track, id);
}

std::vector<Track> Store::tracks(Id listener_id, std::optional<Id> iteration_id) {
  if (iteration_id)
    return query_all<Track>(*impl_, Q::track_by_listener_iteration, read_track, listener_id,
                            *iteration_id);
  return query_all<Track>(*impl_, Q::track_by_listener, read_track, listener_id);
}

void Store::delete_track(Id id) {
  Tx tx(*impl_);
  update_one(*impl_, Q::track_delete, fmt_id("track", id), id);
  for (auto t : {"tracks", "plays", "ratings"}) impl_->touched(t);
  tx.commit();
}

// ---------------------------------------------------------------- plays

Id Store::start_play(PlayTarget target, PlaySource source, UnixMs started_at) {
  Id listener = 0;
  double duration = 0;
  std::optional<Id> track_id, song_id;
  if (target.kind == PlayTarget::Kind::track) {
    auto t = get_track(target.id);
    if (!t) throw NotFoundError("database " + impl_->path + ": no " + fmt_id("track", target.id));
    listener = t->listener_id;
    duration = t->duration_s;
    track_id = target.id;
  } else {
    auto s = get_song(target.id);
    if (!s) throw NotFoundError("database " + impl_->path + ": no " + fmt_id("song", target.id));
    listener = s->listener_id;
    duration = s->duration_s;
    song_id = target.id;
  }
  Tx tx(*impl_);
  {
    Stmt s(*impl_, Q::play_insert);
    s.bind(listener, track_id, song_id, to_string(source), or_now(started_at), duration).run();
  }
  Id id = sqlite3_last_insert_rowid(impl_->db);
  impl_->touched("plays");
  tx.commit();
  return id;
}

void Store::update_play_progress(Id play_id, double seconds_heard) {
  check_non_negative(*impl_, seconds_heard, "seconds heard");
  Tx tx(*impl_);
  update_one(*impl_, Q::play_progress, fmt_id("play", play_id), seconds_heard, play_id);
  impl_->touched("plays");
  tx.commit();
}

void Store::finish_play(Id play_id, UnixMs ended_at, double seconds_heard, double duration_s,
                        EndReason reason) {
  check_non_negative(*impl_, seconds_heard, "seconds heard");
  check_non_negative(*impl_, duration_s, "duration");
  Tx tx(*impl_);
  update_one(*impl_, Q::play_finish, fmt_id("play", play_id), or_now(ended_at), seconds_heard,
             duration_s, to_string(reason), play_id);
  impl_->touched("plays");
  tx.commit();
}

Id Store::record_listen(const ListenEvent& e) {
  check_non_negative(*impl_, e.seconds_heard, "seconds heard");
  check_non_negative(*impl_, e.duration_s, "duration");
  Tx tx(*impl_);
  Id id = start_play(e.target, e.source, e.started_at);
  finish_play(id, e.ended_at, e.seconds_heard, e.duration_s, e.end_reason);
  tx.commit();
  return id;
}

std::optional<Play> Store::get_play(Id id) {
  return query_one<Play>(*impl_, Q::play_by_id, read_play, id);
}

std::vector<Play> Store::plays_for_listener(Id listener_id, UnixMs since) {
  return query_all<Play>(*impl_, Q::play_by_listener, read_play, listener_id, since);
}

std::vector<Play> Store::plays_for_track(Id track_id) {
  return query_all<Play>(*impl_, Q::play_by_track, read_play, track_id);
}

int Store::close_dangling_plays(UnixMs ended_at) {
  Tx tx(*impl_);
  int n = 0;
  {
    Stmt s(*impl_, Q::play_close_dangling);
    s.bind(or_now(ended_at)).run();
    n = s.changes();
  }
  if (n > 0) impl_->touched("plays");
  tx.commit();
  return n;
}

// ---------------------------------------------------------------- ratings

namespace {
Id insert_rating(Store& store, Impl& impl, Id track_id, std::optional<double> stars, UnixMs at) {
  Tx tx(impl);
  auto t = store.get_track(track_id);
  if (!t) throw NotFoundError("database " + impl.path + ": no " + fmt_id("track", track_id));
  {
    Stmt s(impl, Q::rating_insert);
    s.bind(t->listener_id, track_id, stars, or_now(at)).run();
  }
  Id id = sqlite3_last_insert_rowid(impl.db);
  impl.touched("ratings");
  tx.commit();
  return id;
}
}  // namespace

Id Store::rate(Id track_id, double stars, UnixMs rated_at) {
  if (!std::isfinite(stars) || stars < 1.0 || stars > 5.0 || stars * 2 != std::floor(stars * 2))
    throw InvalidValueError("rating for track " + std::to_string(track_id) +
                            " must be 1 to 5 stars in steps of 0.5, got " + std::to_string(stars));
  return insert_rating(*this, *impl_, track_id, stars, rated_at);
}

Id Store::clear_rating(Id track_id, UnixMs rated_at) {
  return insert_rating(*this, *impl_, track_id, std::nullopt, rated_at);
}

std::optional<double> Store::current_rating(Id track_id) {
  Stmt s(*impl_, Q::rating_current);
  s.bind(track_id);
  if (!s.step()) return std::nullopt;
  return s.opt_real(0);
}

std::vector<Rating> Store::ratings(Id listener_id) {
  return query_all<Rating>(*impl_, Q::rating_latest_by_listener, read_rating, listener_id);
}

std::vector<Rating> Store::rating_history(Id track_id) {
  return query_all<Rating>(*impl_, Q::rating_history_track, read_rating, track_id);
}

std::vector<Rating> Store::rating_history_for_listener(Id listener_id) {
  return query_all<Rating>(*impl_, Q::rating_history_listener, read_rating, listener_id);
}

int Store::count_ratings_since(Id listener_id, UnixMs since) {
  Stmt s(*impl_, Q::rating_count_since);
  s.bind(listener_id, since);
  s.step();
  return static_cast<int>(s.i64(0));
}

int Store::count_ratings_since_iteration(Id iteration_id) {
  auto it = get_iteration(iteration_id);
  if (!it)
    throw NotFoundError("database " + impl_->path + ": no " + fmt_id("iteration", iteration_id));
  return count_ratings_since(it->listener_id, it->created_at);
}

std::vector<TrackFeedback> Store::track_feedback(Id listener_id) {
  return query_all<TrackFeedback>(
      *impl_, Q::track_feedback,
      [](const Stmt& s) {
        TrackFeedback f;
        f.track = read_track(s);
        f.stars = s.opt_real(9);
        f.play_count = static_cast<int>(s.i64(10));
        f.seconds_heard = s.real(11);
        f.best_listen_fraction = s.null(12) ? 0.0 : s.real(12);
        return f;
      },
      listener_id);
}

// ---------------------------------------------------------------- iterations

Iteration Store::create_iteration(Id listener_id, std::optional<Id> parent_id, UnixMs created_at) {
  Tx tx(*impl_);
  require_listener(*this, *impl_, listener_id);
  if (parent_id) {
    auto p = get_iteration(*parent_id);
    if (!p || p->listener_id != listener_id)
      throw NotFoundError("database " + impl_->path + ": no iteration " +
                          std::to_string(*parent_id) + " of listener " +
                          std::to_string(listener_id));
  }
  int number = 0;
  bool first = false;
  {
    Stmt s(*impl_, Q::iteration_next_number);
    s.bind(listener_id);
    s.step();
    number = static_cast<int>(s.i64(0));
    first = s.i64(1) == 0;
  }
  {
    Stmt s(*impl_, Q::iteration_insert);
    s.bind(listener_id, number, parent_id, first, or_now(created_at)).run();
  }
  Id id = sqlite3_last_insert_rowid(impl_->db);
  impl_->touched("iterations");
  auto it = get_iteration(id);
  tx.commit();
  return *it;
}

std::optional<Iteration> Store::get_iteration(Id id) {
  return query_one<Iteration>(*impl_, Q::iteration_by_id, read_iteration, id);
}

std::vector<Iteration> Store::iterations(Id listener_id) {
  return query_all<Iteration>(*impl_, Q::iteration_by_listener, read_iteration, listener_id);
}

std::optional<Iteration> Store::active_iteration(Id listener_id) {
  return query_one<Iteration>(*impl_, Q::iteration_active, read_iteration, listener_id);
}

void Store::set_iteration_status(Id id, IterationStatus status, UnixMs at) {
  std::optional<UnixMs> finished;
  if (status == IterationStatus::ready || status == IterationStatus::failed) finished = or_now(at);
  Tx tx(*impl_);
  if (status == IterationStatus::deleted || status == IterationStatus::failed) {
    auto it = get_iteration(id);
    if (it && it->active)
      throw InvalidValueError("database " + impl_->path + ": iteration " + std::to_string(id) +
                              " is active; activate another before marking it " +
                              std::string(to_string(status)));
  }
  update_one(*impl_, Q::iteration_set_status, fmt_id("iteration", id), to_string(status), finished,
             id);
  impl_->touched("iterations");
  tx.commit();
}

void Store::set_iteration_adapter(Id id, const std::string& adapter_path) {
  Tx tx(*impl_);
  update_one(*impl_, Q::iteration_set_adapter, fmt_id("iteration", id), adapter_path, id);
  impl_->touched("iterations");
  tx.commit();
}

void Store::set_iteration_manifest(Id id, const std::string& dataset_manifest) {
  Tx tx(*impl_);
  update_one(*impl_, Q::iteration_set_manifest, fmt_id("iteration", id), dataset_manifest, id);
  impl_->touched("iterations");
  tx.commit();
}

void Store::set_iteration_metrics(Id id, const std::string& metrics_json) {
  Tx tx(*impl_);
  update_one(*impl_, Q::iteration_set_metrics, fmt_id("iteration", id), metrics_json, id);
  impl_->touched("iterations");
  tx.commit();
}

void Store::activate_iteration(Id id) {
  Tx tx(*impl_);
  auto it = get_iteration(id);
  if (!it) throw NotFoundError("database " + impl_->path + ": no " + fmt_id("iteration", id));
  if (it->status == IterationStatus::failed || it->status == IterationStatus::deleted)
    throw InvalidValueError("database " + impl_->path + ": iteration " + std::to_string(id) +
                            " is " + std::string(to_string(it->status)) +
                            " and cannot be activated");
  {
    Stmt s(*impl_, Q::iteration_deactivate_all);
    s.bind(it->listener_id).run();
  }
  update_one(*impl_, Q::iteration_activate, fmt_id("iteration", id), id);
  impl_->touched("iterations");
  tx.commit();
}

// ---------------------------------------------------------------- jobs

Id Store::create_job(const NewJob& job) {
  if (job.kind.empty()) throw InvalidValueError("database " + impl_->path + ": a job needs a kind");
  Tx tx(*impl_);
  {
    Stmt s(*impl_, Q::job_insert);
    s.bind(job.kind, job.listener_id, job.iteration_id, job.params_json, or_now(job.created_at))
        .run();
  }
  Id id = sqlite3_last_insert_rowid(impl_->db);
  impl_->touched("jobs");
  tx.commit();
  return id;
}

std::optional<Job> Store::get_job(Id id) {
  return query_one<Job>(*impl_, Q::job_by_id, read_job, id);
}

namespace {
Job require_unfinished_job(Store& store, Impl& impl, Id id) {
  auto j = store.get_job(id);
  if (!j) throw NotFoundError("database " + impl.path + ": no " + fmt_id("job", id));
  if (j->state != JobState::queued && j->state != JobState::running)
    throw InvalidValueError("database " + impl.path + ": job " + std::to_string(id) +
                            " already finished (" + std::string(to_string(j->state)) + ")");
  return *j;
}
}  // namespace

void Store::start_job(Id id, UnixMs at) {
  Tx tx(*impl_);
  require_unfinished_job(*this, *impl_, id);
  update_one(*impl_, Q::job_start, fmt_id("job", id), or_now(at), id);
  impl_->touched("jobs");
  tx.commit();
}

void Store::update_job_progress(Id id, double progress, const std::string& message) {
  if (!std::isfinite(progress) || progress < 0 || progress > 1)
    throw InvalidValueError("database " + impl_->path + ": job " + std::to_string(id) +
                            " progress must be within 0..1, got " + std::to_string(progress));
  Tx tx(*impl_);
  update_one(*impl_, Q::job_progress, fmt_id("job", id), progress, message, id);
  impl_->touched("jobs");
  tx.commit();
}

void Store::set_job_checkpoint(Id id, const std::string& checkpoint_path) {
  Tx tx(*impl_);
  update_one(*impl_, Q::job_checkpoint, fmt_id("job", id), checkpoint_path, id);
  impl_->touched("jobs");
  tx.commit();
}

void Store::finish_job(Id id, JobState state, const std::string& error, UnixMs at) {
  if (state == JobState::queued || state == JobState::running)
    throw InvalidValueError("database " + impl_->path + ": job " + std::to_string(id) +
                            " cannot finish as " + std::string(to_string(state)));
  Tx tx(*impl_);
  require_unfinished_job(*this, *impl_, id);
  update_one(*impl_, Q::job_finish, fmt_id("job", id), to_string(state), error, or_now(at), id);
  impl_->touched("jobs");
  tx.commit();
}

std::vector<Job> Store::unfinished_jobs() {
  return query_all<Job>(*impl_, Q::job_unfinished, read_job);
}

std::vector<Job> Store::jobs(int limit) {
  return query_all<Job>(*impl_, Q::job_recent, read_job, limit);
}

// ---------------------------------------------------------------- studies

Id Store::create_study(Id listener_id, const std::string& name, const std::string& participant,
                       const std::string& params_json, const std::vector<NewStudyItem>& items,
                       UnixMs created_at) {
  if (name.empty() || participant.empty())
    throw InvalidValueError("database " + impl_->path + ": a study needs a name and a participant");
  std::set<std::string> codes;
  for (const auto& item : items)
    if (item.code.empty() || !codes.insert(item.code).second)
      throw InvalidValueError("database " + impl_->path + ": study item codes must be unique and "
                              "not empty, got '" + item.code + "' twice or empty");
  Tx tx(*impl_);
  if (!get_listener(listener_id))
    throw NotFoundError("database " + impl_->path + ": no " + fmt_id("listener", listener_id));
  {
    Stmt s(*impl_, Q::study_insert);
    s.bind(listener_id, name, participant, params_json, or_now(created_at)).run();
  }
  const Id id = sqlite3_last_insert_rowid(impl_->db);
  int position = 0;
  for (const auto& item : items) {
    if (!get_track(item.track_id))
      throw NotFoundError("database " + impl_->path + ": no " + fmt_id("track", item.track_id));
    Stmt s(*impl_, Q::study_item_insert);
    s.bind(id, position++, item.code, item.track_id, item.iteration_number, item.blinded_path)
        .run();
  }
  impl_->touched("studies");
  tx.commit();
  return id;
}

std::optional<Study> Store::get_study(Id id) {
  return query_one<Study>(*impl_, Q::study_by_id, read_study, id);
}

std::vector<Study> Store::studies(Id listener_id) {
  return query_all<Study>(*impl_, Q::study_by_listener, read_study, listener_id);
}

std::vector<StudyItem> Store::study_items(Id study_id) {
  return query_all<StudyItem>(*impl_, Q::study_items, read_study_item, study_id);
}

void Store::answer_study_item(Id item_id, std::optional<double> stars,
                              std::optional<double> seconds_heard, UnixMs at) {
  if (stars && (!std::isfinite(*stars) || *stars < 1.0 || *stars > 5.0 ||
                *stars * 2 != std::floor(*stars * 2)))
    throw InvalidValueError("database " + impl_->path + ": study item " + std::to_string(item_id) +
                            " must be rated 1 to 5 stars in steps of 0.5, got " +
                            std::to_string(*stars));
  if (seconds_heard) check_non_negative(*impl_, *seconds_heard, "seconds heard");
  Tx tx(*impl_);
  {
    // Answers to a finished study would change results already exported.
    Stmt q(*impl_, Q::study_item_status);
    q.bind(item_id);
    if (!q.step())
      throw NotFoundError("database " + impl_->path + ": no " + fmt_id("study item", item_id));
    if (q.text(0) != "running")
      throw InvalidValueError("database " + impl_->path + ": study item " +
                              std::to_string(item_id) + " belongs to a finished study");
  }
  update_one(*impl_, Q::study_item_answer, fmt_id("study item", item_id), or_now(at), stars,
             seconds_heard, item_id);
  impl_->touched("studies");
  tx.commit();
}

void Store::finish_study(Id study_id, UnixMs at) {
  Tx tx(*impl_);
  update_one(*impl_, Q::study_finish, fmt_id("study", study_id), or_now(at), study_id);
  impl_->touched("studies");
  tx.commit();
}

}  // namespace tuneloop::store

#pragma once
// The SQLite store: schema, migrations and the typed API every other folder uses.
// No SQL lives outside store/.
//
// Conventions used throughout:
//  - ids are `Id` (SQLite rowids, > 0);
//  - points in time are `UnixMs` (milliseconds since the Unix epoch, UTC);
//  - durations and listening time are `double` seconds.
//
// Thread model: a `Store` object is a single SQLite connection and is NOT thread-safe;
// use it from one thread (the daemon's io thread is the one writer). Other threads open
// their own `Store` on the same file; WAL lets them read while the writer writes.
// Every write method commits before it returns (synchronous=FULL), so an acknowledged
// rating or listen survives a crash or SIGKILL of the process.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tuneloop::store {

using Id = std::int64_t;
using UnixMs = std::int64_t;

/// The current wall-clock time as UnixMs.
UnixMs now_ms() noexcept;

// ---------------------------------------------------------------- errors

/// Any failure of the store. The message names the database file and the problem;
/// `sqlite_code()` is SQLite's extended result code (0 when the error is not SQLite's).
class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& message, int sqlite_code = 0)
      : std::runtime_error(message), sqlite_code_(sqlite_code) {}
  int sqlite_code() const noexcept { return sqlite_code_; }

 private:
  int sqlite_code_;
};

/// The file is not an SQLite database (or is damaged).
class CorruptDatabaseError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// The database was written by a newer tuneloop (its user_version is above ours).
class SchemaTooNewError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// A value the caller passed is out of range (a 4.3-star rating, progress 1.5, …).
class InvalidValueError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// The id (or name) the caller passed does not exist.
class NotFoundError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// A uniqueness rule would be broken (a listener name that is taken).
class AlreadyExistsError : public StoreError {
 public:
  using StoreError::StoreError;
};

// ---------------------------------------------------------------- records

struct Listener {
  Id id = 0;
  std::string name{};
  UnixMs created_at = 0;
};

/// One of the listener's own audio files (copied into the data folder).
struct Song {
  Id id = 0;
  Id listener_id = 0;
  std::string path{};           // where the file lives in the data folder
  std::string original_name{};  // the name the listener gave it
  std::string sha256{};         // lower-case hex of the file content
  double duration_s = 0;
  int sample_rate = 0;
  UnixMs added_at = 0;
};

struct NewSong {
  Id listener_id = 0;
  std::string path{};
  std::string original_name{};
  std::string sha256{};
  double duration_s = 0;
  int sample_rate = 0;
  UnixMs added_at = 0;  // 0 = now
};

struct SongAdded {
  Id id = 0;
  bool inserted = false;  // false: a song with the same content hash already existed
};

/// A generated track.
struct Track {
  Id id = 0;
  Id listener_id = 0;
  std::optional<Id> iteration_id{};  // empty for tracks made outside an iteration
  std::int64_t seed = 0;
  std::string params_json{};  // generation parameters, JSON text
  std::string tags{};         // as given to the generator, e.g. "fast,drums"
  std::string path{};
  double duration_s = 0;
  UnixMs created_at = 0;
};

struct NewTrack {
  Id listener_id = 0;
  std::optional<Id> iteration_id{};
  std::int64_t seed = 0;
  std::string params_json = "{}";
  std::string tags{};
  std::string path{};
  double duration_s = 0;
  UnixMs created_at = 0;  // 0 = now
};

enum class PlaySource { player, external };
enum class EndReason { completed, skipped, stopped, interrupted };

std::string_view to_string(PlaySource s) noexcept;
std::string_view to_string(EndReason r) noexcept;
/// Throws InvalidValueError on an unknown name.
PlaySource play_source_from_string(std::string_view s);
/// Throws InvalidValueError on an unknown name.
EndReason end_reason_from_string(std::string_view s);

/// What was played: a generated track or one of the listener's songs.
struct PlayTarget {
  enum class Kind { track, song };
  Kind kind = Kind::track;
  Id id = 0;
  static PlayTarget track(Id id) { return {Kind::track, id}; }
  static PlayTarget song(Id id) { return {Kind::song, id}; }
};

struct Play {
  Id id = 0;
  Id listener_id = 0;
  std::optional<Id> track_id{};  // exactly one of track_id / song_id is set
  std::optional<Id> song_id{};
  PlaySource source = PlaySource::player;
  UnixMs started_at = 0;
  std::optional<UnixMs> ended_at{};  // empty while playing (or if the process died mid-play)
  double seconds_heard = 0;          // audio that actually reached the output, pauses excluded
  std::optional<double> duration_s{};
  std::optional<EndReason> end_reason{};
};

/// A whole play reported at once (by an external client).
struct ListenEvent {
  PlayTarget target;
  PlaySource source = PlaySource::external;
  UnixMs started_at = 0;
  UnixMs ended_at = 0;
  double seconds_heard = 0;
  double duration_s = 0;
  EndReason end_reason = EndReason::completed;
};

/// One row of a track's rating history. `stars` empty means the rating was cleared.
struct Rating {
  Id id = 0;
  Id listener_id = 0;
  Id track_id = 0;
  std::optional<double> stars{};
  UnixMs rated_at = 0;
};

enum class IterationStatus { pending, training, generating, ready, failed, deleted };
std::string_view to_string(IterationStatus s) noexcept;
/// Throws InvalidValueError on an unknown name.
IterationStatus iteration_status_from_string(std::string_view s);

struct Iteration {
  Id id = 0;
  Id listener_id = 0;
  int number = 0;  // per listener; 0 = the base model
  std::optional<Id> parent_id{};
  std::string adapter_path{};      // empty for the base model / until trained
  std::string dataset_manifest{};  // JSON text (or a path to one)
  std::string metrics_json{};      // "{}" until measured
  IterationStatus status = IterationStatus::pending;
  bool active = false;  // at most one per listener; the one generation uses
  UnixMs created_at = 0;
  std::optional<UnixMs> finished_at{};  // set when status becomes ready or failed
};

enum class JobState { queued, running, done, failed, cancelled };
std::string_view to_string(JobState s) noexcept;
/// Throws InvalidValueError on an unknown name.
JobState job_state_from_string(std::string_view s);

struct Job {
  Id id = 0;
  std::string kind{};  // e.g. "finetune", "generate", "import"
  std::optional<Id> listener_id{};
  std::optional<Id> iteration_id{};
  std::string params_json{};  // what the job needs to (re)start
  JobState state = JobState::queued;
  double progress = 0;    // 0..1
  std::string message{};  // latest human-readable status line
  std::string error{};    // set when failed
  std::string checkpoint_path{};
  UnixMs created_at = 0;
  std::optional<UnixMs> started_at{};
  std::optional<UnixMs> finished_at{};
};

struct NewJob {
  std::string kind{};
  std::optional<Id> listener_id{};
  std::optional<Id> iteration_id{};
  std::string params_json = "{}";
  UnixMs created_at = 0;  // 0 = now
};

/// Everything the dataset builder needs about one generated track, in one row.
struct TrackFeedback {
  Track track;
  std::optional<double> stars{};    // latest rating, empty if never rated or cleared
  int play_count = 0;               // finished plays
  double seconds_heard = 0;         // summed over all plays
  double best_listen_fraction = 0;  // max over finished plays of min(1, heard / duration)
};

/// A human study session: a blinded playlist of tracks from chosen iterations, rated by
/// one participant. Its judgements are kept apart from `ratings` (they are not feedback).
enum class StudyStatus { running, finished };
std::string_view to_string(StudyStatus s) noexcept;

struct Study {
  Id id = 0;
  Id listener_id = 0;
  std::string name{};         // the study's name, e.g. "spring-pilot"
  std::string participant{};  // who rates (names the rows in the exported events)
  std::string params_json{};  // how the playlist was drawn (iterations, seed, …), JSON text
  StudyStatus status = StudyStatus::running;
  UnixMs created_at = 0;
  std::optional<UnixMs> finished_at{};
};

struct NewStudyItem {
  Id track_id = 0;
  int iteration_number = 0;
  std::string code{};          // the blinded name the participant sees
  std::string blinded_path{};  // a copy of the audio whose name reveals nothing
};

/// One place in a study's playlist and the participant's answer to it.
struct StudyItem {
  Id id = 0;
  Id study_id = 0;
  int position = 0;  // 0-based order of presentation
  std::string code{};
  Id track_id = 0;
  int iteration_number = 0;
  std::string blinded_path{};
  std::optional<UnixMs> answered_at{};  // empty until rated or skipped
  std::optional<double> stars{};        // empty when skipped (or not yet answered)
  std::optional<double> seconds_heard{};
};

// ---------------------------------------------------------------- the store

struct OpenOptions {
  /// Migrate only up to this schema version (tests build old databases with it);
  /// -1 = the latest. A database already above it is left as is.
  int max_version = -1;
  int busy_timeout_ms = 5000;
  /// Open without write access (SQLITE_OPEN_READONLY); no migration is run, and a
  /// database below the latest version is refused.
  bool read_only = false;
  /// Test hook: caps the database at this many pages (PRAGMA max_page_count) to make
  /// "database or disk is full" happen on demand; 0 = no cap.
  int max_page_count = 0;
};

class Store {
 public:
  /// The newest schema version this build knows.
  static int latest_version() noexcept;

  /// Opens (creating if needed) the database at `path` and migrates it to the latest
  /// schema. Throws CorruptDatabaseError if the file is not a database,
  /// SchemaTooNewError if its version is newer than ours, StoreError if it cannot be
  /// opened or migrated (read-only folder, full disk); a failed migration writes nothing.
  static Store open(const std::string& path, const OpenOptions& options = {});

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  const std::string& path() const noexcept;
  /// The schema version of the open database (PRAGMA user_version).
  int schema_version() const;

  /// Called after every committed write with the name of the table that changed
  /// ("listeners", "songs", "tracks", "plays", "ratings", "iterations", "jobs"), once per
  /// table per transaction. The callback must not throw (exceptions are swallowed).
  void set_change_listener(std::function<void(std::string_view table)> callback);

  /// Runs `body` in one transaction: every write inside commits together, or none does
  /// if `body` throws (the exception is rethrown). May nest.
  void transaction(const std::function<void()>& body);

  // -- listeners
  /// Throws AlreadyExistsError if the name is taken, InvalidValueError if it is empty.
  Listener create_listener(const std::string& name);
  /// The listener called `name`, created if missing.
  Listener ensure_listener(const std::string& name);
  std::optional<Listener> get_listener(Id id);
  std::optional<Listener> find_listener(const std::string& name);
  std::vector<Listener> listeners();
  /// Deletes the listener and all their songs, tracks, plays, ratings, iterations and
  /// jobs (files on disk are the caller's). Throws NotFoundError if missing.
  void delete_listener(Id id);

  // -- songs
  /// Adds a song, or returns the existing one with the same (listener, sha256).
  /// Throws NotFoundError for an unknown listener, InvalidValueError for a bad hash.
  SongAdded add_song(const NewSong& song);
  std::optional<Song> get_song(Id id);
  std::optional<Song> find_song_by_hash(Id listener_id, const std::string& sha256);
  std::vector<Song> songs(Id listener_id);
  /// Throws NotFoundError if missing. Plays of the song are deleted with it.
  void remove_song(Id id);

  // -- tracks
  /// Throws NotFoundError for an unknown listener or iteration.
  Id add_track(const NewTrack& track);
  std::optional<Track> get_track(Id id);
  /// Tracks of the listener, newest first; only those of `iteration_id` if given.
  std::vector<Track> tracks(Id listener_id, std::optional<Id> iteration_id = std::nullopt);
  /// Throws NotFoundError if missing. Its plays and ratings are deleted with it.
  void delete_track(Id id);

  // -- plays (listening time)
  /// Records that playback started; returns the play id. Throws NotFoundError for an
  /// unknown track/song.
  Id start_play(PlayTarget target, PlaySource source, UnixMs started_at = 0);
  /// A checkpoint of the seconds heard so far, so a crash loses at most one interval.
  /// Throws NotFoundError if missing, InvalidValueError if negative.
  void update_play_progress(Id play_id, double seconds_heard);
  /// Throws NotFoundError if missing, InvalidValueError for negative times.
  void finish_play(Id play_id, UnixMs ended_at, double seconds_heard, double duration_s,
                   EndReason reason);
  /// A whole play at once; returns the play id. Throws as start_play/finish_play.
  Id record_listen(const ListenEvent& event);
  std::optional<Play> get_play(Id id);
  /// Newest first.
  std::vector<Play> plays_for_listener(Id listener_id, UnixMs since = 0);
  std::vector<Play> plays_for_track(Id track_id);
  /// Plays left without an end (the process died mid-play): closes them as interrupted
  /// with their last checkpoint. Returns how many. Call once at daemon start.
  int close_dangling_plays(UnixMs ended_at = 0);

  // -- ratings
  /// Appends a rating (1.0 to 5.0 in steps of 0.5); returns the rating row id.
  /// Throws InvalidValueError for other values, NotFoundError for an unknown track.
  Id rate(Id track_id, double stars, UnixMs rated_at = 0);
  /// Appends a "cleared" row: the track counts as unrated again.
  Id clear_rating(Id track_id, UnixMs rated_at = 0);
  /// The latest recorded rating (by recording order), empty if never rated or last cleared.
  std::optional<double> current_rating(Id track_id);
  /// The listener's current ratings: the latest row per track, cleared ones left out.
  std::vector<Rating> ratings(Id listener_id);
  /// Every rating row of the track, oldest first.
  std::vector<Rating> rating_history(Id track_id);
  /// Every rating row of the listener, oldest first.
  std::vector<Rating> rating_history_for_listener(Id listener_id);
  /// Rating rows (not clears) the listener made at or after `since`.
  int count_ratings_since(Id listener_id, UnixMs since);
  /// Rating rows made at or after the iteration's created_at. Throws NotFoundError.
  int count_ratings_since_iteration(Id iteration_id);
  /// Latest rating and listening summary for each of the listener's generated tracks.
  std::vector<TrackFeedback> track_feedback(Id listener_id);

  // -- iterations
  /// Creates the listener's next iteration (number = last + 1, or 0 for the first),
  /// status pending. The listener's first iteration becomes active.
  /// Throws NotFoundError for an unknown listener or parent.
  Iteration create_iteration(Id listener_id, std::optional<Id> parent_id, UnixMs created_at = 0);
  std::optional<Iteration> get_iteration(Id id);
  /// Oldest first.
  std::vector<Iteration> iterations(Id listener_id);
  std::optional<Iteration> active_iteration(Id listener_id);
  /// ready and failed also set finished_at. Throws NotFoundError if missing.
  void set_iteration_status(Id id, IterationStatus status, UnixMs at = 0);
  void set_iteration_adapter(Id id, const std::string& adapter_path);
  void set_iteration_manifest(Id id, const std::string& dataset_manifest);
  void set_iteration_metrics(Id id, const std::string& metrics_json);
  /// Makes `id` the listener's only active iteration (also used to roll back).
  /// Throws NotFoundError if missing, InvalidValueError if it is failed or deleted.
  void activate_iteration(Id id);

  // -- studies (human evaluation sessions)
  /// Creates a running study with its playlist (items in presentation order).
  /// Throws NotFoundError for an unknown listener or track, InvalidValueError for an
  /// empty name/participant/code or a repeated code.
  Id create_study(Id listener_id, const std::string& name, const std::string& participant,
                  const std::string& params_json, const std::vector<NewStudyItem>& items,
                  UnixMs created_at = 0);
  std::optional<Study> get_study(Id id);
  /// Oldest first.
  std::vector<Study> studies(Id listener_id);
  /// The playlist in presentation order.
  std::vector<StudyItem> study_items(Id study_id);
  /// Records the answer to an item (stars 1–5 in half steps, or empty for a skip);
  /// answering again replaces it. Throws NotFoundError if missing, InvalidValueError for
  /// bad stars/seconds or a finished study.
  void answer_study_item(Id item_id, std::optional<double> stars,
                         std::optional<double> seconds_heard, UnixMs at = 0);
  /// Marks the study finished. Throws NotFoundError if missing.
  void finish_study(Id study_id, UnixMs at = 0);

  // -- jobs
  Id create_job(const NewJob& job);
  std::optional<Job> get_job(Id id);
  /// queued → running, sets started_at. Throws NotFoundError if missing.
  void start_job(Id id, UnixMs at = 0);
  /// Throws InvalidValueError if progress is outside 0..1, NotFoundError if missing.
  void update_job_progress(Id id, double progress, const std::string& message = {});
  void set_job_checkpoint(Id id, const std::string& checkpoint_path);
  /// Ends the job as done, failed or cancelled. Throws InvalidValueError for
  /// queued/running.
  void finish_job(Id id, JobState state, const std::string& error = {}, UnixMs at = 0);
  /// Queued and running jobs, oldest first (to resume after a restart).
  std::vector<Job> unfinished_jobs();
  /// Newest first, at most `limit`.
  std::vector<Job> jobs(int limit = 100);

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tuneloop::store

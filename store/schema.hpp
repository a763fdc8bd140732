#pragma once
// The schema as a list of migration steps. Step i (0-based) takes a database from
// user_version i to i + 1. Append new steps; never edit a released one.

#include <vector>

namespace tuneloop::store::schema {

struct Migration {
  const char* summary;
  const char* sql;
};

inline const std::vector<Migration>& migrations() {
  static const std::vector<Migration> steps = {
      {"v1: listeners, songs, tracks, plays, ratings, iterations", R"sql(
CREATE TABLE listeners (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (name <> ''),
  created_at INTEGER NOT NULL
);
CREATE TABLE songs (
  id INTEGER PRIMARY KEY,
  listener_id INTEGER NOT NULL REFERENCES listeners(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  original_name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  duration_s REAL NOT NULL,
  sample_rate INTEGER NOT NULL,
  added_at INTEGER NOT NULL,
  UNIQUE (listener_id, sha256)
);
CREATE TABLE iterations (
  id INTEGER PRIMARY KEY,
  listener_id INTEGER NOT NULL REFERENCES listeners(id) ON DELETE CASCADE,
  number INTEGER NOT NULL CHECK (number >= 0),
  parent_id INTEGER REFERENCES iterations(id) ON DELETE SET NULL,
  adapter_path TEXT NOT NULL DEFAULT '',
  dataset_manifest TEXT NOT NULL DEFAULT '',
  metrics_json TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN
    ('pending', 'training', 'generating', 'ready', 'failed', 'deleted')),
  active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  UNIQUE (listener_id, number)
);
CREATE TABLE tracks (
  id INTEGER PRIMARY KEY,
  listener_id INTEGER NOT NULL REFERENCES listeners(id) ON DELETE CASCADE,
  iteration_id INTEGER REFERENCES iterations(id) ON DELETE SET NULL,
  seed INTEGER NOT NULL,
  params_json TEXT NOT NULL DEFAULT '{}',
  tags TEXT NOT NULL DEFAULT '',
  path TEXT NOT NULL,
  duration_s REAL NOT NULL CHECK (duration_s >= 0),
  created_at INTEGER NOT NULL
);
CREATE TABLE plays (
  id INTEGER PRIMARY KEY,
  listener_id INTEGER NOT NULL REFERENCES listeners(id) ON DELETE CASCADE,
  track_id INTEGER REFERENCES tracks(id) ON DELETE CASCADE,
  song_id INTEGER REFERENCES songs(id) ON DELETE CASCADE,
  source TEXT NOT NULL CHECK (source IN ('player', 'external')),
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  seconds_heard REAL NOT NULL DEFAULT 0 CHECK (seconds_heard >= 0),
  duration_s REAL,
  end_reason TEXT CHECK (end_reason IS NULL OR end_reason IN
    ('completed', 'skipped', 'stopped', 'interrupted')),
  CHECK ((track_id IS NULL) <> (song_id IS NULL))
);
-- Append-only: the latest row per track counts; stars NULL means "cleared".
CREATE TABLE ratings (
  id INTEGER PRIMARY KEY,
  listener_id INTEGER NOT NULL REFERENCES listeners(id) ON DELETE CASCADE,
  track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
  stars REAL CHECK (stars IS NULL OR
    (stars BETWEEN 1 AND 5 AND stars * 2 = CAST(stars * 2 AS INTEGER))),
  rated_at INTEGER NOT NULL
);
)sql"},
      {"v2: jobs, one active iteration per listener, lookup indexes", R"sql(
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind <> ''),
  listener_id INTEGER REFERENCES listeners(id) ON DELETE CASCADE,
  iteration_id INTEGER REFERENCES iterations(id) ON DELETE SET NULL,
  params_json TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  progress REAL NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
  message TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  checkpoint_path TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX jobs_by_state ON jobs(state);
-- v1 did not enforce this; keep the newest active iteration of each listener.
UPDATE iterations SET active = 0 WHERE active = 1 AND id NOT IN
  (SELECT MAX(id) FROM iterations WHERE active = 1 GROUP BY listener_id);
CREATE UNIQUE INDEX iterations_one_active ON iterations(listener_id) WHERE active = 1;
CREATE INDEX tracks_by_listener ON tracks(listener_id, iteration_id);
CREATE INDEX plays_by_listener ON plays(listener_id, started_at);
CREATE INDEX plays_by_track ON plays(track_id);
CREATE INDEX plays_by_song ON plays(song_id);
CREATE INDEX ratings_by_track ON ratings(track_id, id);
CREATE INDEX ratings_by_listener ON ratings(listener_id, rated_at);
CREATE INDEX iterations_by_parent ON iterations(parent_id);
CREATE INDEX tracks_by_iteration ON tracks(iteration_id);
)sql"},
      {"v3: human studies (blinded playlists and their judgements)", R"sql(
-- Kept apart from ratings: a study's judgements evaluate the loop, they are not feedback.
CREATE TABLE studies (
  id INTEGER PRIMARY KEY,
  listener_id INTEGER NOT NULL REFERENCES listeners(id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (name <> ''),
  participant TEXT NOT NULL CHECK (participant <> ''),
  params_json TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN ('running', 'finished')),
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE TABLE study_items (
  id INTEGER PRIMARY KEY,
  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  code TEXT NOT NULL CHECK (code <> ''),
  track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
  iteration_number INTEGER NOT NULL CHECK (iteration_number >= 0),
  blinded_path TEXT NOT NULL DEFAULT '',
  answered_at INTEGER,
  stars REAL CHECK (stars IS NULL OR
    (stars BETWEEN 1 AND 5 AND stars * 2 = CAST(stars * 2 AS INTEGER))),
  seconds_heard REAL CHECK (seconds_heard IS NULL OR seconds_heard >= 0),
  UNIQUE (study_id, position),
  UNIQUE (study_id, code)
);
CREATE INDEX studies_by_listener ON studies(listener_id);
)sql"},
  };
  return steps;
}

}  // namespace tuneloop::store::schema

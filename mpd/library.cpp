#include "mpd/library.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <set>

namespace tuneloop::mpd {

using nlohmann::json;

namespace {

std::optional<std::int64_t> opt_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

}  // namespace

const Song* Library::find(std::int64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &songs[it->second];
}

const Song* Library::find_uri(std::string_view uri) const {
  const auto id = track_id_from_uri(uri);
  if (!id) return nullptr;
  const Song* s = find(*id);
  return s && s->uri == uri ? s : nullptr;
}

bool Library::has_folder(std::string_view name) const {
  return std::any_of(folders.begin(), folders.end(), [&](const Folder& f) { return f.name == name; });
}

Library Library::load(const DaemonView& daemon) {
  const json tracks = daemon.call("tracks.list");
  const json iterations = daemon.call("iterations.list");

  std::map<std::int64_t, int> number_of;            // iteration id -> number (deleted ones are absent)
  std::map<int, std::int64_t> iteration_modified;  // number -> created, Unix seconds
  for (const auto& i : iterations) {
    const auto id = opt_id(i, "id");
    if (!id) continue;
    const int number = i.value("number", 0);
    number_of[*id] = number;
    iteration_modified[number] = i.value("created_at", std::int64_t{0}) / 1000;
  }
  Library lib;
  for (const auto& [number, modified] : iteration_modified)
    lib.folders.push_back({directory_of(number), modified});

  std::vector<TrackFacts> facts;
  for (const auto& t : tracks) {
    TrackFacts f;
    f.id = t.value("id", std::int64_t{0});
    if (f.id <= 0) continue;
    if (const auto it = opt_id(t, "iteration_id")) {
      if (auto n = number_of.find(*it); n != number_of.end()) f.iteration_number = n->second;
    }
    f.tags = t.value("tags", std::string());
    f.duration = t.value("duration", 0.0);
    f.created_at_ms = t.value("created_at", std::int64_t{0});
    facts.push_back(std::move(f));
  }
  // Iterations by number, then the tracks of no (or a deleted) iteration; by id within.
  std::sort(facts.begin(), facts.end(), [](const TrackFacts& a, const TrackFacts& b) {
    const int fa = a.iteration_number.value_or(INT_MAX), fb = b.iteration_number.value_or(INT_MAX);
    return fa != fb ? fa < fb : a.id < b.id;
  });
  std::int64_t other_modified = 0;
  std::string folder;
  int number = 0;
  for (auto& f : facts) {
    const std::string d = directory_of(f.iteration_number);
    number = d == folder ? number + 1 : 1;
    folder = d;
    f.track_number = number;
    if (!f.iteration_number) other_modified = std::max(other_modified, f.created_at_ms / 1000);
    lib.by_id_[f.id] = lib.songs.size();
    lib.songs.push_back(make_song(f));
  }
  // "other" comes last, and is there even when empty if nothing else is: a client takes
  // a root `lsinfo` that answers a bare OK for a server without a database.
  const bool has_other = std::any_of(facts.begin(), facts.end(),
                                     [](const TrackFacts& f) { return !f.iteration_number; });
  if (has_other || lib.folders.empty()) lib.folders.push_back({"other", other_modified});
  return lib;
}

QueueView QueueView::load(const DaemonView& daemon) {
  const json q = daemon.call("queue.list");
  QueueView v;
  std::set<std::int64_t> seen;
  if (const auto current = opt_id(q, "current")) {
    v.ids.push_back(*current);
    v.has_current = true;
    seen.insert(*current);
  }
  if (auto it = q.find("upcoming"); it != q.end() && it->is_array())
    for (const auto& id : *it)
      if (id.is_number_integer() && seen.insert(id.get<std::int64_t>()).second)
        v.ids.push_back(id.get<std::int64_t>());
  return v;
}

PlayerStatus PlayerStatus::load(const DaemonView& daemon) {
  const json s = daemon.call("status");
  PlayerStatus p;
  const std::string state = s.value("state", std::string("idle"));
  p.state = state == "playing" ? "play" : state == "paused" ? "pause" : "stop";
  if (auto t = s.find("track"); t != s.end() && t->is_object()) p.playing_track = opt_id(*t, "id");
  if (auto play = s.find("play"); play != s.end() && play->is_object()) {
    p.elapsed = play->value("position", 0.0);
    p.duration = play->value("duration", 0.0);
  }
  p.volume = static_cast<int>(std::lround(s.value("volume", 1.0) * 100));
  if (auto a = s.find("audio"); a != s.end() && a->is_object()) {
    p.audio_available = a->value("available", false);
    p.audio_message = a->value("message", std::string());
  }
  p.uptime_s = s.value("uptime_s", 0.0);
  if (p.state == "stop") p.playing_track.reset();
  return p;
}

const Library& LibraryCache::get(const DaemonView& daemon) {
  if (!library_ || stale_) return fresh(daemon);
  return *library_;
}

const Library& LibraryCache::fresh(const DaemonView& daemon) {
  library_ = Library::load(daemon);
  stale_ = false;
  return *library_;
}

std::vector<const Song*> LibraryCache::songs_for(const DaemonView& daemon,
                                                 const std::vector<std::int64_t>& ids) {
  const Library* lib = &get(daemon);
  if (std::any_of(ids.begin(), ids.end(), [&](std::int64_t id) { return !lib->find(id); }))
    lib = &fresh(daemon);
  std::vector<const Song*> out;
  out.reserve(ids.size());
  for (auto id : ids)
    if (const Song* s = lib->find(id)) out.push_back(s);
  return out;
}

}  // namespace tuneloop::mpd

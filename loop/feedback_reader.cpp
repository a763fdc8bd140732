#include "loop/feedback_reader.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_map>

namespace tuneloop::loop {

namespace {

// The words the loop drew for a track (its params' "tags_drawn", without the tags the
// config fixed); nullopt for any other track, or params where that is not a list of words.
std::optional<std::vector<std::string>> drawn_tags(const store::Track& track) {
  const auto params = nlohmann::json::parse(track.params_json, nullptr, /*allow_exceptions=*/false);
  if (!params.is_object()) return std::nullopt;
  const auto drawn = params.find("tags_drawn");
  if (drawn == params.end() || !drawn->is_array()) return std::nullopt;
  std::vector<std::string> words;
  for (const auto& w : *drawn) {
    if (!w.is_string()) return std::nullopt;
    words.push_back(w.get<std::string>());
  }
  return words;
}

void require_listener(store::Store& store, store::Id listener_id) {
  if (!store.get_listener(listener_id))
    throw store::NotFoundError(store.path() + ": no listener with id " +
                               std::to_string(listener_id));
}

}  // namespace

DatasetInputs read_dataset_inputs(store::Store& store, store::Id listener_id) {
  require_listener(store, listener_id);
  DatasetInputs inputs;
  inputs.listener_id = listener_id;
  for (const auto& song : store.songs(listener_id))
    inputs.songs.push_back({song.id, song.path, song.original_name});

  std::unordered_map<store::Id, std::size_t> index;
  auto tracks = store.tracks(listener_id);
  // The store lists newest first; oldest first reads more naturally in a manifest.
  std::reverse(tracks.begin(), tracks.end());
  for (const auto& track : tracks) {
    index[track.id] = inputs.tracks.size();
    TrackInput input;
    input.track_id = track.id;
    input.path = track.path;
    input.drawn_tags = drawn_tags(track);
    inputs.tracks.push_back(std::move(input));
  }
  for (const auto& rating : store.ratings(listener_id)) {
    auto it = index.find(rating.track_id);
    if (it == index.end() || !rating.stars) continue;
    inputs.tracks[it->second].stars = rating.stars;
    inputs.tracks[it->second].rated_at = rating.rated_at;
  }
  for (const auto& play : store.plays_for_listener(listener_id)) {
    if (!play.track_id || !play.ended_at || !play.end_reason) continue;
    auto it = index.find(*play.track_id);
    if (it == index.end()) continue;
    inputs.tracks[it->second].plays.push_back(
        {play.seconds_heard, play.duration_s.value_or(0.0), *play.end_reason, *play.ended_at});
  }
  for (auto& track : inputs.tracks)
    std::sort(track.plays.begin(), track.plays.end(),
              [](const PlayInput& a, const PlayInput& b) { return a.ended_at < b.ended_at; });
  return inputs;
}

std::optional<store::Iteration> latest_iteration(store::Store& store, store::Id listener_id) {
  std::optional<store::Iteration> latest;
  for (auto& iteration : store.iterations(listener_id))
    if (iteration.status != store::IterationStatus::deleted) latest = std::move(iteration);
  return latest;
}

ScheduleState read_schedule_state(store::Store& store, store::Id listener_id, UnixMs now,
                                  bool job_running) {
  const DatasetInputs inputs = read_dataset_inputs(store, listener_id);
  ScheduleState state;
  state.now = now;
  state.job_running = job_running;
  state.utc_offset_minutes = local_utc_offset_minutes(now);
  state.feedback_count =
      static_cast<int>(std::count_if(inputs.tracks.begin(), inputs.tracks.end(),
                                     [](const TrackInput& track) { return has_feedback(track); }));

  const auto latest = latest_iteration(store, listener_id);
  const UnixMs since = latest ? latest->created_at : 0;
  if (latest) state.last_iteration_at = latest->created_at;
  state.new_ratings = store.count_ratings_since(listener_id, since);
  int new_plays = 0;
  for (const auto& track : inputs.tracks)
    for (const auto& play : track.plays)
      if (play.ended_at >= since && play.end_reason != store::EndReason::interrupted) ++new_plays;
  state.new_feedback = state.new_ratings + new_plays;
  return state;
}

}  // namespace tuneloop::loop

#include "player/play_queue.hpp"

#include <algorithm>

namespace tuneloop::player {

void PlayQueue::set_upcoming(std::vector<TrackId> tracks) {
  upcoming_.assign(tracks.begin(), tracks.end());
}

void PlayQueue::enqueue(TrackId track) {
  upcoming_.push_back(track);
}

void PlayQueue::enqueue_front(TrackId track) {
  upcoming_.push_front(track);
}

void PlayQueue::clear_upcoming() noexcept {
  upcoming_.clear();
}

void PlayQueue::push_history(TrackId track) {
  history_.push_back(track);
  if (history_.size() > kMaxHistory) history_.pop_front();
}

std::optional<PlayQueue::TrackId> PlayQueue::next() {
  // Entries equal to the current track are passed over but kept, so they play later
  // once something else has played in between.
  auto it = std::find_if(upcoming_.begin(), upcoming_.end(),
                         [&](TrackId t) { return !current_ || t != *current_; });
  if (it == upcoming_.end()) return std::nullopt;
  TrackId chosen = *it;
  upcoming_.erase(it);
  if (current_) push_history(*current_);
  current_ = chosen;
  return current_;
}

std::optional<PlayQueue::TrackId> PlayQueue::previous() {
  if (history_.empty()) return std::nullopt;
  if (current_) upcoming_.push_front(*current_);
  current_ = history_.back();
  history_.pop_back();
  return current_;
}

void PlayQueue::play_now(TrackId track) {
  if (current_) push_history(*current_);
  current_ = track;
}

}  // namespace tuneloop::player

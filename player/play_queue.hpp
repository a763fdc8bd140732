#pragma once

// The queue of tracks to play: a pure data structure (no audio, no store). The loop fills
// it with the current iteration's tracks first; next() never returns the track that was
// just played while another choice exists.

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace tuneloop::player {

class PlayQueue {
 public:
  using TrackId = int64_t;

  // Replaces the upcoming tracks (in order; the first is the current iteration's).
  void set_upcoming(std::vector<TrackId> tracks);
  // Appends to the upcoming tracks.
  void enqueue(TrackId track);
  void enqueue_front(TrackId track);
  void clear_upcoming() noexcept;

  // Advances: the first upcoming track that differs from the current one (no immediate
  // repeats; passed-over copies stay queued). The current track moves to the history.
  // Returns nullopt (and keeps the current track) when no different track is queued.
  std::optional<TrackId> next();
  // Goes back: the most recent history entry becomes current, the current one goes back
  // to the front of the upcoming tracks. nullopt when there is no history.
  std::optional<TrackId> previous();
  // Makes `track` current now (a direct "play this"), the old current goes to history.
  void play_now(TrackId track);

  std::optional<TrackId> current() const noexcept { return current_; }
  const std::deque<TrackId>& upcoming() const noexcept { return upcoming_; }
  const std::deque<TrackId>& history() const noexcept { return history_; }
  bool empty() const noexcept { return upcoming_.empty(); }

  static constexpr std::size_t kMaxHistory = 200;

 private:
  void push_history(TrackId track);

  std::optional<TrackId> current_;
  std::deque<TrackId> upcoming_;
  std::deque<TrackId> history_;
};

}  // namespace tuneloop::player

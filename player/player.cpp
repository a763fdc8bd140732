// Stub while the real implementation is written: a silent player that validates files.
#include "player/player.hpp"

#include <sndfile.h>

#include <mutex>

namespace tuneloop::player {

const char* to_string(EndReason reason) noexcept {
  switch (reason) {
    case EndReason::completed: return "completed";
    case EndReason::skipped: return "skipped";
    case EndReason::stopped: return "stopped";
    case EndReason::interrupted: return "interrupted";
  }
  return "unknown";
}

const char* to_string(State state) noexcept {
  switch (state) {
    case State::idle: return "idle";
    case State::playing: return "playing";
    case State::paused: return "paused";
  }
  return "unknown";
}

EndReason classify_end(double seconds_heard, double duration, bool reached_end,
                       double skip_fraction, bool user_stopped) noexcept {
  if (reached_end) return EndReason::completed;
  if (!user_stopped) return EndReason::interrupted;
  if (duration <= 0) return EndReason::skipped;
  return seconds_heard / duration < skip_fraction ? EndReason::skipped : EndReason::stopped;
}

struct Player::Impl {
  PlayerOptions options;
  PlayerEvents events;
  double volume = 1.0;
};

Player::Player(PlayerOptions options, PlayerEvents events)
    : impl_(std::make_unique<Impl>(Impl{std::move(options), std::move(events)})) {}
Player::~Player() = default;
bool Player::available() const noexcept { return false; }
std::string Player::device_description() const { return "none"; }
std::string Player::status_message() const { return "player not implemented yet"; }
int Player::device_rate() const noexcept { return impl_->options.sample_rate; }
void Player::play(const std::string& path, int64_t token) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw DecodeError("cannot decode " + path + ": " + sf_strerror(nullptr));
  sf_close(f);
  if (impl_->events.on_ended) impl_->events.on_ended(PlayEnded{token, 0, 0, EndReason::stopped});
}
void Player::pause() {}
void Player::resume() {}
void Player::stop(EndReason) {}
void Player::seek(double) {}
void Player::set_volume(double v) { impl_->volume = v; }
double Player::volume() const noexcept { return impl_->volume; }
State Player::state() const { return State::idle; }
std::optional<PlayProgress> Player::progress() const { return std::nullopt; }
int64_t Player::underruns() const noexcept { return 0; }

}  // namespace tuneloop::player

#pragma once

// The playback side of tuneloop: decodes a track with libsndfile, resamples it to the
// device rate with libsoxr, and plays it through PortAudio while counting the frames
// that actually reached the output (pauses, seeks-over and underruns excluded).
//
// Threads: a decoder thread fills a lock-free ring; the PortAudio callback drains it and
// only touches atomics; a progress thread (~every 100 ms) reads those atomics and fires
// PlayerEvents. Events are never called from the audio callback; the daemon posts them
// to its io_context.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace tuneloop::player {

// Why a play ended; `skipped` is a user stop before `skip_fraction` of the track.
enum class EndReason { completed, skipped, stopped, interrupted };
enum class State { idle, playing, paused };

const char* to_string(EndReason reason) noexcept;
const char* to_string(State state) noexcept;

// A file libsndfile cannot open or decode; the message names the path and the reason.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The audio device could not be opened although output=portaudio demanded it.
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PlayerOptions {
  std::string output = "auto";  // auto | portaudio | none
  int sample_rate = 16000;      // preferred; the device's default rate wins if it differs
  std::string device;           // PortAudio device name (substring); empty = default output
  int buffer_frames = 256;      // frames per PortAudio callback
  double ring_seconds = 2.0;    // decoded audio buffered ahead of the output
  double skip_fraction = 0.5;   // a stop before this fraction of the track is a skip
  double progress_interval_seconds = 0.1;
};

struct PlayProgress {
  int64_t token = 0;
  double seconds_heard = 0;  // audio that reached the output for this play
  double position = 0;       // where in the track playback is, seconds
  double duration = 0;       // track length, seconds
};

struct PlayEnded {
  int64_t token = 0;
  double seconds_heard = 0;
  double duration = 0;
  EndReason reason = EndReason::completed;
  // Times the device reported an xrun during the play. A JACK server drops audio and (the
  // dummy driver) falls behind the wall clock on each, so a play with xruns takes longer
  // than what was heard.
  int64_t device_xruns = 0;
};

// Called from the player's progress thread (never the audio callback), one at a time and
// with no player lock held, so a handler may call Player methods (not the destructor).
struct PlayerEvents {
  std::function<void(const PlayProgress&)> on_progress;
  std::function<void(const PlayEnded&)> on_ended;
  std::function<void(State)> on_state;
};

class Player {
 public:
  // Opens the output device. With output=auto and no usable device, available() is
  // false, status_message() says why, and the player keeps working as a silent no-op.
  // Throws DeviceError if output=portaudio and no device can be opened.
  // Throws std::invalid_argument for an unknown output mode.
  Player(PlayerOptions options, PlayerEvents events);
  ~Player();  // stops; a current play ends as interrupted
  Player(const Player&) = delete;
  Player& operator=(const Player&) = delete;

  bool available() const noexcept;
  std::string device_description() const;
  // Why the device is not available or failed (empty when all is well); log it once.
  std::string status_message() const;
  int device_rate() const noexcept;

  // Starts playing `path`, ending the current play (reason stopped or skipped).
  // Throws DecodeError (path + libsndfile's message) if unreadable; that is checked
  // before the current play is touched, so the state is unchanged then.
  // With no device (available() false) it only validates the file: no events, state
  // stays idle, so the daemon can still serve listens reported by external players.
  void play(const std::string& path, int64_t token);
  void pause();
  void resume();
  // Ends the current play. `stopped` (a user stop) passes through the skip rule and may
  // become `skipped`; any other reason is reported as given. No-op when idle.
  void stop(EndReason reason = EndReason::stopped);
  // Moves within the current play (clamped to the track); what is jumped over is not
  // heard. Throws DecodeError if the file cannot seek; the play then ends (stopped).
  void seek(double seconds);
  void set_volume(double volume);  // 0..1 (clamped)
  double volume() const noexcept;

  State state() const;
  std::optional<PlayProgress> progress() const;
  // Underruns (callbacks that had to fill silence while playing) since construction.
  int64_t underruns() const noexcept;
  // Xruns the device reported (PortAudio's output-underflow flag) since construction.
  int64_t device_xruns() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The skip rule, pure: the end reason of a play. A play that reached the end is
// completed; a user stop before `skip_fraction` of the duration is skipped, after it
// stopped; a stop that was not the user's (shutdown, crash recovery) is interrupted.
EndReason classify_end(double seconds_heard, double duration, bool reached_end,
                       double skip_fraction, bool user_stopped) noexcept;

}  // namespace tuneloop::player

#include "player/player.hpp"

#include <alsa/asoundlib.h>
#include <portaudio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#ifdef TUNELOOP_HAVE_JACK
#include <jack/jack.h>
#endif

#include "player/spsc_ring.hpp"
#include "player/track_decoder.hpp"

namespace tuneloop::player {

const char* to_string(EndReason reason) noexcept {
  switch (reason) {
    case EndReason::completed:
      return "completed";
    case EndReason::skipped:
      return "skipped";
    case EndReason::stopped:
      return "stopped";
    case EndReason::interrupted:
      return "interrupted";
  }
  return "unknown";
}

const char* to_string(State state) noexcept {
  switch (state) {
    case State::idle:
      return "idle";
    case State::playing:
      return "playing";
    case State::paused:
      return "paused";
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

namespace {

// ALSA probes every configured PCM when PortAudio starts and prints its failures; on a
// machine without a sound card that is a screenful of noise for an expected condition.
void silent_alsa_error(const char*, int, const char*, int, const char*, ...) {}
#ifdef TUNELOOP_HAVE_JACK
// Likewise libjack reports "cannot connect to server" when no JACK server runs; the
// player reports that itself, once, through status_message().
void silent_jack_message(const char*) {}
#endif

constexpr std::size_t kScratchFrames = 4096;
constexpr std::size_t kDecodeChunk = 1024;

}  // namespace

struct Player::Impl {
  PlayerOptions options;
  PlayerEvents events;

  // Device.
  bool pa_initialized = false;
  PaStream* stream = nullptr;
  bool stream_running = false;
  // A play that ran to its end leaves the stream running (silent) until its end has been
  // reported: stopping a stream waits on the device for a cycle or more (50 ms on a JACK
  // server with 256-frame periods, 110-140 ms with 1024), which is not listening time.
  bool stream_stop_pending = false;
  bool is_available = false;
  std::string description = "none";
  std::string status;
  int rate = 16000;
  int out_channels = 1;

  // Shared with the audio callback: only atomics and the ring.
  std::unique_ptr<SpscRing> ring;
  std::vector<float> scratch;  // callback-owned, preallocated
  std::atomic<bool> paused{false};
  std::atomic<bool> decoder_done{false};
  std::atomic<float> gain{1.0f};
  std::atomic<uint64_t> heard_frames{0};     // per play, reset while the stream is stopped
  std::atomic<uint64_t> position_frames{0};  // track position at the output rate
  std::atomic<int64_t> underrun_count{0};
  std::atomic<int64_t> device_xrun_count{0};

  // The current play; guarded by `mutex`.
  mutable std::mutex mutex;
  State state = State::idle;
  std::unique_ptr<TrackDecoder> decoder;
  int64_t token = 0;
  double duration = 0;
  int64_t xruns_at_start = 0;
  std::thread decoder_thread;
  std::atomic<bool> decoder_stop{false};

  // Events go out from the progress thread so handlers never run under our lock or on
  // the caller's stack.
  using Event = std::variant<PlayProgress, PlayEnded, State>;
  std::mutex events_mutex;
  std::condition_variable events_cv;
  std::deque<Event> pending_events;
  bool shutting_down = false;
  std::thread progress_thread;

  static int callback(const void*, void* output, unsigned long frames,
                      const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags flags, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (flags & paOutputUnderflow) self->device_xrun_count.fetch_add(1, std::memory_order_relaxed);
    self->render(static_cast<float*>(output), frames);
    return paContinue;
  }

  void render(float* out, unsigned long frames) noexcept {
    const std::size_t channels = static_cast<std::size_t>(out_channels);
    if (paused.load(std::memory_order_relaxed)) {
      std::fill(out, out + frames * channels, 0.0f);
      return;
    }
    const float g = gain.load(std::memory_order_relaxed);
    std::size_t done = 0;
    while (done < frames) {
      const std::size_t want = std::min<std::size_t>(frames - done, scratch.size());
      const std::size_t got = ring->read(scratch.data(), want);
      for (std::size_t i = 0; i < got; ++i) {
        for (std::size_t c = 0; c < channels; ++c) out[(done + i) * channels + c] = scratch[i] * g;
      }
      done += got;
      if (got < want) break;
    }
    heard_frames.store(heard_frames.load(std::memory_order_relaxed) + done,
                       std::memory_order_relaxed);
    position_frames.store(position_frames.load(std::memory_order_relaxed) + done,
                          std::memory_order_relaxed);
    if (done < frames) {
      std::fill(out + done * channels, out + frames * channels, 0.0f);
      if (!decoder_done.load(std::memory_order_acquire)) {
        underrun_count.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  void open_device() {
    snd_lib_error_set_handler(&silent_alsa_error);
#ifdef TUNELOOP_HAVE_JACK
    jack_set_error_function(&silent_jack_message);
    jack_set_info_function(&silent_jack_message);
#endif
    // Never let PortAudio's JACK client start a server of its own.
    setenv("JACK_NO_START_SERVER", "1", 0);
    PaError err = Pa_Initialize();
    if (err != paNoError) {
      status = std::string("PortAudio failed to initialise: ") + Pa_GetErrorText(err);
      return;
    }
    pa_initialized = true;
    PaDeviceIndex device = paNoDevice;
    if (!options.device.empty()) {
      for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); ++i) {
        const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
        if (info && info->maxOutputChannels > 0 &&
            std::string(info->name).find(options.device) != std::string::npos) {
          device = i;
          break;
        }
      }
      if (device == paNoDevice) {
        status = "no output device named like \"" + options.device + "\"";
        return;
      }
    } else {
      device = Pa_GetDefaultOutputDevice();
      if (device == paNoDevice) {
        // The default host API may be ALSA with no card while a JACK server is running.
        for (PaHostApiIndex h = 0; h < Pa_GetHostApiCount(); ++h) {
          const PaHostApiInfo* api = Pa_GetHostApiInfo(h);
          if (api && api->defaultOutputDevice != paNoDevice) {
            device = api->defaultOutputDevice;
            break;
          }
        }
      }
      if (device == paNoDevice) {
        status = "no audio output device (no sound card and no JACK server)";
        return;
      }
    }
    const PaDeviceInfo* info = Pa_GetDeviceInfo(device);
    const PaHostApiInfo* api = Pa_GetHostApiInfo(info->hostApi);
    out_channels = std::min(info->maxOutputChannels, 2);
    // The device's own rate wins: JACK, for one, only accepts its server rate.
    rate = options.sample_rate;
    if (info->defaultSampleRate > 0 && std::lround(info->defaultSampleRate) != rate) {
      rate = static_cast<int>(std::lround(info->defaultSampleRate));
    }
    PaStreamParameters params{};
    params.device = device;
    params.channelCount = out_channels;
    params.sampleFormat = paFloat32;
    params.suggestedLatency = info->defaultLowOutputLatency;
    ring = std::make_unique<SpscRing>(
        static_cast<std::size_t>(std::max(0.1, options.ring_seconds) * rate));
    scratch.assign(kScratchFrames, 0.0f);
    err = Pa_OpenStream(&stream, nullptr, &params, rate,
                        static_cast<unsigned long>(std::max(0, options.buffer_frames)), paNoFlag,
                        &Impl::callback, this);
    if (err != paNoError) {
      stream = nullptr;
      status = std::string("cannot open ") + info->name + ": " + Pa_GetErrorText(err);
      return;
    }
    is_available = true;
    description = std::string(api ? api->name : "?") + ": " + info->name + " @ " +
                  std::to_string(rate) + " Hz, " + std::to_string(out_channels) + " ch";
  }

  void post(Event event) {
    {
      std::lock_guard lock(events_mutex);
      pending_events.push_back(std::move(event));
    }
    events_cv.notify_one();
  }

  void set_state_locked(State s) {
    if (state == s) return;
    state = s;
    post(s);
  }

  // Decoder thread: keeps the ring topped up until the track ends or it is told to stop.
  void decode_loop(TrackDecoder* dec) {
    std::vector<float> chunk(kDecodeChunk);
    std::size_t have = 0;
    std::size_t offset = 0;
    try {
      while (!decoder_stop.load(std::memory_order_relaxed)) {
        if (offset == have) {
          have = dec->read(chunk.data(), chunk.size());
          offset = 0;
          if (have == 0) break;
        }
        offset += ring->write(chunk.data() + offset, have - offset);
        if (offset < have) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    } catch (const DecodeError&) {
      // A file that breaks mid-way ends where it broke; what was heard still counts.
    }
    decoder_done.store(true, std::memory_order_release);
  }

  void stop_stream_locked() {
    if (stream && stream_running) Pa_AbortStream(stream);
    stream_running = false;
    stream_stop_pending = false;
  }

  void stop_decoder_locked() {
    decoder_stop.store(true);
    if (decoder_thread.joinable()) decoder_thread.join();
    decoder_stop.store(false);
  }

  // Starts decoding from the decoder's current position and the stream once a little
  // audio is buffered, so the first callback does not underrun. The caller has stopped the
  // stream (the ring is reset under it) and the decoder thread.
  void start_locked() {
    ring->reset();
    decoder_done.store(false);
    decoder_thread = std::thread(&Impl::decode_loop, this, decoder.get());
    const std::size_t prefill = std::min(ring->capacity() / 2, static_cast<std::size_t>(rate / 4));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (ring->available() < prefill && !decoder_done.load() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    PaError err = Pa_StartStream(stream);
    stream_running = err == paNoError;
    if (!stream_running) status = std::string("cannot start the stream: ") + Pa_GetErrorText(err);
  }

  double heard_seconds() const {
    return static_cast<double>(heard_frames.load()) / rate;
  }

  PlayProgress progress_locked() const {
    return PlayProgress{token, heard_seconds(),
                        std::min(duration, static_cast<double>(position_frames.load()) / rate),
                        duration};
  }

  void end_play_locked(bool reached_end, bool user_stopped, EndReason given) {
    if (state == State::idle) return;
    // At the track's end the ring is empty and the decoder done, so nothing more is heard
    // and the stream can stop after the end is reported (see stream_stop_pending).
    if (reached_end) {
      stream_stop_pending = stream_running;
    } else {
      stop_stream_locked();
    }
    stop_decoder_locked();
    const double heard = heard_seconds();
    EndReason reason = given;
    if (reached_end || given == EndReason::stopped || given == EndReason::skipped) {
      reason = classify_end(heard, duration, reached_end, options.skip_fraction, user_stopped);
    }
    post(PlayEnded{token, heard, duration, reason, device_xrun_count.load() - xruns_at_start});
    decoder.reset();
    paused.store(false);
    set_state_locked(State::idle);
  }

  void progress_loop() {
    const auto interval =
        std::chrono::duration<double>(std::clamp(options.progress_interval_seconds, 0.01, 1.0));
    using SteadyClock = std::chrono::steady_clock;
    auto next_tick = SteadyClock::now();
    for (;;) {
      // Once the whole track is decoded, the play ends when the device has taken what is left
      // in the ring: wake then rather than at the next tick (up to `interval` later), so the
      // end is reported, and the next track starts, within a few milliseconds of it.
      auto wake = next_tick;
      {
        std::lock_guard lock(mutex);
        if (state == State::playing && decoder_done.load(std::memory_order_acquire)) {
          const double left = static_cast<double>(ring->available()) / rate;
          const auto end_due =
              SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                       std::chrono::duration<double>(std::max(left, 0.0) + 0.005));
          wake = std::min(wake, end_due);
        }
      }
      std::deque<Event> batch;
      {
        std::unique_lock lock(events_mutex);
        events_cv.wait_until(lock, wake, [&] { return !pending_events.empty() || shutting_down; });
        batch.swap(pending_events);
        if (batch.empty() && shutting_down) return;
      }
      for (const Event& e : batch) deliver(e);
      {
        std::lock_guard lock(mutex);
        if (stream_stop_pending && state == State::idle) stop_stream_locked();
      }
      const auto now = SteadyClock::now();
      if (now < wake) continue;
      const bool tick_due = now >= next_tick;
      if (tick_due) next_tick += std::chrono::duration_cast<SteadyClock::duration>(interval);
      std::optional<PlayProgress> tick;
      {
        std::lock_guard lock(mutex);
        if (state != State::idle && stream_running && Pa_IsStreamActive(stream) != 1) {
          // The device went away (e.g. the JACK server quit): the play cannot go on.
          status = "the audio stream stopped unexpectedly";
          stream_running = false;
          end_play_locked(false, false, EndReason::interrupted);
        } else if (state == State::playing) {
          if (decoder_done.load(std::memory_order_acquire) && ring->available() == 0) {
            end_play_locked(true, false, EndReason::completed);
          } else if (tick_due) {
            tick = progress_locked();
          }
        }
      }
      if (tick) deliver(*tick);
    }
  }

  void deliver(const Event& e) {
    // A throwing handler must not take the player thread down with it.
    try {
      if (auto* p = std::get_if<PlayProgress>(&e)) {
        if (events.on_progress) events.on_progress(*p);
      } else if (auto* ended = std::get_if<PlayEnded>(&e)) {
        if (events.on_ended) events.on_ended(*ended);
      } else if (auto* s = std::get_if<State>(&e)) {
        if (events.on_state) events.on_state(*s);
      }
    } catch (...) {
    }
  }
};

Player::Player(PlayerOptions options, PlayerEvents events) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.options = std::move(options);
  s.events = std::move(events);
  s.rate = s.options.sample_rate;
  const std::string& mode = s.options.output;
  if (mode != "auto" && mode != "portaudio" && mode != "none") {
    throw std::invalid_argument("audio.output must be auto, portaudio or none, not \"" + mode +
                                "\"");
  }
  if (mode == "none") {
    s.status = "audio output disabled (audio.output: none)";
  } else {
    s.open_device();
    if (!s.is_available && mode == "portaudio") {
      std::string why = s.status;
      if (s.pa_initialized) Pa_Terminate();
      throw DeviceError("audio.output is portaudio but " + why);
    }
  }
  s.progress_thread = std::thread(&Impl::progress_loop, &s);
}

Player::~Player() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    s.end_play_locked(false, false, EndReason::interrupted);
  }
  {
    std::lock_guard lock(s.events_mutex);
    s.shutting_down = true;
  }
  s.events_cv.notify_one();
  if (s.progress_thread.joinable()) s.progress_thread.join();
  s.stop_stream_locked();  // a finished play's stream may still be running
  if (s.stream) Pa_CloseStream(s.stream);
  if (s.pa_initialized) Pa_Terminate();
}

bool Player::available() const noexcept {
  return impl_->is_available;
}
std::string Player::device_description() const {
  return impl_->description;
}
std::string Player::status_message() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->status;
}
int Player::device_rate() const noexcept {
  return impl_->rate;
}

void Player::play(const std::string& path, int64_t token) {
  Impl& s = *impl_;
  // Opened before anything else so a bad file leaves the current play untouched.
  auto decoder = std::make_unique<TrackDecoder>(path, s.rate);
  if (!s.is_available) return;
  std::lock_guard lock(s.mutex);
  s.end_play_locked(false, true, EndReason::stopped);
  s.stop_stream_locked();  // a finished play's, before the counters it updates are reset
  s.decoder = std::move(decoder);
  s.token = token;
  s.duration = s.decoder->duration();
  s.heard_frames.store(0);
  s.position_frames.store(0);
  s.xruns_at_start = s.device_xrun_count.load();
  s.paused.store(false);
  s.start_locked();
  s.set_state_locked(State::playing);
}

void Player::pause() {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  if (s.state != State::playing) return;
  s.paused.store(true);
  s.set_state_locked(State::paused);
}

void Player::resume() {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  if (s.state != State::paused) return;
  s.paused.store(false);
  s.set_state_locked(State::playing);
}

void Player::stop(EndReason reason) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  s.end_play_locked(false, reason != EndReason::interrupted, reason);
}

void Player::seek(double seconds) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  if (s.state == State::idle) return;
  const double target = std::clamp(seconds, 0.0, s.duration);
  s.stop_stream_locked();
  s.stop_decoder_locked();
  try {
    s.decoder->seek(target);
  } catch (const DecodeError&) {
    s.end_play_locked(false, true, EndReason::stopped);
    throw;
  }
  s.position_frames.store(static_cast<uint64_t>(target * s.rate));
  s.start_locked();
}

void Player::set_volume(double volume) {
  impl_->gain.store(static_cast<float>(std::clamp(volume, 0.0, 1.0)));
}

double Player::volume() const noexcept {
  return impl_->gain.load();
}

State Player::state() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->state;
}

std::optional<PlayProgress> Player::progress() const {
  std::lock_guard lock(impl_->mutex);
  if (impl_->state == State::idle) return std::nullopt;
  return impl_->progress_locked();
}

int64_t Player::underruns() const noexcept {
  return impl_->underrun_count.load();
}

int64_t Player::device_xruns() const noexcept {
  return impl_->device_xrun_count.load();
}

}  // namespace tuneloop::player

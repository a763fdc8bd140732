// Real-time playback through PortAudio on a JACK server (the dummy backend on headless
// machines, started by scripts/test.sh), so listening time is measured as in production.

#include "player/player.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "audio_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop::player;
using namespace tuneloop::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Collects what the player reports, from its thread.
struct Recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<PlayEnded> ended;
  std::vector<PlayProgress> progress;
  std::vector<State> states;

  PlayerEvents events() {
    PlayerEvents e;
    e.on_ended = [this](const PlayEnded& p) {
      std::lock_guard lock(mutex);
      ended.push_back(p);
      cv.notify_all();
    };
    e.on_progress = [this](const PlayProgress& p) {
      std::lock_guard lock(mutex);
      progress.push_back(p);
    };
    e.on_state = [this](State s) {
      std::lock_guard lock(mutex);
      states.push_back(s);
      cv.notify_all();
    };
    return e;
  }

  // The `count`th end event, or nothing after `timeout`.
  std::optional<PlayEnded> wait_ended(std::size_t count = 1, std::chrono::seconds timeout = 10s) {
    std::unique_lock lock(mutex);
    if (!cv.wait_for(lock, timeout, [&] { return ended.size() >= count; })) return std::nullopt;
    return ended[count - 1];
  }

  // Whether `count` state changes arrived within `timeout`.
  bool wait_states(std::size_t count, std::chrono::seconds timeout = 5s) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return states.size() >= count; });
  }
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Why a wall-clock comparison can fail without the player being wrong: the JACK dummy
// driver falls behind the wall clock by however late a cycle ran, at each xrun.
std::string xrun_note(int64_t xruns) {
  return "the device reported " + std::to_string(xruns) +
         " xrun(s) during the play (each one the JACK dummy server falls behind the wall clock)";
}

class RealtimePlayer : public ::testing::Test {
 protected:
  void SetUp() override {
    // jack_wait -c exits 0 either way; only its output says whether a server runs.
    if (std::system("jack_wait -c 2>/dev/null | grep -qx running") != 0) {
      GTEST_SKIP() << "no JACK server reachable; the real-time player tests need one "
                      "(scripts/test.sh starts it: source scripts/jack.sh; jack_ensure_running)";
    }
    PlayerOptions options;
    options.output = "portaudio";
    player_ = std::make_unique<Player>(options, recorder_.events());
    ASSERT_TRUE(player_->available()) << player_->status_message();
    rate_ = player_->device_rate();
  }

  std::string sine(const std::string& name, double seconds, int format = kWav, int rate = 0) {
    const std::string path = dir_.file(name);
    write_sine(path, seconds, rate ? rate : rate_, format);
    return path;
  }

  TempDir dir_{"tuneloop-player"};
  Recorder recorder_;
  std::unique_ptr<Player> player_;
  int rate_ = 16000;
};

}  // namespace

TEST_F(RealtimePlayer, AFullyPlayedTrackCountsItsDurationAsHeardAndCompletes) {
  const std::string path = sine("three.wav", 3.0);
  const auto start = Clock::now();
  player_->play(path, 42);
  EXPECT_EQ(player_->state(), State::playing);
  auto ended = recorder_.wait_ended();
  const double wall = seconds_since(start);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->token, 42);
  EXPECT_EQ(ended->reason, EndReason::completed);
  EXPECT_DOUBLE_EQ(ended->duration, 3.0);
  EXPECT_NEAR(ended->seconds_heard, 3.0, 0.05 * 3.0);
  EXPECT_NEAR(ended->seconds_heard, wall, 0.05 * wall) << xrun_note(ended->device_xruns);
  EXPECT_EQ(player_->state(), State::idle);
  std::lock_guard lock(recorder_.mutex);
  ASSERT_GE(recorder_.progress.size(), 10u) << "progress about every 100 ms";
  EXPECT_LE(recorder_.progress.front().seconds_heard, recorder_.progress.back().seconds_heard);
  EXPECT_EQ(recorder_.progress.back().token, 42);
}

TEST_F(RealtimePlayer, APauseIsNotCountedAsListening) {
  const std::string path = sine("three.wav", 3.0);
  const auto start = Clock::now();
  player_->play(path, 1);
  std::this_thread::sleep_for(1s);
  player_->pause();
  EXPECT_EQ(player_->state(), State::paused);
  const double heard_at_pause = player_->progress()->seconds_heard;
  std::this_thread::sleep_for(1s);
  EXPECT_NEAR(player_->progress()->seconds_heard, heard_at_pause, 0.05);
  player_->resume();
  auto ended = recorder_.wait_ended();
  const double wall = seconds_since(start);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->reason, EndReason::completed);
  EXPECT_NEAR(ended->seconds_heard, 3.0, 0.05 * 3.0);
  EXPECT_NEAR(wall, 4.0, 0.05 * 4.0) << xrun_note(ended->device_xruns);
  recorder_.wait_states(4);
  std::lock_guard lock(recorder_.mutex);
  EXPECT_EQ(recorder_.states,
            (std::vector<State>{State::playing, State::paused, State::playing, State::idle}));
}

TEST_F(RealtimePlayer, StoppingEarlyInTheTrackIsRecordedAsASkip) {
  const std::string path = sine("three.wav", 3.0);
  player_->play(path, 5);
  std::this_thread::sleep_for(800ms);
  player_->stop();
  auto ended = recorder_.wait_ended();
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->reason, EndReason::skipped);
  EXPECT_NEAR(ended->seconds_heard, 0.8, 0.15);
  EXPECT_EQ(player_->state(), State::idle);
}

TEST_F(RealtimePlayer, SeekingForwardDoesNotCountTheSkippedPart) {
  const std::string path = sine("three.wav", 3.0);
  player_->play(path, 6);
  std::this_thread::sleep_for(500ms);
  player_->seek(2.0);
  EXPECT_NEAR(player_->progress()->position, 2.0, 0.1);
  auto ended = recorder_.wait_ended();
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->reason, EndReason::completed);
  EXPECT_NEAR(ended->seconds_heard, 1.5, 0.15);
}

TEST_F(RealtimePlayer, A44kFileIsResampledAndPlaysForItsOwnDuration) {
  const std::string path = sine("cd.flac", 1.5, kFlac, 44100);
  player_->play(path, 7);
  auto ended = recorder_.wait_ended();
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->reason, EndReason::completed);
  EXPECT_NEAR(ended->seconds_heard, 1.5, 0.05 * 1.5);
}

TEST_F(RealtimePlayer, AnUnreadableFileThrowsAndLeavesTheCurrentPlayAlone) {
  const std::string good = sine("three.wav", 3.0);
  const std::string bad = dir_.file("readme.ogg");
  std::ofstream(bad) << "not audio";
  player_->play(good, 8);
  std::this_thread::sleep_for(300ms);
  try {
    player_->play(bad, 9);
    FAIL() << "expected DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  EXPECT_EQ(player_->state(), State::playing);
  EXPECT_EQ(player_->progress()->token, 8);
  std::this_thread::sleep_for(200ms);
  EXPECT_GT(player_->progress()->seconds_heard, 0.3);
}

TEST_F(RealtimePlayer, PlayingAnotherTrackEndsTheCurrentOneFirst) {
  const std::string a = sine("a.wav", 3.0);
  const std::string b = sine("b.ogg", 0.5, kOgg);
  player_->play(a, 1);
  std::this_thread::sleep_for(300ms);
  player_->play(b, 2);
  ASSERT_TRUE(recorder_.wait_ended(2));
  std::lock_guard lock(recorder_.mutex);
  ASSERT_EQ(recorder_.ended.size(), 2u);
  EXPECT_EQ(recorder_.ended[0].token, 1);
  EXPECT_EQ(recorder_.ended[0].reason, EndReason::skipped);
  EXPECT_EQ(recorder_.ended[1].token, 2);
  EXPECT_EQ(recorder_.ended[1].reason, EndReason::completed);
  EXPECT_NEAR(recorder_.ended[1].seconds_heard, 0.5, 0.05);
}

// A finished play's stream stops only after its end is reported; a play started at once
// must not find it still running.
TEST_F(RealtimePlayer, ATrackStartedRightAfterOneEndsPlaysInFull) {
  const std::string path = sine("half.wav", 0.5);
  player_->play(path, 1);
  ASSERT_TRUE(recorder_.wait_ended(1));
  player_->play(path, 2);
  EXPECT_EQ(player_->state(), State::playing);
  auto second = recorder_.wait_ended(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->token, 2);
  EXPECT_EQ(second->reason, EndReason::completed);
  EXPECT_NEAR(second->seconds_heard, 0.5, 0.05);
  EXPECT_EQ(player_->status_message(), "");
}

TEST_F(RealtimePlayer, ShuttingDownEndsTheCurrentPlayAsInterrupted) {
  player_->play(sine("three.wav", 3.0), 3);
  std::this_thread::sleep_for(300ms);
  player_.reset();
  std::lock_guard lock(recorder_.mutex);
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].reason, EndReason::interrupted);
  EXPECT_NEAR(recorder_.ended[0].seconds_heard, 0.3, 0.1);
}

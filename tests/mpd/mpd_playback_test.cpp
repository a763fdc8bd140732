// mpc driving real playback through the MPD door (PortAudio; on headless machines the
// JACK dummy server scripts/test.sh starts): play, pause, seek, next, and
// `mpc current --wait` waking on a track change. Skipped without JACK or mpc. Nothing
// here compares times: the real-time checks live in tests/daemon/playback_test.cpp.
#include "tests/daemon/scratch_daemon.hpp"
#include "tests/mpd/mpd_test_helpers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

using namespace tuneloop;
using namespace tuneloop::testing;
using nlohmann::json;

namespace {

class MpdPlaybackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!installed("test \"$(jack_wait -c 2>/dev/null)\" = running"))
      GTEST_SKIP() << "no JACK server (scripts/test.sh starts a dummy one)";
    if (!installed("command -v mpc")) GTEST_SKIP() << "mpc is not installed (scripts/setup.sh)";
    port = free_port();
    d = std::make_unique<ScratchDaemon>("portaudio", "  sample_rate: 16000\n" + mpd_yaml(port));
    d->start();
    c = std::make_unique<client::Client>(d->client());
    c->set_timeout_ms(20000);
    for (const char* name : {"one.wav", "two.wav", "three.wav", "four.wav", "five.wav"})
      c->call("tracks.add", {{"path", write_tone(d->dir() / name, 6.0).string()}});
  }

  void TearDown() override {
    if (c) c->call("player.stop");
  }

  std::string mpc(const std::string& args, int* status) {
    return run_capture("timeout 20 mpc -h 127.0.0.1 -p " + std::to_string(port) + " " + args + " 2>&1",
                       status);
  }

  // Waits until the daemon's own status reports `state` (the player's events arrive a
  // moment after the command).
  bool reaches(const std::string& state) {
    for (int i = 0; i < 100; ++i) {
      if (c->call("status")["state"] == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  json playing_track() { return c->call("status")["track"]; }

  int port = 0;
  std::unique_ptr<ScratchDaemon> d;
  std::unique_ptr<client::Client> c;
};

}  // namespace

TEST_F(MpdPlaybackTest, MpcPlaysPausesResumesSeeksAndSkips) {
  int status = 0;
  std::string out = mpc("play", &status);
  ASSERT_EQ(status, 0) << out;
  ASSERT_TRUE(reaches("playing")) << d->log_text();
  const auto first = playing_track()["id"];

  out = mpc("pause", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(reaches("paused"));
  out = mpc("status", &status);
  EXPECT_TRUE(out.find("[paused]") != std::string::npos) << out;

  out = mpc("play", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(reaches("playing"));

  out = mpc("seek +2", &status);
  EXPECT_EQ(status, 0) << out;

  out = mpc("next", &status);
  EXPECT_EQ(status, 0) << out;
  ASSERT_TRUE(reaches("playing"));
  EXPECT_NE(playing_track()["id"], first);
}

TEST_F(MpdPlaybackTest, MpcCurrentWaitWakesOnATrackChange) {
  int status = 0;
  std::string out = mpc("play", &status);
  ASSERT_EQ(status, 0) << out;
  ASSERT_TRUE(reaches("playing"));

  std::atomic<bool> done{false};
  std::string current;
  int wait_status = -1;
  std::thread waiter([&] {
    current = mpc("current --wait", &wait_status);
    done = true;
  });
  // mpc must be waiting before the change; skip again until it wakes (or give up).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (!done) c->call("player.next");
  }
  waiter.join();
  EXPECT_EQ(wait_status, 0) << current;
  EXPECT_TRUE(current.find("tuneloop - Track ") != std::string::npos) << current;
}

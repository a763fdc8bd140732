// Playback through the real PortAudio path, paced in real time (on headless machines a
// JACK dummy server started by scripts/test.sh). Listening time is checked against the
// wall clock because measuring it is what the daemon is for.
#include "tests/daemon/scratch_daemon.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace tuneloop;
using namespace tuneloop::testing;
using client::Client;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

class PlaybackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // jack_wait -c exits 0 either way; its output says "running" or "not running".
    if (std::system("test \"$(jack_wait -c 2>/dev/null)\" = running") != 0)
      GTEST_SKIP() << "no JACK server (scripts/test.sh starts a dummy one)";
    d = std::make_unique<ScratchDaemon>("portaudio", "  sample_rate: 16000\n");
    d->start();
    c = std::make_unique<Client>(d->client());
    c->set_timeout_ms(20000);
    c->call("subscribe", {{"events", {"track.started", "track.ended"}}});
  }

  json add_track(double seconds, const std::string& name) {
    return c->call("tracks.add", {{"path", write_tone(d->dir() / name, seconds).string()}});
  }

  // The next track.ended notification (plays end at most a few seconds from now).
  json wait_ended() {
    for (;;) {
      auto n = c->next_message(15000);
      if (!n) throw std::runtime_error("no track.ended within 15 s; log:\n" + d->log_text());
      if ((*n)["method"] == "track.ended") return (*n)["params"];
    }
  }

  std::int64_t device_xruns() { return c->call("status")["audio"]["xruns"].get<std::int64_t>(); }

  // Why a wall-clock comparison can fail without the daemon being wrong: the JACK dummy
  // driver falls behind the wall clock by however late a cycle ran, at each xrun.
  std::string xrun_note(std::int64_t before) {
    return "the device reported " + std::to_string(device_xruns() - before) +
           " xrun(s) since the play started (each one the JACK dummy server falls behind the "
           "wall clock)";
  }

  json play_record(std::int64_t play_id) {
    for (const auto& p : c->call("plays.list"))
      if (p["id"] == play_id) return p;
    throw std::runtime_error("play " + std::to_string(play_id) + " not recorded");
  }

  std::unique_ptr<ScratchDaemon> d;
  std::unique_ptr<Client> c;
};

}  // namespace

TEST_F(PlaybackTest, SecondsHeardOfAWholeTrackMatchWallTimeWithinFivePercent) {
  const json track = add_track(3.0, "three.wav");
  const auto xruns = device_xruns();
  const auto t0 = Clock::now();
  const json started = c->call("player.play", {{"track_id", track["id"]}});
  const json ended = wait_ended();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(ended["reason"], "completed");
  const json play = play_record(started["play_id"]);
  EXPECT_EQ(play["reason"], "completed");
  EXPECT_NEAR(play["seconds_heard"].get<double>(), wall, 0.05 * wall) << xrun_note(xruns);
  EXPECT_NEAR(play["seconds_heard"].get<double>(), 3.0, 0.15);
}

TEST_F(PlaybackTest, APauseIsNotCountedAsListening) {
  const json track = add_track(3.0, "three.wav");
  const auto xruns = device_xruns();
  const auto t0 = Clock::now();
  const json started = c->call("player.play", {{"track_id", track["id"]}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  c->call("player.pause");
  const auto paused_at = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(c->call("status")["state"], "paused");
  const double paused = std::chrono::duration<double>(Clock::now() - paused_at).count();
  c->call("player.resume");
  wait_ended();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const json play = play_record(started["play_id"]);
  EXPECT_EQ(play["reason"], "completed");
  EXPECT_NEAR(play["seconds_heard"].get<double>(), wall - paused, 0.05 * (wall - paused))
      << xrun_note(xruns);
}

TEST_F(PlaybackTest, NextAfterOneSecondRecordsASkip) {
  const json first = add_track(3.0, "first.wav");
  add_track(3.0, "second.wav");
  const json started = c->call("player.play", {{"track_id", first["id"]}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const json next = c->call("player.next");
  EXPECT_NE(next["track_id"], first["id"]);
  const json ended = wait_ended();
  EXPECT_EQ(ended["play_id"], started["play_id"]);
  EXPECT_EQ(ended["reason"], "skipped");
  const json play = play_record(started["play_id"]);
  EXPECT_EQ(play["reason"], "skipped");
  EXPECT_NEAR(play["seconds_heard"].get<double>(), 1.0, 0.25);
  c->call("player.stop");
}

TEST_F(PlaybackTest, KillNineMidPlayLosesAtMostOneCheckpointOfListening) {
  const json track = add_track(3.0, "three.wav");
  const json started = c->call("player.play", {{"track_id", track["id"]}});
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  c.reset();
  d->stop(SIGKILL);
  d->start();
  c = std::make_unique<Client>(d->client());
  const json play = play_record(started["play_id"]);
  EXPECT_EQ(play["reason"], "interrupted");
  // checkpoint_seconds is 0.5 in the test config.
  EXPECT_GE(play["seconds_heard"].get<double>(), 2.0 - 0.5 - 0.2);
}

TEST_F(PlaybackTest, SigtermMidPlayRecordsThePlayAsInterrupted) {
  const json track = add_track(3.0, "three.wav");
  const json started = c->call("player.play", {{"track_id", track["id"]}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  c.reset();
  const int status = d->stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  d->start();
  c = std::make_unique<Client>(d->client());
  const json play = play_record(started["play_id"]);
  EXPECT_EQ(play["reason"], "interrupted");
  EXPECT_NEAR(play["seconds_heard"].get<double>(), 1.0, 0.25);
}

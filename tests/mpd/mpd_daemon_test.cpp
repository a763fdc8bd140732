// tuneloopd's MPD door as a real process: framing and errors over TCP, ratings set as
// stickers reaching the store, the daemon's events waking `idle`, a taken port, the
// real clients mpc and python3-mpd (skipped when they are not installed; scripts/setup.sh
// installs both from Debian), and the connect bursts of ncmpcpp, Cantata and myMPD
// replayed from golden transcripts of a real MPD (tests/mpd/golden/). Runs without an
// audio device: playback commands must ACK.
#include "tests/daemon/scratch_daemon.hpp"
#include "tests/mpd/mpd_test_helpers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

using namespace tuneloop;
using namespace tuneloop::testing;
using nlohmann::json;

namespace {

class MpdDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    d.start();
    c = std::make_unique<client::Client>(d.client());
  }

  json add_track(const std::string& name, double seconds = 2.0) {
    return c->call("tracks.add", {{"path", write_tone(d.dir() / name, seconds).string()}});
  }

  // Tracks added outside an iteration live in the "other" folder.
  static std::string uri(const json& track) {
    return "other/track-" + std::to_string(track["id"].get<std::int64_t>()) + ".wav";
  }

  std::optional<double> stars(const json& track) {
    const json history = c->call("ratings.list", {{"track_id", track["id"]}});
    if (history.empty() || history.back()["stars"].is_null()) return std::nullopt;
    return history.back()["stars"].get<double>();
  }

  std::string mpc(const std::string& args, int* status) {
    return run_capture("timeout 20 mpc -h 127.0.0.1 -p " + std::to_string(port) + " " + args + " 2>&1",
                       status);
  }

  int port = free_port();
  ScratchDaemon d{"none", mpd_yaml(port)};
  std::unique_ptr<client::Client> c;
};

}  // namespace

TEST_F(MpdDaemonTest, TheGreetingNamesMpdZeroTwentyThree) {
  MpdSocket m(port);
  EXPECT_EQ(m.greeting(), "OK MPD 0.23.5");
}

TEST_F(MpdDaemonTest, StatusStatsAndTheRootListingAnswerOverTcp) {
  add_track("one.wav");
  MpdSocket m(port);
  const std::string status = m.command("status");
  EXPECT_TRUE(has(status, "state: stop\n")) << status;
  EXPECT_TRUE(has(status, "playlistlength: 1\n")) << status;
  EXPECT_TRUE(has(m.command("stats"), "songs: 1\n"));
  EXPECT_TRUE(has(m.command("lsinfo"), "directory: other\n"));
  EXPECT_TRUE(has(m.command("commands"), "command: sticker\n"));
}

TEST_F(MpdDaemonTest, AStickerRatingOfEightIsFourStarsInTheStore) {
  const json track = add_track("rated.wav");
  MpdSocket m(port);
  EXPECT_EQ(m.command("sticker set song " + uri(track) + " rating 8"), "OK\n");
  EXPECT_EQ(stars(track), 4.0);
  EXPECT_EQ(m.command("sticker get song " + uri(track) + " rating"), "sticker: rating=8\nOK\n");
  EXPECT_EQ(m.command("sticker set song " + uri(track) + " rating 0"), "OK\n");
  EXPECT_FALSE(stars(track).has_value());
}

TEST_F(MpdDaemonTest, ARatingFromAnotherDoorWakesIdleSticker) {
  const json track = add_track("woken.wav");
  MpdSocket m(port);
  m.send("idle sticker\n");
  c->call("rate", {{"track_id", track["id"]}, {"stars", 3}});
  EXPECT_EQ(m.read_line(10000), "changed: sticker");
  EXPECT_EQ(m.read_line(10000), "OK");
  EXPECT_EQ(m.command("sticker get song " + uri(track) + " rating"), "sticker: rating=6\nOK\n");
}

TEST_F(MpdDaemonTest, AReportedListenWakesIdlePlayerAndCountsAPlay) {
  const json track = add_track("heard.wav");
  MpdSocket m(port);
  m.send("idle player\n");
  c->call("listen.report",
          {{"track_id", track["id"]}, {"seconds_heard", 2.0}, {"ended", "completed"}});
  EXPECT_EQ(m.read_line(10000), "changed: player");
  EXPECT_EQ(m.read_line(10000), "OK");
  EXPECT_EQ(m.command("sticker get song " + uri(track) + " playCount"), "sticker: playCount=1\nOK\n");
}

TEST_F(MpdDaemonTest, PlaybackWithoutAnAudioDeviceAcksWhyAndTheRestWorks) {
  add_track("silent.wav");
  MpdSocket m(port);
  const std::string play = m.command("play");
  EXPECT_EQ(play.rfind("ACK [52@0] {play} no audio device", 0), 0u) << play;
  EXPECT_EQ(m.command("setvol 30"), "OK\n");
  EXPECT_EQ(m.command("getvol"), "volume: 30\nOK\n");
  EXPECT_NEAR(c->call("status")["volume"].get<double>(), 0.3, 1e-9);
}

TEST_F(MpdDaemonTest, MalformedInputGetsMpdsAcksAndTheConnectionStays) {
  MpdSocket m(port);
  EXPECT_EQ(m.command("fly"), "ACK [5@0] {} unknown command \"fly\"\n");
  EXPECT_EQ(m.command("find \"Artist"), "ACK [2@0] {} Missing closing '\"'\n");
  EXPECT_EQ(m.command("setvol 200"), "ACK [2@0] {setvol} Number too large: 200\n");
  EXPECT_EQ(m.command("seek 0"), "ACK [2@0] {seek} wrong number of arguments for \"seek\"\n");
  EXPECT_EQ(m.command("ping"), "OK\n");
}

TEST_F(MpdDaemonTest, AnOverLongLineClosesTheConnectionAndTheDaemonCarriesOn) {
  MpdSocket m(port);
  m.send("ping " + std::string(9000, 'x'));
  EXPECT_TRUE(m.closed_within(5000));
  EXPECT_EQ(MpdSocket(port).command("ping"), "OK\n");
  EXPECT_EQ(c->call("ping"), "pong");
}

TEST_F(MpdDaemonTest, AnHttpRequestIsClosedWithoutAnAnswer) {
  MpdSocket m(port);
  m.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nstatus\n");
  EXPECT_TRUE(m.closed_within(5000));
  EXPECT_EQ(m.unread(), "");
  EXPECT_EQ(c->call("ping"), "pong");
}

TEST_F(MpdDaemonTest, ATakenPortIsLoggedAndTheDaemonServesWithoutTheDoor) {
  Squatter real_mpd;
  ScratchDaemon other("none", mpd_yaml(real_mpd.port()));
  other.start();
  EXPECT_EQ(other.client().call("ping"), "pong");
  EXPECT_TRUE(has(other.log_text(), "mpd")) << other.log_text();
  EXPECT_TRUE(has(other.log_text(), std::to_string(real_mpd.port()))) << other.log_text();
}

TEST_F(MpdDaemonTest, MpcReadsStatusSetsVolumeAndRatesThroughStickers) {
  if (!installed("command -v mpc")) GTEST_SKIP() << "mpc is not installed (scripts/setup.sh)";
  const json track = add_track("mpc.wav");
  int status = 0;
  std::string out = mpc("status", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(has(out, "volume:")) << out;
  out = mpc("volume 40", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NEAR(c->call("status")["volume"].get<double>(), 0.4, 1e-9);
  out = mpc("sticker " + uri(track) + " set rating 8", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(stars(track), 4.0);
  out = mpc("sticker " + uri(track) + " get rating", &status);
  EXPECT_TRUE(has(out, "rating=8")) << out;
  out = mpc("play", &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(has(out, "no audio device")) << out;
  out = mpc("ls", &status);
  EXPECT_TRUE(has(out, "other")) << out;
}

TEST_F(MpdDaemonTest, MpcIdlePlayerWakesWhenAPlayIsRecorded) {
  if (!installed("command -v mpc")) GTEST_SKIP() << "mpc is not installed (scripts/setup.sh)";
  const json track = add_track("idle.wav");
  std::atomic<bool> done{false};
  std::string out;
  int status = -1;
  std::thread waiter([&] {
    out = mpc("idle player", &status);
    done = true;
  });
  // Until mpc is waiting, an event could come before its `idle`: repeat it until it wakes.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    c->call("listen.report", {{"track_id", track["id"]}, {"seconds_heard", 1.0}, {"ended", "skipped"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  waiter.join();
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(has(out, "player")) << out;
}

TEST_F(MpdDaemonTest, PythonMpdDrivesStatusCommandListsStickersErrorsAndIdle) {
  if (!installed("/usr/bin/python3 -c 'import mpd'"))
    GTEST_SKIP() << "python3-mpd is not installed (scripts/setup.sh)";
  const json track = add_track("python.wav");
  int status = 0;
  const std::string out = run_capture(
      "timeout 60 /usr/bin/python3 " + std::string(TUNELOOP_SOURCE_DIR) + "/tests/mpd/mpd_client_test.py 127.0.0.1 " +
          std::to_string(port) + " " + uri(track) + " 2>&1",
      &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(has(out, "ok")) << out;
}

TEST_F(MpdDaemonTest, TheConnectBurstsOfNcmpcppCantataAndMyMpdGetWhatEachClientNeeds) {
  add_track("first.wav");
  add_track("second.wav");
  int status = 0;
  const std::string out = run_capture(
      "timeout 120 /usr/bin/python3 " + std::string(TUNELOOP_SOURCE_DIR) +
          "/tests/mpd/golden_replay_test.py 127.0.0.1 " + std::to_string(port) + " 2>&1",
      &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(out.size() >= 3 && out.compare(out.size() - 3, 3, "ok\n") == 0) << out;
}

// tuneloopd as a real process: its socket, its errors, its durability.
#include "tests/daemon/scratch_daemon.hpp"
#include "tests/support/net.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
#include <fstream>
#include <thread>
#include <cstdio>

using namespace tuneloop;
using namespace tuneloop::testing;
using client::CallError;
using client::Client;
using nlohmann::json;

namespace {

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override { d.start(); }
  ScratchDaemon d{"none", "daemon:\n  max_line_bytes: 4096\n"};

  json add_track(Client& c, double seconds = 3.0, const std::string& name = "tone.wav") {
    return c.call("tracks.add", {{"path", write_tone(d.dir() / name, seconds).string()}});
  }
};

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  *status = p ? ::pclose(p) : -1;
  return out;
}

// The first line of the reply to a raw HTTP request on 127.0.0.1:port.
std::string http_status_line(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "cannot connect";
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string reply;
  char buf[512];
  for (ssize_t n; reply.find("\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    reply.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

// The web player's port, from DATA/ui-url (http://127.0.0.1:PORT/?token=…).
int web_port(const ScratchDaemon& d) {
  std::string url;
  for (int i = 0; i < 100 && url.empty(); ++i) {
    std::ifstream(d.data() / "ui-url") >> url;
    if (url.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto colon = url.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(url.c_str() + colon + 1);
}

}  // namespace

TEST(DaemonFiles, TheDataFolderAndDatabaseAreReadableByTheListenerAlone) {
  ScratchDaemon d;
  fs::create_directories(d.data());
  fs::permissions(d.data(), fs::perms::all, fs::perm_options::replace);  // as an older daemon left it
  d.start();
  Client c = d.client();
  EXPECT_EQ(c.call("ping"), "pong");
  struct stat st{};
  ASSERT_EQ(::stat(d.data().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((d.data() / "tuneloop.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

TEST(DaemonHttp, AForeignOriginOrAnOversizedBodyOnRpcIsRefusedBeforeItRuns) {
  ScratchDaemon d("none", "http:\n  enabled: true\n  port: 0\n");
  d.start();
  const int port = web_port(d);
  ASSERT_GT(port, 0);
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  const std::string body = R"({"jsonrpc":"2.0","id":1,"method":"shutdown"})";
  EXPECT_EQ(http_status_line(port, "POST /rpc HTTP/1.1\r\n" + host +
                                       "Origin: http://evil.example\r\nContent-Type: text/plain\r\n"
                                       "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body),
            "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(http_status_line(port, "POST /rpc HTTP/1.1\r\n" + host + "Content-Length: 2000000\r\n\r\n" +
                                       std::string(4096, ' ')),
            "HTTP/1.1 413 Payload Too Large");
  Client c = d.client();
  EXPECT_EQ(c.call("ping"), "pong");
}

TEST_F(DaemonTest, MalformedJsonGetsAParseErrorAndTheDaemonKeepsServing) {
  Client c = d.client();
  c.send_raw("{\"jsonrpc\": \"2.0\", \"method\": \n");
  json reply = json::parse(*c.read_line(10000));
  EXPECT_EQ(reply["error"]["code"], -32700);
  EXPECT_TRUE(reply["id"].is_null());
  EXPECT_EQ(c.call("ping"), "pong");
  EXPECT_EQ(d.client().call("ping"), "pong");
}

TEST_F(DaemonTest, AnUnknownMethodGetsMethodNotFound) {
  Client c = d.client();
  json reply = c.request("player.fly");
  EXPECT_EQ(reply["error"]["code"], -32601);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("player.fly"), std::string::npos);
}

TEST_F(DaemonTest, AWrongParameterTypeGetsInvalidParamsNamingTheParameter) {
  Client c = d.client();
  json reply = c.request("rate", {{"stars", "four"}, {"track_id", 1}});
  EXPECT_EQ(reply["error"]["code"], -32602);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("'stars'"), std::string::npos);
  EXPECT_EQ(reply["error"]["data"]["param"], "stars");
}

TEST_F(DaemonTest, AnOverLongLineGetsAnErrorAndTheSameConnectionStillWorks) {
  Client c = d.client();
  c.send_raw("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"" + std::string(20000, 'x') + "\"}\n");
  json reply = json::parse(*c.read_line(10000));
  EXPECT_EQ(reply["error"]["code"], -32600);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("4096"), std::string::npos);
  EXPECT_EQ(c.call("ping"), "pong");
}

TEST_F(DaemonTest, ANonAudioFileAsASongGetsInvalidAudioNamingThePath) {
  const auto path = d.dir() / "notes.wav";
  std::ofstream(path) << "this is not audio\n";
  Client c = d.client();
  try {
    c.call("songs.add", {{"path", path.string()}});
    FAIL() << "songs.add accepted a text file";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), -32002);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(c.call("songs.list").empty());
  EXPECT_EQ(c.call("ping"), "pong");
}

TEST_F(DaemonTest, ASongIsCopiedIntoTheDataFolderOnceByContent) {
  Client c = d.client();
  const auto a = write_tone(d.dir() / "mine.wav", 1.0);
  const auto b = d.dir() / "copy-of-mine.wav";
  fs::copy_file(a, b);
  json first = c.call("songs.add", {{"path", a.string()}});
  json second = c.call("songs.add", {{"path", b.string()}});
  EXPECT_TRUE(first["inserted"].get<bool>());
  EXPECT_FALSE(second["inserted"].get<bool>());
  EXPECT_EQ(first["id"], second["id"]);
  EXPECT_EQ(fs::path(first["path"].get<std::string>()),
            d.data() / "songs" / (first["sha256"].get<std::string>() + ".wav"));
  EXPECT_TRUE(fs::exists(first["path"].get<std::string>()));
  EXPECT_EQ(c.call("songs.list").size(), 1u);
  c.call("songs.remove", {{"id", first["id"]}});
  EXPECT_FALSE(fs::exists(first["path"].get<std::string>()));
  EXPECT_TRUE(c.call("songs.list").empty());
}

TEST_F(DaemonTest, ALongSongBeingAddedDoesNotHoldUpOtherClients) {
  // An hour of audio: reading, hashing and copying it takes far longer than a ping.
  const auto song = write_tone(d.dir() / "long.wav", 3600, 220);
  Client adder = d.client();
  adder.send_raw(R"({"jsonrpc":"2.0","id":1,"method":"songs.add","params":{"path":")" + song.string() +
                 "\"}}\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the line is read
  Client other = d.client();
  EXPECT_EQ(other.call("ping"), "pong");
  // The io thread answered while the file was still being worked on: no reply yet.
  EXPECT_FALSE(adder.read_line(0).has_value());
  const json added = json::parse(*adder.read_line(120000));
  EXPECT_EQ(added["id"], 1);
  EXPECT_TRUE(added["result"]["inserted"].get<bool>()) << added.dump();
  EXPECT_NEAR(added["result"]["duration"].get<double>(), 3600, 0.1);
}

TEST_F(DaemonTest, ABatchGetsOneReplyPerRequestAndNoneForNotifications) {
  Client c = d.client();
  c.send_raw(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},)"
             R"({"jsonrpc":"2.0","method":"ping"},)"
             R"({"jsonrpc":"2.0","id":2,"method":"nope"},)"
             R"(42])"
             "\n");
  json reply = json::parse(*c.read_line(10000));
  ASSERT_TRUE(reply.is_array());
  ASSERT_EQ(reply.size(), 3u);
  EXPECT_EQ(reply[0]["result"], "pong");
  EXPECT_EQ(reply[1]["error"]["code"], -32601);
  EXPECT_EQ(reply[2]["error"]["code"], -32600);
}

TEST_F(DaemonTest, FiftyConcurrentClientsAllGetAnswers) {
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i)
    threads.emplace_back([&] {
      try {
        Client c = d.client();
        for (int k = 0; k < 5; ++k) {
          if (c.call("ping") != "pong") return;
          if (!c.call("status").contains("state")) return;
        }
        ++answered;
      } catch (const std::exception&) {
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(answered.load(), 50);
}

TEST_F(DaemonTest, AnAcknowledgedRatingSurvivesKillNine) {
  Client c = d.client();
  const json track = add_track(c);
  c.call("rate", {{"track_id", track["id"]}, {"stars", 4.5}});
  d.stop(SIGKILL);
  d.start();
  json ratings = d.client().call("ratings.list");
  ASSERT_EQ(ratings.size(), 1u);
  EXPECT_EQ(ratings[0]["track_id"], track["id"]);
  EXPECT_DOUBLE_EQ(ratings[0]["stars"].get<double>(), 4.5);
}

TEST_F(DaemonTest, ASecondInstanceOnTheSameDataFolderIsRefusedNamingTheLock) {
  int status = 0;
  const std::string out =
      run_capture(tuneloopd_binary().string() + " --config " + d.config().string() + " --socket " +
                      (d.dir() / "other.sock").string() + " 2>&1",
                  &status);
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("already running"), std::string::npos) << out;
  EXPECT_NE(out.find("pid " + std::to_string(d.pid())), std::string::npos) << out;
  EXPECT_NE(out.find("tuneloopd.lock"), std::string::npos) << out;
  EXPECT_EQ(d.client().call("ping"), "pong");
}

TEST_F(DaemonTest, TheSocketIsOnlyForItsOwner) {
  struct stat st {};
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(d.socket().parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

TEST_F(DaemonTest, AShortReportedListenIsRecordedAsSkipped) {
  Client c = d.client();
  const json track = add_track(c, 3.0);
  json r = c.call("listen.report", {{"track_id", track["id"]}, {"seconds_heard", 0.4}, {"ended", "stopped"}});
  EXPECT_EQ(r["reason"], "skipped");
  json plays = c.call("plays.list", {{"track_id", track["id"]}});
  ASSERT_EQ(plays.size(), 1u);
  EXPECT_EQ(plays[0]["reason"], "skipped");
  EXPECT_EQ(plays[0]["source"], "external");
  EXPECT_DOUBLE_EQ(plays[0]["seconds_heard"].get<double>(), 0.4);
}

TEST_F(DaemonTest, AReportedListenPastTheSkipFractionIsAStopNotASkip) {
  Client c = d.client();
  const json track = add_track(c, 3.0);
  EXPECT_EQ(c.call("listen.report", {{"track_id", track["id"]}, {"seconds_heard", 2.5}, {"ended", "skipped"}})["reason"],
            "stopped");
  EXPECT_EQ(c.call("listen.report", {{"track_id", track["id"]}, {"seconds_heard", 3.0}, {"ended", "completed"}})["reason"],
            "completed");
}

TEST_F(DaemonTest, ASubscriberIsToldAboutARatingAnotherClientMade) {
  Client watcher = d.client();
  watcher.call("subscribe", {{"events", {"rating.recorded"}}});
  Client c = d.client();
  const json track = add_track(c);
  c.call("rate", {{"track_id", track["id"]}, {"stars", 3}});
  auto n = watcher.next_message(10000);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ((*n)["method"], "rating.recorded");
  EXPECT_EQ((*n)["params"]["track_id"], track["id"]);
  EXPECT_FALSE(n->contains("id"));
}

TEST_F(DaemonTest, RatingTheCurrentTrackWithNothingPlayingAsksForATrackId) {
  json reply = d.client().request("rate", {{"stars", 4}});
  EXPECT_EQ(reply["error"]["code"], -32602);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("track_id"), std::string::npos);
}

TEST_F(DaemonTest, PlayingWithoutAnAudioDeviceSaysSo) {
  Client c = d.client();
  const json track = add_track(c);
  json reply = c.request("player.play", {{"track_id", track["id"]}});
  EXPECT_EQ(reply["error"]["code"], -32005);
  EXPECT_FALSE(c.call("status")["audio"]["available"].get<bool>());
}

TEST_F(DaemonTest, AnUnknownTrackIsNotFound) {
  EXPECT_EQ(d.client().request("rate", {{"track_id", 999}, {"stars", 2}})["error"]["code"], -32001);
}

TEST_F(DaemonTest, AtStartARowWhoseFileIsMissingIsReportedWithItsIdAndPath) {
  Client c = d.client();
  const json kept = add_track(c, 1.0, "kept.wav");
  const json gone = add_track(c, 1.0, "gone.wav");
  d.stop();
  fs::remove(gone["path"].get<std::string>());
  d.start();
  const std::string log = d.log_text();
  EXPECT_NE(log.find("track " + std::to_string(gone["id"].get<int>()) +
                     " of listener 'default' names a missing file: " + gone["path"].get<std::string>()),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("names a missing file: " + kept["path"].get<std::string>()), std::string::npos);
  EXPECT_NE(log.find("1 of 2 tracks and songs name files that are missing"), std::string::npos);
  EXPECT_EQ(d.client().call("ping"), "pong");  // and it serves on
}

TEST_F(DaemonTest, ExportWritesRatingsPlaysAndAudioAndDeleteForgetsTheListener) {
  Client c = d.client();
  const json track = add_track(c);
  c.call("songs.add", {{"path", write_tone(d.dir() / "song.wav", 0.5).string()}});
  c.call("rate", {{"track_id", track["id"]}, {"stars", 2.5}});
  c.call("listen.report", {{"track_id", track["id"]}, {"seconds_heard", 3.0}, {"ended", "completed"}});
  const auto out = d.dir() / "export";
  json r = c.call("listener.export", {{"dir", out.string()}, {"format", "json"}});
  json all = json::parse(std::ifstream(out / "listener.json"));
  ASSERT_EQ(all["ratings"].size(), 1u);
  EXPECT_DOUBLE_EQ(all["ratings"][0]["stars"].get<double>(), 2.5);
  EXPECT_EQ(all["plays"].size(), 1u);
  EXPECT_TRUE(fs::exists(out / all["songs"][0]["file"].get<std::string>()));
  EXPECT_TRUE(fs::exists(out / all["tracks"][0]["file"].get<std::string>()));

  c.call("listener.export", {{"dir", (d.dir() / "csv").string()}, {"format", "csv"}});
  EXPECT_TRUE(fs::exists(d.dir() / "csv" / "ratings.csv"));

  EXPECT_EQ(c.request("listener.delete", {{"confirm", false}})["error"]["code"], -32602);
  c.call("listener.delete", {{"confirm", true}});
  EXPECT_TRUE(c.call("tracks.list").empty());
  EXPECT_TRUE(c.call("songs.list").empty());
  EXPECT_TRUE(c.call("ratings.list").empty());
  EXPECT_TRUE(fs::exists(d.dir() / "tone.wav"));  // not the daemon's file: kept
}

TEST_F(DaemonTest, ExportRefusesALinkOrAFolderThatIsNotEmptyAndWritesNothingThere) {
  Client c = d.client();
  add_track(c);
  const fs::path victim = d.dir() / "victim";
  fs::create_directory(victim);
  const fs::path link = d.dir() / "link";
  fs::create_directory_symlink(victim, link);
  json r = c.request("listener.export", {{"dir", link.string()}, {"format", "json"}});
  EXPECT_EQ(r["error"]["code"], -32602) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("symbolic link"), std::string::npos) << r.dump();
  EXPECT_TRUE(fs::is_empty(victim));

  std::ofstream(victim / "keep.txt") << "mine";
  r = c.request("listener.export", {{"dir", victim.string()}, {"format", "csv"}});
  EXPECT_EQ(r["error"]["code"], -32602) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("not empty"), std::string::npos) << r.dump();
  EXPECT_FALSE(fs::exists(victim / "ratings.csv"));

  const fs::path fresh = d.dir() / "fresh";
  c.call("listener.export", {{"dir", fresh.string()}, {"format", "json"}});
  EXPECT_EQ(fs::status(fresh).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST_F(DaemonTest, SigtermStopsGracefullyAndRemovesTheSocket) {
  const int status = d.stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(d.socket()));
}

TEST_F(DaemonTest, ABadConfigOnSighupIsRefusedAndTheOldOneKept) {
  std::ofstream(d.config(), std::ios::app) << "audio:\n  volume: loud\n";
  ::kill(d.pid(), SIGHUP);
  for (int i = 0; i < 100 && d.log_text().find("reload refused") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_NE(d.log_text().find("reload refused"), std::string::npos);
  EXPECT_EQ(d.client().call("ping"), "pong");
}

TEST_F(DaemonTest, TheCliSaysHowToStartTheDaemonWhenItIsNotRunning) {
  const auto cli = fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloop";
  if (!fs::exists(cli)) GTEST_SKIP() << "tuneloop CLI not built";
  int status = 0;
  const std::string out = run_capture(cli.string() + " status --socket " + (d.dir() / "none.sock").string() + " 2>&1", &status);
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("tuneloopd is not running"), std::string::npos) << out;
  const std::string ok = run_capture(cli.string() + " status --json --socket " + d.socket().string() + " 2>&1", &status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << ok;
  EXPECT_EQ(json::parse(ok)["state"], "idle");
}

// The token a TCP client must present first (fresh at every start, owner-only).
std::string tcp_token(const ScratchDaemon& d) {
  const fs::path file = d.data() / "tcp-token";
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  std::string token;
  std::ifstream(file) >> token;
  return token;
}

TEST(DaemonTcpTest, TheOptionalLoopbackPortAnswersTheSameMethodsAfterAuth) {
  const int port = free_port();
  ScratchDaemon d("none", "daemon:\n  tcp_port: " + std::to_string(port) + "\n");
  d.start();
  Client c = Client::connect_tcp(port, tcp_token(d));
  EXPECT_EQ(c.call("ping"), "pong");
  EXPECT_EQ(c.request("nope")["error"]["code"], -32601);
}

TEST(DaemonIdleTest, ASilentConnectionIsClosedAfterIdleSecondsAndASubscribedOneStays) {
  ScratchDaemon d("none", "daemon:\n  idle_seconds: 1\n");
  d.start();
  Client silent = d.client();
  Client subscriber = d.client();
  EXPECT_EQ(silent.call("ping"), "pong");
  subscriber.call("subscribe");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_THROW(
      {
        silent.send_raw("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n");
        silent.read_line(3000);
      },
      std::runtime_error);
  EXPECT_EQ(subscriber.call("ping"), "pong");
  EXPECT_EQ(d.client().call("ping"), "pong");
}

TEST(DaemonTcpTest, ARequestBeforeAuthOrAWrongTokenIsRefusedAndTheConnectionClosed) {
  const int port = free_port();
  ScratchDaemon d("none", "daemon:\n  tcp_port: " + std::to_string(port) + "\n");
  d.start();
  const std::string token = tcp_token(d);
  ASSERT_EQ(token.size(), 64u);
  auto refused = [&](const std::string& line) {
    Client c = Client::connect_tcp_unauthorised(port);
    c.send_raw(line + "\n");
    const auto reply = c.read_line(5000);
    EXPECT_TRUE(reply.has_value()) << line;
    if (reply) {
      EXPECT_EQ(json::parse(*reply)["error"]["code"], -32007) << *reply;
    }
    // Closed after the reply: nothing more is answered.
    c.send_raw("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}\n");
    EXPECT_THROW(c.read_line(5000), std::runtime_error) << line;
  };
  refused(R"({"jsonrpc":"2.0","id":1,"method":"listener.delete","params":{"confirm":true}})");
  refused(R"({"jsonrpc":"2.0","id":1,"method":"auth","params":{"token":"0000"}})");
  refused(R"({"jsonrpc":"2.0","id":1,"method":"auth","params":{"token":")" +
          std::string(64, 'f') + R"("}})");
  refused(R"([{"jsonrpc":"2.0","id":1,"method":"auth","params":{"token":")" + token + R"("}}])");
  refused("not json");
  EXPECT_THROW(Client::connect_tcp(port, "wrong"), CallError);
  // The right token still works, and the listener was never deleted.
  Client c = Client::connect_tcp(port, token);
  EXPECT_EQ(c.call("ping"), "pong");
  EXPECT_EQ(d.client().call("status")["state"], "idle");
}

TEST_F(DaemonTest, ABrowsersCrossProtocolPostToTheTcpPortClosesTheConnectionBeforeItsBodyRuns) {
  const int port = free_port();
  ScratchDaemon d("none", "daemon:\n  tcp_port: " + std::to_string(port) + "\n");
  d.start();
  Client web = Client::connect_tcp_unauthorised(port);
  web.send_raw("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\r\n"
               "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"shutdown\"}\n");
  EXPECT_THROW(
      {
        for (int i = 0; i < 20; ++i) web.read_line(500);
      },
      std::runtime_error);  // closed: no reply to any line
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Client c = Client::connect_tcp(port, tcp_token(d));
  EXPECT_EQ(c.call("ping"), "pong");  // the shutdown in the body never ran
}

TEST_F(DaemonTest, TheProtocolVersionIsTheNewestMethodsAndTheOneDocsProtocolMdDocuments) {
  std::ifstream in(fs::path(TUNELOOP_SOURCE_DIR) / "docs" / "protocol.md");
  std::string title;
  std::getline(in, title);
  Client c = d.client();
  const std::string protocol = c.call("status")["protocol"];
  EXPECT_EQ(title, "# tuneloopd protocol (version " + protocol + ")");
  // "0.10" > "0.9": compare the numbers, not the text.
  auto minor = [](const std::string& v) { return std::stoi(v.substr(v.find('.') + 1)); };
  int newest = 0;
  for (const auto& m : c.call("methods")) newest = std::max(newest, minor(m["since"].get<std::string>()));
  EXPECT_EQ(minor(protocol), newest) << protocol;
  EXPECT_EQ(protocol.substr(0, 2), "0.");
}

TEST_F(DaemonTest, IterateWithoutAModelGetsTheModelErrorCodeAndAReason) {
  Client c = d.client();
  // The daemon's weights folder is empty: the model probe at start fails.
  for (int i = 0; i < 200 && c.call("loop.status")["state"] != "unavailable"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(c.call("loop.status")["state"], "unavailable");
  const json reply = c.request("iterate", {{"force", true}});
  EXPECT_EQ(reply["error"]["code"], -32006) << reply.dump();
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("iterate: model unavailable"), std::string::npos)
      << reply.dump();
  EXPECT_NE(reply["error"]["message"].get<std::string>().find(d.weights_dir().string()), std::string::npos)
      << reply.dump();
  EXPECT_TRUE(c.call("iterations.list").empty());
  EXPECT_EQ(c.call("ping"), "pong");
}

TEST(Cli, TheModelToolsLiveUnderModelAndTheirOldNamesStillRunHidden) {
  const auto cli = (fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloop").string();
  int status = 0;
  const std::string top = run_capture(cli + " --help 2>&1", &status);
  EXPECT_NE(top.find("  model "), std::string::npos) << top;
  EXPECT_EQ(top.find("  generate "), std::string::npos) << top;
  const std::string model = run_capture(cli + " model --help 2>&1", &status);
  for (const char* tool : {"corpus", "train-denoiser", "fine-tune", "generate"})
    EXPECT_NE(model.find(std::string("  ") + tool + " "), std::string::npos) << tool << "\n" << model;
  const std::string old = run_capture(cli + " generate --help 2>&1", &status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << old;
  EXPECT_NE(old.find("--seed"), std::string::npos) << old;
}

// Runs `body` in a child process as the unprivileged user nobody (uid/gid 65534); returns its
// exit code, or -1 when it could not become nobody.
int as_nobody(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(255);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) != 255 ? WEXITSTATUS(status) : -1;
}

TEST_F(DaemonTest, AnotherUsersConnectionIsClosedUnansweredEvenWhenTheSocketIsOpenToAll) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to connect as another user";
  // Take away the file permissions, the first guard, so the daemon's own check is what is left.
  fs::permissions(d.dir(), fs::perms::all);
  fs::permissions(d.socket().parent_path(), fs::perms::all);
  fs::permissions(d.socket(), fs::perms::all);
  const std::string socket = d.socket().string();
  const std::string line = R"({"jsonrpc":"2.0","id":1,"method":"ping"})" "\n";
  const int code = as_nobody([&socket, &line] {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const timeval wait{10, 0};  // neither an answer nor a close: fail, do not hang
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 2;
    (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    char buf[256];
    const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    // Closed without an answer: end of file, or a reset (the ping was never read).
    if (got == 0 || (got < 0 && errno == ECONNRESET)) return 0;
    return got < 0 ? 3 : 1;  // 3: neither answered nor closed
  });
  ASSERT_NE(code, -1) << "could not become nobody";
  ASSERT_NE(code, 2) << "nobody could not connect to a socket open to all";
  ASSERT_NE(code, 3) << "the connection was neither answered nor closed within 10 s";
  EXPECT_EQ(code, 0) << "another user's ping was answered";
  EXPECT_NE(d.log_text().find("refused a connection from uid 65534"), std::string::npos) << d.log_text();
  EXPECT_EQ(d.client().call("ping"), "pong");
}

TEST(Cli, ASocketServedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to serve a socket as another user";
  TempDir tmp("tuneloop-foreign-socket");
  fs::permissions(tmp.path(), fs::perms::all);
  const fs::path socket = tmp.path() / "tuneloop.sock";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t server = ::fork();
  ASSERT_GE(server, 0) << "fork failed";
  if (server == 0) {  // nobody listens at the path and says so
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) ::_exit(1);
    ::chmod(socket.c_str(), 0777);
    (void)::write(ready[1], "x", 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  const bool listening = ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  std::string error;
  if (listening) {
    try {
      (void)Client::connect_unix(socket);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  ASSERT_TRUE(listening) << "the other user's server did not start";
  EXPECT_NE(error.find("served by uid 65534, not by this user"), std::string::npos) << error;
}

TEST(Cli, TuneloopUiOpensAPrivateRedirectSoTheTokenIsNeverInACommandLine) {
  const auto cli = (fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloop").string();
  TempDir tmp("tuneloop-ui-open");
  const fs::path data = tmp.path() / "data", bin = tmp.path() / "bin", seen = tmp.path() / "argv";
  fs::create_directories(data);
  fs::create_directories(bin);
  const std::string url = "http://127.0.0.1:8754/?token=sekret-0123456789abcdef";
  std::ofstream(data / "ui-url") << url << "\n";
  // A stand-in for the desktop's opener: records the command line it was given.
  std::ofstream(bin / "xdg-open") << "#!/bin/sh\nprintf '%s\\n' \"$@\" > " << seen.string() << "\n";
  fs::permissions(bin / "xdg-open", fs::perms::owner_all);
  int status = 0;
  const std::string out = run_capture("env DISPLAY=:99 PATH=" + bin.string() + ":/usr/bin:/bin XDG_CONFIG_HOME=" +
                                          tmp.path().string() + " " + cli + " ui --data-dir " + data.string() + " 2>&1",
                                      &status);
  ASSERT_EQ(WEXITSTATUS(status), 0) << out;
  std::ifstream in(seen);
  std::string argv((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(argv, "file://" + (data / "ui-open.html").string() + "\n");
  EXPECT_EQ(argv.find("sekret"), std::string::npos) << argv;
  EXPECT_EQ(fs::status(data / "ui-open.html").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  std::ifstream page(data / "ui-open.html");
  std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find(url), std::string::npos) << html;
}

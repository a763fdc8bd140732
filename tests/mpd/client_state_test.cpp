// The MPD command layer without sockets: ClientState over a Dispatcher whose command
// table is a small fake of the daemon's methods (tests/mpd/fake_daemon.hpp), so framing,
// command lists, idle, permissions, stickers and errors are checked line by line.
#include "tests/mpd/fake_daemon.hpp"
#include "rpc/dispatcher.hpp"
#include "mpd/client_state.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

using namespace tuneloop;
using mpd::ClientState;
using mpd_testing::FakeDaemon;
using nlohmann::json;

namespace {

class MpdClientStateTest : public ::testing::Test {
 protected:
  MpdClientStateTest() {
    fake.tracks = {{1, 1, "fast,drums", 8.0}, {2, 1, "slow", 6.0}, {3, std::nullopt, "", 4.0}};
    fake.upcoming = {1, 2, 3};
    fake.add_rows(table);
  }

  // The reply to one line.
  std::string say(const std::string& line) { return client.on_line(line).reply; }

  rpc::CommandTable table;
  rpc::Dispatcher dispatcher{table};
  FakeDaemon fake;
  mpd::Shared shared{dispatcher, ""};
  ClientState client{shared, "test"};
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_F(MpdClientStateTest, PingAnswersOk) { EXPECT_EQ(say("ping"), "OK\n"); }

TEST_F(MpdClientStateTest, AnUnknownCommandGetsAckFiveWithNoCommandName) {
  EXPECT_EQ(say("fly"), "ACK [5@0] {} unknown command \"fly\"\n");
  EXPECT_EQ(say("ping"), "OK\n");
}

TEST_F(MpdClientStateTest, WrongArgumentCountsGetMpdsMessages) {
  EXPECT_EQ(say("play 1 2"), "ACK [2@0] {play} too many arguments for \"play\"\n");
  EXPECT_EQ(say("seek 1"), "ACK [2@0] {seek} wrong number of arguments for \"seek\"\n");
  EXPECT_EQ(say("sticker get"), "ACK [2@0] {sticker} too few arguments for \"sticker\"\n");
  EXPECT_EQ(say("setvol loud"), "ACK [2@0] {setvol} Integer expected: loud\n");
}

TEST_F(MpdClientStateTest, AMalformedArgumentGetsAnAckAndTheConnectionStays) {
  const auto o = client.on_line("find \"Artist");
  EXPECT_EQ(o.reply, "ACK [2@0] {} Missing closing '\"'\n");
  EXPECT_EQ(o.after, ClientState::After::read_on);
}

TEST_F(MpdClientStateTest, AMalformedCommandNameIsAnsweredAndTheConnectionClosed) {
  const auto o = client.on_line("sta:tus");
  EXPECT_EQ(o.reply, "ACK [5@0] {} Invalid word character\n");
  EXPECT_EQ(o.after, ClientState::After::close_after_flush);
}

TEST_F(MpdClientStateTest, ALineThatIsNotACommandClosesWithoutAnAnswer) {
  for (const std::string line : {"GET / HTTP/1.1", "", " status", "Status"}) {
    ClientState c(shared, "other");
    const auto o = c.on_line(line);
    EXPECT_EQ(o.reply, "") << line;
    EXPECT_EQ(o.after, ClientState::After::close_now) << line;
  }
}

TEST_F(MpdClientStateTest, StatusReportsStateQueueAndVolume) {
  fake.volume = 0.5;
  const std::string s = say("status");
  EXPECT_TRUE(has(s, "volume: 50\n")) << s;
  EXPECT_TRUE(has(s, "state: stop\n")) << s;
  EXPECT_TRUE(has(s, "playlistlength: 3\n")) << s;
  EXPECT_TRUE(has(s, "playlist: 1\n")) << s;
  EXPECT_TRUE(has(s, "repeat: 0\nrandom: 0\nsingle: 0\nconsume: 0\n")) << s;
  EXPECT_TRUE(s.size() >= 3 && s.substr(s.size() - 3) == "OK\n") << s;
}

TEST_F(MpdClientStateTest, ACommandListAnswersListOkPerCommandThenOk) {
  EXPECT_EQ(say("command_list_ok_begin"), "");
  EXPECT_EQ(say("ping"), "");
  EXPECT_EQ(say("getvol"), "");
  EXPECT_EQ(say("command_list_end"), "list_OK\nvolume: 100\nlist_OK\nOK\n");
}

TEST_F(MpdClientStateTest, AnErrorInACommandListStopsItWithTheIndexAndNoOk) {
  say("command_list_begin");
  say("ping");
  say("nope");
  say("ping");
  EXPECT_EQ(say("command_list_end"), "ACK [5@1] {} unknown command \"nope\"\n");
  EXPECT_EQ(say("ping"), "OK\n");
}

TEST_F(MpdClientStateTest, IdleWaitsForItsSubsystemAndNoidleEndsIt) {
  EXPECT_EQ(say("idle player"), "");
  EXPECT_TRUE(client.idle_waiting());
  EXPECT_EQ(client.raise(mpd::idle::mixer), "");
  EXPECT_EQ(client.raise(mpd::idle::player), "changed: player\nOK\n");
  EXPECT_FALSE(client.idle_waiting());
  EXPECT_EQ(say("idle"), "");
  EXPECT_EQ(say("noidle"), "OK\n");
  EXPECT_EQ(say("noidle"), "");  // outside idle it is ignored
}

TEST_F(MpdClientStateTest, AnEventBeforeIdleIsAnsweredAtOnce) {
  client.raise(mpd::idle::sticker);
  EXPECT_EQ(say("idle sticker player"), "changed: sticker\nOK\n");
}

TEST_F(MpdClientStateTest, AnUnknownIdleSubsystemIsAnArgumentError) {
  EXPECT_EQ(say("idle lyrics"), "ACK [2@0] {idle} Unrecognized idle event: lyrics\n");
}

TEST_F(MpdClientStateTest, ACommandDuringIdleClosesTheConnection) {
  say("idle");
  EXPECT_EQ(client.on_line("status").after, ClientState::After::close_now);
}

TEST_F(MpdClientStateTest, WithAPasswordOnlyHarmlessCommandsRunBeforeIt) {
  mpd::Shared locked{dispatcher, "secret"};
  ClientState c(locked, "locked");
  EXPECT_EQ(c.on_line("status").reply,
            "ACK [4@0] {status} you don't have permission for \"status\"\n");
  const std::string commands = c.on_line("commands").reply;
  EXPECT_TRUE(has(commands, "command: password\n")) << commands;
  EXPECT_FALSE(has(commands, "command: status\n")) << commands;
  EXPECT_EQ(c.on_line("password nope").reply, "ACK [3@0] {password} incorrect password\n");
  EXPECT_EQ(c.on_line("password secret").reply, "OK\n");
  EXPECT_TRUE(has(c.on_line("status").reply, "state: stop\n"));
}

TEST_F(MpdClientStateTest, CommandsListsStickerAndNotcommandsIsEmptyWithoutAPassword) {
  EXPECT_TRUE(has(say("commands"), "command: sticker\n"));
  EXPECT_EQ(say("notcommands"), "OK\n");
}

TEST_F(MpdClientStateTest, PlaybackWithoutAnAudioDeviceAcksWhy) {
  EXPECT_EQ(say("play"),
            "ACK [52@0] {play} no audio device (audio.output is none); play the file yourself\n");
  EXPECT_TRUE(has(say("stop"), "ACK [52@0] {stop} no audio device"));
  EXPECT_TRUE(has(say("pause"), "ACK [52@0] {pause} no audio device"));
  EXPECT_EQ(say("setvol 40"), "OK\n");  // the volume needs no device
  EXPECT_EQ(say("getvol"), "volume: 40\nOK\n");
}

TEST_F(MpdClientStateTest, PlayAPositionPlaysThatQueueEntry) {
  fake.audio = true;
  EXPECT_EQ(say("play 1"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "play 2");
  EXPECT_EQ(say("play 7"), "ACK [2@0] {play} Bad song index\n");
}

TEST_F(MpdClientStateTest, SeekcurMovesRelativeToTheElapsedTime) {
  fake.audio = true;
  fake.current = 1;
  fake.state = "playing";
  EXPECT_EQ(say("seekcur +2"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "seek 4.5");
  EXPECT_EQ(say("seekcur -10"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "seek 0.0");
  fake.state = "idle";
  EXPECT_EQ(say("seekcur 3"), "ACK [55@0] {seekcur} Not playing\n");
}

TEST_F(MpdClientStateTest, PlaylistinfoListsTheQueueWithPositionsAndIds) {
  const std::string q = say("playlistinfo");
  EXPECT_TRUE(has(q, "file: iteration-0/track-1.wav\n")) << q;
  EXPECT_TRUE(has(q, "Pos: 2\nId: 3\n")) << q;
  EXPECT_TRUE(has(q, "file: other/track-3.wav\n")) << q;
  EXPECT_EQ(say("playlistinfo 9"), "ACK [2@0] {playlistinfo} Bad song index\n");
  EXPECT_EQ(say("playlistid 99"), "ACK [50@0] {playlistid} No such song\n");
}

TEST_F(MpdClientStateTest, PlchangesSendsTheQueueOnlyToAClientThatIsBehind) {
  say("status");
  EXPECT_EQ(say("plchanges 1"), "OK\n");
  EXPECT_TRUE(has(say("plchanges 0"), "Id: 1\n"));
  fake.upcoming = {2, 3};
  EXPECT_TRUE(has(say("status"), "playlist: 2\n"));
  EXPECT_EQ(say("plchangesposid 1"), "cpos: 0\nId: 2\ncpos: 1\nId: 3\nOK\n");
}

TEST_F(MpdClientStateTest, TheRootListsIterationsAsFoldersAndNeverAnswersABareOk) {
  const std::string root = say("lsinfo");
  EXPECT_TRUE(has(root, "directory: iteration-0\n")) << root;
  EXPECT_TRUE(has(root, "directory: other\n")) << root;
  EXPECT_TRUE(has(say("lsinfo iteration-0"), "file: iteration-0/track-2.wav\n"));
  EXPECT_EQ(say("lsinfo nowhere"), "ACK [50@0] {lsinfo} No such directory\n");
  EXPECT_TRUE(has(say("listall"), "directory: other\nfile: other/track-3.wav\n"));
}

TEST_F(MpdClientStateTest, FindListAndCountUseTheTags) {
  const std::string found = say("find Genre drums");
  EXPECT_TRUE(has(found, "file: iteration-0/track-1.wav\n")) << found;
  EXPECT_FALSE(has(found, "track-2")) << found;
  EXPECT_TRUE(has(say("search \"(Title contains 'track 2')\""), "track-2.wav"));
  EXPECT_EQ(say("list Album"), "Album: Iteration 0\nAlbum: Other tracks\nOK\n");
  EXPECT_EQ(say("count Album \"Iteration 0\""), "songs: 2\nplaytime: 14\nOK\n");
  EXPECT_EQ(say("list Mood"), "ACK [2@0] {list} Unknown tag type: Mood\n");
}

TEST_F(MpdClientStateTest, StatsHasNonZeroFigures) {
  const std::string s = say("stats");
  EXPECT_TRUE(has(s, "uptime: 12\n")) << s;
  EXPECT_TRUE(has(s, "artists: 1\n")) << s;
  EXPECT_TRUE(has(s, "songs: 3\n")) << s;
  EXPECT_TRUE(has(s, "db_playtime: 18\n")) << s;
}

TEST_F(MpdClientStateTest, AStickerRatingOfEightIsFourStarsAndReadsBackAsEight) {
  EXPECT_EQ(say("sticker set song iteration-0/track-1.wav rating 8"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "rate 1 4.0");
  EXPECT_EQ(say("sticker get song iteration-0/track-1.wav rating"), "sticker: rating=8\nOK\n");
  EXPECT_EQ(say("sticker set song iteration-0/track-1.wav rating 1"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "rate 1 1.0");
  EXPECT_EQ(say("sticker get song iteration-0/track-1.wav rating"), "sticker: rating=1\nOK\n");
  EXPECT_EQ(say("sticker find song \"\" rating"),
            "file: iteration-0/track-1.wav\nsticker: rating=1\nOK\n");
}

TEST_F(MpdClientStateTest, RatingZeroOrDeleteClearsTheRating) {
  say("sticker set song iteration-0/track-2.wav rating 6");
  EXPECT_EQ(say("sticker set song iteration-0/track-2.wav rating 0"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "clear 2");
  EXPECT_EQ(say("sticker get song iteration-0/track-2.wav rating"),
            "ACK [50@0] {sticker} no such sticker\n");
  EXPECT_EQ(say("sticker delete song iteration-0/track-2.wav rating"),
            "ACK [50@0] {sticker} no such sticker\n");
}

TEST_F(MpdClientStateTest, LikeTwoIsFiveStarsAndTheRatingFollows) {
  EXPECT_EQ(say("sticker set song other/track-3.wav like 2"), "OK\n");
  EXPECT_EQ(fake.calls.back(), "rate 3 5.0");
  EXPECT_EQ(say("sticker list song other/track-3.wav"),
            "sticker: like=2\nsticker: rating=10\nOK\n");
}

TEST_F(MpdClientStateTest, PlayCountComesFromTheListeningLogAndWritesAreIgnored) {
  fake.plays = {{{"track_id", 2}, {"started_at", 5000000}, {"seconds_heard", 6.0}, {"reason", "completed"}}};
  EXPECT_EQ(say("sticker get song iteration-0/track-2.wav playCount"), "sticker: playCount=1\nOK\n");
  EXPECT_EQ(say("sticker set song iteration-0/track-2.wav playCount 99"), "OK\n");
  EXPECT_EQ(say("sticker get song iteration-0/track-2.wav playCount"), "sticker: playCount=1\nOK\n");
}

TEST_F(MpdClientStateTest, BadStickerRequestsGetMpdsAcks) {
  EXPECT_EQ(say("sticker get song iteration-0/track-9.wav rating"),
            "ACK [50@0] {sticker} No such song\n");
  EXPECT_EQ(say("sticker get playlist x rating"), "ACK [2@0] {sticker} unknown sticker domain\n");
  EXPECT_EQ(say("sticker fly song iteration-0/track-1.wav"), "ACK [2@0] {sticker} bad request\n");
  EXPECT_EQ(say("sticker set song iteration-0/track-1.wav rating 12"),
            "ACK [2@0] {sticker} rating must be an integer from 0 to 10, not \"12\"\n");
}

TEST_F(MpdClientStateTest, OptionsAreKeptReportedAndRaiseTheOptionsEvent) {
  std::vector<unsigned> raised;
  shared.raise = [&](unsigned f) { raised.push_back(f); };
  EXPECT_EQ(say("random 1"), "OK\n");
  EXPECT_TRUE(has(say("status"), "random: 1\n"));
  ASSERT_FALSE(raised.empty());
  EXPECT_EQ(raised.front(), mpd::idle::options);
  EXPECT_EQ(say("single maybe"),
            "ACK [2@0] {single} Unrecognized single mode, expected 0, 1, or oneshot\n");
}

TEST_F(MpdClientStateTest, TagtypesListsFilledTagsAndFollowsClearAndEnable) {
  EXPECT_TRUE(has(say("tagtypes"), "tagtype: Artist\n"));
  EXPECT_EQ(say("tagtypes clear"), "OK\n");
  EXPECT_EQ(say("tagtypes"), "OK\n");
  EXPECT_EQ(say("tagtypes enable Title"), "OK\n");
  EXPECT_EQ(say("tagtypes"), "tagtype: Title\nOK\n");
  EXPECT_EQ(say("tagtypes enable Mood"), "ACK [2@0] {tagtypes} Unknown tag type\n");
}

TEST_F(MpdClientStateTest, ConfigIsRefusedOnTcpAsMpdDoes) {
  EXPECT_EQ(say("config"), "ACK [4@0] {config} Command only permitted to local clients\n");
}

TEST_F(MpdClientStateTest, CloseAnswersNothingAndClosesAfterFlushing) {
  const auto o = client.on_line("close");
  EXPECT_EQ(o.reply, "");
  EXPECT_EQ(o.after, ClientState::After::close_after_flush);
}

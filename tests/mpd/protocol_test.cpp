// MPD's wire format and the pure rules behind the MPD door: no sockets, no daemon.
#include "mpd/arguments.hpp"
#include "mpd/change_tracker.hpp"
#include "mpd/filter.hpp"
#include "mpd/protocol.hpp"
#include "mpd/song.hpp"
#include "mpd/stickers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tuneloop::mpd;

namespace {

// The message and code a tokenize() failure carries.
std::string tokenize_error(std::string_view line, Ack* code = nullptr, bool* fatal = nullptr) {
  try {
    tokenize(line);
  } catch (const TokenizeError& e) {
    if (code) *code = e.code();
    if (fatal) *fatal = e.fatal();
    return e.what();
  }
  return "";
}

template <typename F>
std::string arg_error(F f) {
  try {
    f();
  } catch (const MpdError& e) {
    EXPECT_EQ(e.code(), Ack::arg);
    return e.what();
  }
  return "";
}

Song sample_song() {
  TrackFacts t;
  t.id = 17;
  t.iteration_number = 2;
  t.tags = "fast, drums";
  t.duration = 8.25;
  t.created_at_ms = 1714557600000;  // 2024-05-01T10:00:00Z
  t.track_number = 3;
  return make_song(t);
}

}  // namespace

// ---------------------------------------------------------------- tokenizer

TEST(MpdTokenize, SplitsACommandAndItsUnquotedArguments) {
  const CommandLine c = tokenize("seek 3 10.5");
  EXPECT_EQ(c.name, "seek");
  EXPECT_EQ(c.args, (std::vector<std::string>{"3", "10.5"}));
}

TEST(MpdTokenize, UnescapesQuotedArgumentsWithSpacesQuotesAndBackslashes) {
  const CommandLine c =
      tokenize(R"(sticker set song "iteration-1/track-2.wav" rating "say \"hi\" \\ there")");
  ASSERT_EQ(c.args.size(), 5u);
  EXPECT_EQ(c.args[2], "iteration-1/track-2.wav");
  EXPECT_EQ(c.args[4], R"(say "hi" \ there)");
}

TEST(MpdTokenize, AcceptsAnEmptyQuotedArgumentAndExtraSpaces) {
  const CommandLine c = tokenize("lsinfo   \"\"   ");
  EXPECT_EQ(c.name, "lsinfo");
  EXPECT_EQ(c.args, std::vector<std::string>{""});
}

TEST(MpdTokenize, AMalformedCommandNameIsFatalWithCodeFive) {
  Ack code{};
  bool fatal = false;
  EXPECT_EQ(tokenize_error("sta:tus", &code, &fatal), "Invalid word character");
  EXPECT_EQ(code, Ack::unknown);
  EXPECT_TRUE(fatal);
  EXPECT_EQ(tokenize_error("9lives", &code, &fatal), "Letter expected");
  EXPECT_EQ(tokenize_error("   ", &code, &fatal), "No command given");
}

TEST(MpdTokenize, BadArgumentsGetCodeTwoAndKeepTheConnection) {
  Ack code{};
  bool fatal = true;
  EXPECT_EQ(tokenize_error("find \"Artist", &code, &fatal), "Missing closing '\"'");
  EXPECT_EQ(code, Ack::arg);
  EXPECT_FALSE(fatal);
  EXPECT_EQ(tokenize_error("find \"a\"b"), "Space expected after closing '\"'");
  EXPECT_EQ(tokenize_error("find it's"), "Invalid unquoted character");
  EXPECT_EQ(tokenize_error("find \"ends with a backslash\\"), "Missing closing '\"'");
}

TEST(MpdTokenize, SixtyFourArgumentsAreTooManyAsInMpd) {
  std::string line = "find";
  for (int i = 0; i < 63; ++i) line += " a";
  EXPECT_EQ(tokenize(line).args.size(), 63u);
  EXPECT_EQ(tokenize_error(line + " a"), "Too many arguments");
}

TEST(MpdTokenize, OnlyLinesStartingWithALowerCaseLetterAreCommands) {
  EXPECT_TRUE(starts_like_a_command("status"));
  EXPECT_FALSE(starts_like_a_command(""));
  EXPECT_FALSE(starts_like_a_command(" status"));
  EXPECT_FALSE(starts_like_a_command("GET / HTTP/1.1"));
  EXPECT_FALSE(starts_like_a_command("Status"));
}

TEST(MpdTokenize, StripLineDropsTrailingWhitespaceAndAnythingAfterANul) {
  EXPECT_EQ(strip_line("status \r"), "status");
  EXPECT_EQ(strip_line(std::string_view("ping\0junk", 9)), "ping");
}

TEST(MpdTokenize, QuoteArgumentRoundTripsThroughTokenize) {
  for (const std::string arg : {"plain", "two words", "", "q\"uote", "back\\slash", "it's"}) {
    const CommandLine c = tokenize("find " + quote_argument(arg));
    ASSERT_EQ(c.args.size(), 1u) << arg;
    EXPECT_EQ(c.args[0], arg);
  }
}

// ---------------------------------------------------------------- replies

TEST(MpdReply, AckLineHasMpdsShape) {
  EXPECT_EQ(ack_line(Ack::no_exist, 2, "sticker", "no such sticker"),
            "ACK [50@2] {sticker} no such sticker\n");
  EXPECT_EQ(ack_line(Ack::unknown, 0, "", "unknown command \"fly\""),
            "ACK [5@0] {} unknown command \"fly\"\n");
}

TEST(MpdReply, ANewlineInAMessageOrValueCannotEndTheLine) {
  EXPECT_EQ(ack_line(Ack::system, 0, "play", "two\nlines"), "ACK [52@0] {play} two lines\n");
  EXPECT_EQ(pair_line("Title", "a\nb"), "Title: a b\n");
}

TEST(MpdReply, IdleNamesParseCaseInsensitivelyAndPrintInMpdsOrder) {
  EXPECT_EQ(parse_idle_name("player"), idle::player);
  EXPECT_EQ(parse_idle_name("STICKER"), idle::sticker);
  EXPECT_EQ(parse_idle_name("lyrics"), 0u);
  EXPECT_EQ(idle_changes(idle::sticker | idle::database | idle::player),
            "changed: database\nchanged: player\nchanged: sticker\n");
}

// ---------------------------------------------------------------- arguments

TEST(MpdArguments, IntegersAndBooleansGetMpdsMessages) {
  EXPECT_EQ(parse_unsigned("42"), 42u);
  EXPECT_EQ(arg_error([] { parse_unsigned("4x"); }), "Integer expected: 4x");
  EXPECT_EQ(arg_error([] { parse_unsigned("101", 100); }), "Number too large: 101");
  EXPECT_EQ(arg_error([] { parse_unsigned("-1"); }), "Number too large: -1");
  EXPECT_EQ(parse_int("-5", -100, 100), -5);
  EXPECT_TRUE(parse_bool("1"));
  EXPECT_EQ(arg_error([] { parse_bool("yes"); }), "Boolean (0/1) expected: yes");
}

TEST(MpdArguments, FloatsAcceptASignAndSongTimesRefuseNegatives) {
  EXPECT_DOUBLE_EQ(parse_float("+10"), 10.0);
  EXPECT_DOUBLE_EQ(parse_float("-2.5"), -2.5);
  EXPECT_EQ(arg_error([] { parse_float("ten"); }), "Float expected: ten");
  EXPECT_EQ(arg_error([] { parse_float("inf"); }), "Float expected: inf");
  EXPECT_EQ(arg_error([] { parse_song_time("-1"); }), "Negative value not allowed: -1");
}

TEST(MpdArguments, RangesAreSingleHalfOpenOpenEndedOrEverything) {
  const Range one = parse_range("3");
  EXPECT_EQ(one.start, 3u);
  EXPECT_EQ(one.end, 4u);
  const Range span = parse_range("2:5");
  EXPECT_EQ(span.start, 2u);
  EXPECT_EQ(span.end, 5u);
  EXPECT_FALSE(parse_range("2:").all());
  EXPECT_EQ(parse_range("2:").start, 2u);
  EXPECT_TRUE(parse_range("-1").all());
  EXPECT_EQ(arg_error([] { parse_range("5:2"); }), "Malformed range: 5:2");
  EXPECT_EQ(arg_error([] { parse_range("x"); }), "Integer or range expected: x");
}

// ---------------------------------------------------------------- songs

TEST(MpdSong, ATrackIsAFileInItsIterationsFolderWithTagsAClientShows) {
  const Song s = sample_song();
  EXPECT_EQ(s.uri, "iteration-2/track-17.wav");
  EXPECT_EQ(s.directory, "iteration-2");
  const std::string info = song_info(s, kAllTags);
  EXPECT_NE(info.find("file: iteration-2/track-17.wav\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Last-Modified: 2024-05-01T10:00:00Z\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Title: Track 17 (fast, drums)\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Artist: tuneloop\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Album: Iteration 2\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Genre: fast\nGenre: drums\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Time: 8\nduration: 8.250\n"), std::string::npos) << info;
}

TEST(MpdSong, AQueueEntryAddsPosAndIdAndTheTagMaskHidesTags) {
  const std::string entry = queue_entry(sample_song(), bit(Tag::title), 4);
  EXPECT_EQ(entry.find("Artist:"), std::string::npos) << entry;
  EXPECT_NE(entry.find("Title: "), std::string::npos) << entry;
  EXPECT_NE(entry.find("Pos: 4\nId: 17\n"), std::string::npos) << entry;
}

TEST(MpdSong, ATrackOutsideAnIterationLivesInOther) {
  TrackFacts t;
  t.id = 5;
  EXPECT_EQ(uri_of(t), "other/track-5.wav");
  EXPECT_EQ(make_song(t).values(Tag::album).front(), "Other tracks");
}

TEST(MpdSong, TrackIdsAreReadOnlyFromOurOwnFileNames) {
  EXPECT_EQ(track_id_from_uri("iteration-0/track-12.wav"), 12);
  EXPECT_FALSE(track_id_from_uri("track-12.wav"));
  EXPECT_FALSE(track_id_from_uri("iteration-0/track-012.wav"));
  EXPECT_FALSE(track_id_from_uri("iteration-0/track-1x.wav"));
  EXPECT_FALSE(track_id_from_uri("iteration-0/song.mp3"));
}

TEST(MpdSong, TagNamesParseCaseInsensitively) {
  EXPECT_EQ(parse_tag("albumartist"), Tag::album_artist);
  EXPECT_EQ(parse_tag("MUSICBRAINZ_TRACKID"), Tag::musicbrainz_trackid);
  EXPECT_FALSE(parse_tag("Mood"));
  EXPECT_EQ(tag_name(Tag::genre), "Genre");
}

// ---------------------------------------------------------------- filters

TEST(MpdFilter, OldStylePairsMatchExactlyForFindAndBySubstringForSearch) {
  const Song s = sample_song();
  EXPECT_TRUE(SongFilter::parse({"Genre", "fast"}, false).match(s));
  EXPECT_FALSE(SongFilter::parse({"Genre", "FAST"}, false).match(s));
  EXPECT_TRUE(SongFilter::parse({"genre", "FA"}, true).match(s));
  EXPECT_TRUE(SongFilter::parse({"any", "drum"}, true).match(s));
  EXPECT_TRUE(SongFilter::parse({"base", "iteration-2"}, false).match(s));
  EXPECT_FALSE(SongFilter::parse({"base", "iteration-1"}, false).match(s));
  EXPECT_TRUE(SongFilter::parse({"Album", "Iteration 2", "Artist", "tuneloop"}, false).match(s));
}

TEST(MpdFilter, ExpressionsCombineWithAndNotAndContains) {
  const Song s = sample_song();
  EXPECT_TRUE(SongFilter::parse({"(Genre == 'drums')"}, false).match(s));
  EXPECT_TRUE(SongFilter::parse({"((Genre == \"drums\") AND (Album contains 'ration 2'))"}, false)
                  .match(s));
  EXPECT_FALSE(SongFilter::parse({"(!(Genre == 'drums'))"}, false).match(s));
  EXPECT_TRUE(SongFilter::parse({"(file == 'iteration-2/track-17.wav')"}, false).match(s));
  EXPECT_TRUE(SongFilter::parse({"(Composer == '')"}, false).match(s));  // absent = empty
  EXPECT_TRUE(SongFilter::parse({"(modified-since '2024-01-01')"}, false).match(s));
}

TEST(MpdFilter, BadFiltersGetMpdsMessages) {
  EXPECT_EQ(arg_error([] { SongFilter::parse({"Genre"}, false); }),
            "Incorrect number of filter arguments");
  EXPECT_EQ(arg_error([] { SongFilter::parse({"Mood", "calm"}, false); }), "Unknown filter type");
  EXPECT_EQ(arg_error([] { SongFilter::parse({"(Mood == 'x')"}, false); }),
            "Unknown filter type: Mood");
  EXPECT_EQ(arg_error([] { SongFilter::parse({"(Genre =~ 'x')"}, false); }),
            "'==' or '!=' expected");
  EXPECT_EQ(arg_error([] { SongFilter::parse({"(Genre == 'x') trailing"}, false); }),
            "Unparsed garbage after expression");
  EXPECT_EQ(arg_error([] { SongFilter::parse({"(Genre == 'x"}, false); }),
            "Closing quote not found");
}

// ---------------------------------------------------------------- stickers

TEST(MpdStickers, RatingZeroClearsAndOneAndTwoAreBothOneStar) {
  EXPECT_TRUE(rating_change("0").clear);
  EXPECT_DOUBLE_EQ(rating_change("1").stars, 1.0);
  EXPECT_DOUBLE_EQ(rating_change("2").stars, 1.0);
  EXPECT_DOUBLE_EQ(rating_change("7").stars, 3.5);
  EXPECT_DOUBLE_EQ(rating_change("8").stars, 4.0);
  EXPECT_DOUBLE_EQ(rating_change("10").stars, 5.0);
  EXPECT_EQ(arg_error([] { rating_change("11"); }),
            "rating must be an integer from 0 to 10, not \"11\"");
  EXPECT_EQ(arg_error([] { rating_change("4.5"); }),
            "rating must be an integer from 0 to 10, not \"4.5\"");
}

TEST(MpdStickers, LikeIsDislikeNeutralOrLike) {
  EXPECT_DOUBLE_EQ(like_change("0").stars, 1.0);
  EXPECT_TRUE(like_change("1").clear);
  EXPECT_DOUBLE_EQ(like_change("2").stars, 5.0);
  EXPECT_EQ(like_value(5), 2);
  EXPECT_EQ(like_value(3), 1);
  EXPECT_EQ(like_value(1.5), 0);
  EXPECT_EQ(rating_value(3.5), 7);
}

TEST(MpdStickers, GetAnswersTheValueSetWhileItsRatingStands) {
  StickerEcho echo;
  echo.remember(4, "rating", "1", 1.0);
  EXPECT_EQ(echo.value(4, "rating", 1.0), "1");
  EXPECT_EQ(echo.value(4, "rating", 3.0), "6");  // rated since by another door
  EXPECT_EQ(echo.value(4, "like", 1.0), "0");
  echo.forget(4);
  EXPECT_EQ(echo.value(4, "rating", 1.0), "2");
}

TEST(MpdStickers, PlayStickersCountTheListeningLog) {
  const std::vector<PlayFacts> plays = {{3000000, 2.5, "skipped"},
                                        {2000000, 8.0, "completed"},
                                        {1000000, 6.0, "stopped"},
                                        {500000, 1.0, "interrupted"}};
  const auto m = play_stickers(plays);
  EXPECT_EQ(m.at("playCount"), "2");
  EXPECT_EQ(m.at("skipCount"), "1");
  EXPECT_EQ(m.at("lastPlayed"), "2000");
  EXPECT_EQ(m.at("lastSkipped"), "3000");
  EXPECT_EQ(m.at("elapsed"), "3");
  EXPECT_TRUE(play_stickers({}).empty());
}

TEST(MpdStickers, FindComparesNumbersAsNumbers) {
  EXPECT_TRUE(sticker_compare("10", ">", "9"));
  EXPECT_TRUE(sticker_compare("8", "=", "8"));
  EXPECT_TRUE(sticker_compare("abc", "<", "abd"));
  EXPECT_FALSE(sticker_compare("2", "<", "2"));
}

// ---------------------------------------------------------------- changes

TEST(MpdChanges, TheFirstLookRaisesNothingAndLaterChangesRaiseTheirSubsystems) {
  ChangeTracker t;
  PlayerSnapshot s{"stop", std::nullopt, 100, {1, 2, 3}};
  EXPECT_EQ(t.observe(s), 0u);
  EXPECT_EQ(t.playlist_version(), 1u);
  s.state = "play";
  s.song_id = 1;
  EXPECT_EQ(t.observe(s), idle::player);
  s.volume = 50;
  EXPECT_EQ(t.observe(s), idle::mixer);
  s.queue = {2, 3};
  s.song_id = 2;
  EXPECT_EQ(t.observe(s), idle::player | idle::playlist);
  EXPECT_EQ(t.playlist_version(), 2u);
  EXPECT_EQ(t.observe(s), 0u);
}

TEST(MpdFilter, AnExpressionNestedThousandsDeepIsRefusedNotRecursedInto) {
  const std::string deep = std::string(5000, '(') + "Title == 'x'" + std::string(5000, ')');
  EXPECT_ANY_THROW(tuneloop::mpd::SongFilter::parse({deep}, false));
}

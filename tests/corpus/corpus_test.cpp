#include "corpus/corpus.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "audio/features.hpp"
#include "corpus/tags.hpp"
#include "tests/support/temp_dir.hpp"

using namespace tuneloop::corpus;
using tuneloop::audio::Audio;
using tuneloop::testing::TempDir;

namespace {

std::vector<nlohmann::json> read_index(const std::filesystem::path& dir) {
  std::ifstream in(dir / "index.jsonl");
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(in, line)) records.push_back(nlohmann::json::parse(line));
  return records;
}

bool has_tag(const std::vector<std::string>& tags, const std::string& word) {
  return std::find(tags.begin(), tags.end(), word) != tags.end();
}

double mean_onset_rate(Renderer& renderer, const std::string& style, int clips) {
  const Style s = parse_style(style);
  double sum = 0;
  for (int i = 0; i < clips; ++i) {
    const PieceSpec spec = choose_piece(clip_seed(99, static_cast<std::uint64_t>(i)), s);
    sum += tuneloop::audio::measure(render_clip(renderer, spec, 4.2)).onset_rate;
  }
  return sum / clips;
}

}  // namespace

TEST(Tags, VocabularyIsSmallUniqueAndStartsWithTheTempoWords) {
  const auto& vocabulary = tag_vocabulary();
  EXPECT_LE(vocabulary.size(), 80u);
  EXPECT_EQ(std::set<std::string>(vocabulary.begin(), vocabulary.end()).size(), vocabulary.size());
  ASSERT_GE(vocabulary.size(), 3u);
  EXPECT_EQ(vocabulary[0], "slow");
  EXPECT_EQ(vocabulary[2], "fast");
  EXPECT_EQ(tag_index("piano"), 6);
  EXPECT_EQ(tag_index("kazoo"), -1);
}

TEST(Tags, AnUnknownStyleWordIsRejectedByName) {
  try {
    parse_style("slow kazoo");
    FAIL() << "expected StyleError";
  } catch (const StyleError& e) {
    EXPECT_NE(std::string(e.what()).find("kazoo"), std::string::npos);
  }
  EXPECT_TRUE(parse_style("").empty());
  EXPECT_FALSE(parse_style("Slow, MINOR").empty());
}

TEST(Tags, AGenerationsTagsAreCompletedAsCorpusClipsCarryThem) {
  const auto& vocabulary = tag_vocabulary();
  const auto& keys = tag_categories()[kKeyCategory].words;
  std::set<std::string> drawn;
  for (std::uint64_t seed = 0; seed < 48; ++seed) {
    const auto tags = conditioning_tags({"slow", "minor"}, vocabulary, seed);
    ASSERT_EQ(tags.size(), 4u);
    EXPECT_EQ(tags[0], "slow");
    EXPECT_EQ(tags[1], "minor");
    EXPECT_NE(std::find(keys.begin(), keys.end(), tags[2]), keys.end()) << tags[2];
    EXPECT_EQ(tags[3], tags[2].substr(4) + "-minor");
    EXPECT_EQ(conditioning_tags({"slow", "minor"}, vocabulary, seed), tags) << "seed " << seed;
    drawn.insert(tags[2]);
  }
  EXPECT_GE(drawn.size(), 8u) << "48 seeds should spread over most of the twelve keys";

  // A key given with the mode is kept; a scale brings its key and mode; no mode, no key.
  EXPECT_EQ(conditioning_tags({"major", "key-d"}, vocabulary, 5),
            (std::vector<std::string>{"major", "key-d", "d-major"}));
  EXPECT_EQ(conditioning_tags({"piano", "c#-modal"}, vocabulary, 5),
            (std::vector<std::string>{"piano", "c#-modal", "key-c#", "modal"}));
  EXPECT_EQ(conditioning_tags({"fast", "piano"}, vocabulary, 5),
            (std::vector<std::string>{"fast", "piano"}));
  EXPECT_TRUE(conditioning_tags({}, vocabulary, 5).empty());

  // Weights that know fewer words get only the words they know.
  const auto& scales = tag_categories()[kScaleCategory].words;
  const std::vector<std::string> without_scales(vocabulary.begin(),
                                                vocabulary.end() - scales.size());
  const auto keyed = conditioning_tags({"minor"}, without_scales, 5);
  ASSERT_EQ(keyed.size(), 2u);
  EXPECT_EQ(keyed[1].rfind("key-", 0), 0u);
  const std::vector<std::string> without_keys(without_scales.begin(),
                                              without_scales.end() - keys.size());
  EXPECT_EQ(conditioning_tags({"modal"}, without_keys, 5), (std::vector<std::string>{"modal"}));
}

TEST(Tags, AScaleInAStyleAsksForItsKeyAndMode) {
  const Style style = parse_style("eb-minor piano");
  EXPECT_EQ(style.allowed[kKeyCategory], (std::vector<std::string>{"key-eb"}));
  EXPECT_EQ(style.allowed[kModeCategory], (std::vector<std::string>{"minor"}));
  EXPECT_TRUE(style.allowed[kScaleCategory].empty());
  EXPECT_EQ(scale_tag("modal", "key-f#"), "f#-modal");
}

TEST(Composer, ChoicesObeyTheStyleConstraint) {
  const Style style = parse_style("slow minor piano");
  for (std::uint64_t i = 0; i < 50; ++i) {
    const PieceSpec spec = choose_piece(clip_seed(3, i), style);
    EXPECT_GE(spec.tempo_bpm, 60);
    EXPECT_LT(spec.tempo_bpm, 90);
    EXPECT_EQ(spec.mode, "minor");
    EXPECT_EQ(spec.family, "piano");
    const auto tags = spec.tags();
    EXPECT_TRUE(has_tag(tags, "slow") && has_tag(tags, "minor") && has_tag(tags, "piano"));
    EXPECT_EQ(tags.size(), tag_categories().size());
  }
}

TEST(Composer, EveryClipCarriesItsKeyAndAKeyInTheStyleFixesTheTonic) {
  for (std::uint64_t i = 0; i < 40; ++i) {
    const PieceSpec spec = choose_piece(clip_seed(5, i), Style{});
    std::string name = spec.key_name();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    EXPECT_TRUE(has_tag(spec.tags(), "key-" + name)) << spec.key_name();

    const PieceSpec in_a = choose_piece(clip_seed(5, i), parse_style("minor key-a"));
    EXPECT_EQ(in_a.key, 9);
    EXPECT_EQ(in_a.mode, "minor");
    EXPECT_TRUE(has_tag(in_a.tags(), "key-a"));
    EXPECT_TRUE(has_tag(in_a.tags(), "a-minor"));
  }
  // The key became a tag without changing the draws: the first clips of a
  // corpus with seed 1 are the ones `corpus --seed 1` made before (read from that index).
  const std::vector<std::tuple<std::string, std::string, int>> before = {
      {"Ab", "minor", 82}, {"F#", "mixolydian", 85}, {"Bb", "dorian", 136},
      {"C#", "minor", 93}, {"F#", "dorian", 157},    {"E", "major", 161}};
  for (std::uint64_t i = 0; i < before.size(); ++i) {
    const PieceSpec spec = choose_piece(clip_seed(1, i), Style{});
    EXPECT_EQ(std::tuple(spec.key_name(), spec.mode, spec.tempo_bpm), before[i]) << "clip " << i;
  }
  // Two keys allowed: both occur, nothing else does.
  std::set<int> keys;
  for (std::uint64_t i = 0; i < 40; ++i)
    keys.insert(choose_piece(clip_seed(6, i), parse_style("key-c key-f#")).key);
  EXPECT_EQ(keys, (std::set<int>{0, 6}));
}

TEST(Composer, UnconstrainedChoicesCoverTheWholeVocabulary) {
  std::set<std::string> seen;
  for (std::uint64_t i = 0; i < 300; ++i) {
    for (const auto& tag : choose_piece(clip_seed(1, i), Style{}).tags()) seen.insert(tag);
  }
  for (const auto& word : tag_vocabulary())
    EXPECT_TRUE(seen.count(word)) << word << " never chosen";
}

TEST(Composer, EventsAreSortedBalancedAndFillTheClip) {
  const PieceSpec spec = choose_piece(clip_seed(1, 7), parse_style("dense drums"));
  const Piece piece = compose(spec, 5.0);
  ASSERT_FALSE(piece.events.empty());
  int balance = 0;
  double last_on = 0;
  for (std::size_t i = 0; i < piece.events.size(); ++i) {
    if (i > 0) {
      EXPECT_LE(piece.events[i - 1].time, piece.events[i].time);
    }
    balance += piece.events[i].velocity > 0 ? 1 : -1;
    if (piece.events[i].velocity > 0) last_on = piece.events[i].time;
  }
  EXPECT_EQ(balance, 0);
  EXPECT_GT(last_on, 4.0);
}

TEST(Renderer, ARenderedClipIsNotSilentAndHasTheRequestedLength) {
  Renderer renderer;
  const PieceSpec spec = choose_piece(clip_seed(1, 0), Style{});
  const Audio clip = render_clip(renderer, spec, 1.5);
  EXPECT_EQ(clip.sample_rate, 16000);
  EXPECT_NEAR(static_cast<double>(clip.samples.size()), 24000.0, 1.0);
  EXPECT_GT(tuneloop::audio::rms_dbfs(clip.samples), -30.0);
  // Not silent at the end either: the last quarter second still sounds.
  const std::vector<float> tail(clip.samples.end() - 4000, clip.samples.end());
  EXPECT_GT(tuneloop::audio::rms_dbfs(tail), -50.0);
}

TEST(Renderer, AClipDoesNotDependOnWhatWasRenderedBefore) {
  Renderer renderer;
  const PieceSpec a = choose_piece(clip_seed(2, 0), parse_style("loud drums"));
  const PieceSpec b = choose_piece(clip_seed(2, 1), parse_style("pad dense"));
  const Audio first = render_clip(renderer, a, 1.0);
  render_clip(renderer, b, 1.0);
  const Audio again = render_clip(renderer, a, 1.0);
  EXPECT_EQ(first.samples, again.samples);
}

TEST(Renderer, AMissingSoundfontIsReportedByPath) {
  try {
    Renderer renderer("/nonexistent/none.sf2");
    FAIL() << "expected RenderError";
  } catch (const RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/none.sf2"), std::string::npos);
  }
}

TEST(Corpus, TheSameSeedGivesByteIdenticalClipsWhateverTheJobs) {
  TempDir dir;
  CorpusOptions options;
  options.count = 3;
  options.seed = 5;
  options.seconds = 1.0;
  options.out_dir = dir.file("a");
  options.jobs = 2;
  generate_corpus(options);
  options.out_dir = dir.file("b");
  options.jobs = 1;
  generate_corpus(options);
  options.out_dir = dir.file("c");
  options.seed = 6;
  generate_corpus(options);
  using tuneloop::audio::sha256_file;
  for (const char* clip : {"clips/00000.wav", "clips/00001.wav", "clips/00002.wav"}) {
    EXPECT_EQ(sha256_file(dir.file("a") + "/" + clip), sha256_file(dir.file("b") + "/" + clip))
        << clip;
    EXPECT_NE(sha256_file(dir.file("a") + "/" + clip), sha256_file(dir.file("c") + "/" + clip))
        << clip;
  }
  EXPECT_EQ(sha256_file(dir.file("a/index.jsonl")), sha256_file(dir.file("b/index.jsonl")));
}

TEST(Composer, TheRichVarietyKeepsEveryTagAndTheClassicChoicesItDoesNotWidenOrAdd) {
  for (std::uint64_t i = 0; i < 300; ++i) {
    const PieceSpec classic = choose_piece(clip_seed(3, i), Style{});
    PieceSpec rich = classic;
    vary_piece(rich, 3);
    EXPECT_EQ(rich.tags(), classic.tags()) << i;
    EXPECT_EQ(rich.tempo_bpm, classic.tempo_bpm);
    EXPECT_EQ(rich.progression, classic.progression);
    EXPECT_EQ(rich.bass_program < 0, classic.bass_program < 0) << i;
    EXPECT_TRUE(rich.soundfont >= 0 && rich.soundfont < 3);
    EXPECT_LE(std::abs(rich.level_db), 2.5);
    // Cut from inside the first four bars, so the clip does not open on the piece's start.
    EXPECT_GE(rich.start_seconds, 0.0);
    EXPECT_LT(rich.start_seconds, 16.0 * 60.0 / rich.tempo_bpm);
    EXPECT_GT(rich.crash_every_bars, 0);
  }
  // The classic corpus is untouched by the rich one's draws.
  const PieceSpec classic = choose_piece(clip_seed(3, 0), Style{});
  EXPECT_EQ(classic.soundfont, 0);
  EXPECT_EQ(classic.chorus, 0);
  EXPECT_LT(classic.start_seconds, 0.0);
  EXPECT_EQ(classic.crash_every_bars, 0);
}

TEST(Corpus, ARichCorpusIsByteIdenticalWhateverTheJobsAndNamesEachClipsSoundfontAndCut) {
  TempDir dir;
  CorpusOptions options;
  options.count = 6;
  options.seed = 7;
  options.seconds = 1.0;
  options.variety = "rich";
  options.out_dir = dir.file("a");
  options.jobs = 2;
  generate_corpus(options);
  options.out_dir = dir.file("b");
  options.jobs = 1;
  generate_corpus(options);
  using tuneloop::audio::sha256_file;
  EXPECT_EQ(sha256_file(dir.file("a/index.jsonl")), sha256_file(dir.file("b/index.jsonl")));
  std::set<std::string> fonts;
  const auto records = read_index(dir.path() / "a");
  ASSERT_EQ(records.size(), 6u);
  for (const auto& r : records) {
    const std::string clip = r["file"].get<std::string>();
    EXPECT_EQ(sha256_file(dir.file("a/" + clip)), sha256_file(dir.file("b/" + clip))) << clip;
    fonts.insert(r.at("soundfont").get<std::string>());
    EXPECT_GE(r.at("start_seconds").get<double>(), 0.0) << r.dump();
    const Audio audio = tuneloop::audio::read_audio(dir.file("a/" + clip));
    EXPECT_EQ(audio.samples.size(), 16000u);
    EXPECT_GT(tuneloop::audio::rms_dbfs(audio.samples), -30.0) << r.dump();
  }
  EXPECT_GE(fonts.size(), 2u) << "six clips all on one soundfont";
  options.variety = "lush";
  options.out_dir = dir.file("c");
  EXPECT_THROW(generate_corpus(options), std::invalid_argument);
}

TEST(Corpus, IndexListsEveryClipWithTagsMatchingTheStyle) {
  TempDir dir;
  CorpusOptions options;
  options.count = 3;
  options.seconds = 0.5;
  options.style = "fast major brass";
  options.out_dir = dir.file("corpus");
  int last_done = 0;
  generate_corpus(options, [&](int done, int total) {
    EXPECT_EQ(total, 3);
    last_done = done;
  });
  EXPECT_EQ(last_done, 3);
  const auto records = read_index(dir.path() / "corpus");
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto tags = records[i]["tags"].get<std::vector<std::string>>();
    EXPECT_TRUE(has_tag(tags, "fast") && has_tag(tags, "major") && has_tag(tags, "brass"))
        << records[i].dump();
    for (const auto& tag : tags) EXPECT_GE(tag_index(tag), 0) << tag;
    EXPECT_GE(records[i]["tempo"].get<int>(), 130);
    const Audio clip =
        tuneloop::audio::read_audio(dir.file("corpus/" + records[i]["file"].get<std::string>()));
    EXPECT_EQ(clip.samples.size(), 8000u);
  }
}

TEST(Corpus, AnUnknownStyleStopsBeforeWritingAnything) {
  TempDir dir;
  CorpusOptions options;
  options.count = 2;
  options.style = "slow kazoo";
  options.out_dir = dir.file("corpus");
  EXPECT_THROW(generate_corpus(options), StyleError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("corpus/index.jsonl")));
}

// Pads are left out on purpose: their slow attacks and modulation give the detector
// spurious onsets (about 4.8/s measured against 3.0/s composed).
TEST(Corpus, FastDenseDrumClipsHaveMoreOnsetsThanSlowSparseClipsWithoutDrums) {
  Renderer renderer;
  const double fast = mean_onset_rate(renderer, "fast drums dense", 8);
  const double slow = mean_onset_rate(renderer, "slow nodrums sparse", 8);
  EXPECT_GT(fast, slow * 1.4) << "fast drums " << fast << " onsets/s, slow sparse " << slow;
}

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace tuneloop::config;

namespace {

// A fresh temp folder plus the environment variables a test touches, restored afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME",
                             "TUNELOOP_TEST_MUSIC", "TUNELOOP_TEST_UNSET"}) {
      const char* value = std::getenv(name);
      saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
    }
    // Tests must not see the developer's real ~/.config/tuneloop/config.yaml.
    ::setenv("XDG_CONFIG_HOME", (dir_ / "xdg-config").c_str(), 1);
    ::unsetenv("TUNELOOP_TEST_UNSET");
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }
  fs::path write(const std::string& name, const std::string& text) {
    fs::path file = dir_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }
  // Loads `text` from a file and returns the error it must raise.
  ConfigError error_for(const std::string& text, const std::string& name = "bad.yaml") {
    fs::path file = write(name, text);
    try {
      load_config_file(file);
    } catch (const ConfigError& e) {
      return e;
    }
    ADD_FAILURE() << "no error for:\n" << text;
    return ConfigError("none");
  }
  tuneloop::testing::TempDir tmp_{"tuneloop-config"};
  const fs::path dir_ = tmp_.path();
  std::map<std::string, std::optional<std::string>> saved_;
};

void expect_names(const ConfigError& e, const std::string& file_name, int line,
                  const std::string& key) {
  std::string message = e.what();
  EXPECT_NE(message.find(file_name + ":" + std::to_string(line) + ":"), std::string::npos)
      << message;
  EXPECT_NE(message.find(key), std::string::npos) << message;
  EXPECT_EQ(e.line(), line) << message;
  EXPECT_GT(e.column(), 0) << message;
  EXPECT_EQ(e.key(), key) << message;
}

fs::path default_yaml_file() {
  return fs::path(TUNELOOP_SOURCE_DIR) / "config" / "default.yaml";
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_F(ConfigTest, EveryKeyHasItsDocumentedBuiltInDefault) {
  ::setenv("XDG_DATA_HOME", "/xdg/data", 1);
  ::setenv("XDG_RUNTIME_DIR", "/xdg/run", 1);
  const Config c;
  EXPECT_EQ(c.paths.data_dir, fs::path("/xdg/data/tuneloop"));
  EXPECT_EQ(c.paths.socket, fs::path("/xdg/run/tuneloop.sock"));
  EXPECT_EQ(c.paths.log_file, fs::path());
  EXPECT_EQ(c.paths.weights_dir, fs::path());
  EXPECT_EQ(c.paths.ui_dir, fs::path());
  EXPECT_EQ(c.daemon.log_level, LogLevel::info);
  EXPECT_EQ(c.daemon.tcp_port, 0);
  EXPECT_EQ(c.daemon.max_line_bytes, 1048576u);
  EXPECT_EQ(c.daemon.listener, "default");
  EXPECT_TRUE(c.http.enabled);
  EXPECT_EQ(c.http.port, 8754);
  EXPECT_EQ(c.http.bind, "127.0.0.1");
  EXPECT_EQ(c.audio.output, AudioOutput::automatic);
  EXPECT_EQ(c.audio.sample_rate, 16000);
  EXPECT_EQ(c.audio.device, "");
  EXPECT_EQ(c.audio.buffer_frames, 256);
  EXPECT_DOUBLE_EQ(c.audio.ring_seconds, 2.0);
  EXPECT_DOUBLE_EQ(c.audio.checkpoint_seconds, 5.0);
  EXPECT_DOUBLE_EQ(c.audio.volume, 1.0);
  EXPECT_DOUBLE_EQ(c.feedback.skip_fraction, 0.5);
  EXPECT_DOUBLE_EQ(c.feedback.rating_weight, 0.7);
  EXPECT_DOUBLE_EQ(c.feedback.listen_weight, 0.3);
  EXPECT_DOUBLE_EQ(c.feedback.unrated_weight, 0.5);
  EXPECT_DOUBLE_EQ(c.feedback.replay_bonus, 0.1);
  EXPECT_DOUBLE_EQ(c.feedback.recency_half_life_days, 0.0);
  EXPECT_DOUBLE_EQ(c.dataset.percentile, 75.0);
  EXPECT_TRUE(c.dataset.include_songs);
  EXPECT_FALSE(c.dataset.use_negatives);
  EXPECT_DOUBLE_EQ(c.dataset.negative_percentile, 25.0);
  EXPECT_EQ(c.dataset.min_ratings, 5);
  EXPECT_EQ(c.schedule.interval_minutes, 0);
  EXPECT_EQ(c.schedule.after_new_ratings, 10);
  EXPECT_EQ(c.schedule.time_of_day, "");
  EXPECT_EQ(c.schedule.min_feedback, 8);
  EXPECT_EQ(c.model.device, Device::automatic);
  EXPECT_EQ(c.model.threads, 1);
  EXPECT_EQ(c.model.steps, 25);
  EXPECT_DOUBLE_EQ(c.model.guidance, 3.0);
  EXPECT_EQ(c.training.rank, 8);
  EXPECT_DOUBLE_EQ(c.training.alpha, 8.0);
  EXPECT_DOUBLE_EQ(c.training.dropout, 0.0);
  EXPECT_EQ(c.training.targets, std::vector<std::string>{"*"});
  EXPECT_EQ(c.training.steps, 300);
  EXPECT_EQ(c.training.batch_size, 8);
  EXPECT_DOUBLE_EQ(c.training.learning_rate, 1e-3);
  EXPECT_EQ(c.training.threads, 2);
  EXPECT_EQ(c.training.checkpoint_every, 50);
  EXPECT_EQ(c.training.seed, 0);
  EXPECT_EQ(c.training.strength_scales, std::vector<double>{1.0});
  EXPECT_EQ(c.generation.tracks_per_iteration, 16);
  EXPECT_DOUBLE_EQ(c.generation.seeded_fraction, 0.5);
  EXPECT_DOUBLE_EQ(c.generation.strength, 0.6);
  EXPECT_DOUBLE_EQ(c.generation.seconds, 8.0);
  EXPECT_TRUE(c.generation.tags.empty());
}

TEST_F(ConfigTest, LoadingTheShippedDefaultYamlGivesTheBuiltInDefaults) {
  EXPECT_EQ(load_config_file(default_yaml_file()), Config{});
}

TEST_F(ConfigTest, ShippedDefaultYamlIsExactlyWhatTheKeyTableGenerates) {
  std::string expected = default_yaml();
  if (read_all(default_yaml_file()) != expected) {
    fs::path fresh = fs::path(TUNELOOP_BINARY_DIR) / "default.yaml.expected";
    std::ofstream(fresh) << expected;
    FAIL() << "config/default.yaml differs from the key table; the generated text is in " << fresh
           << " (copy it over config/default.yaml)";
  }
}

TEST_F(ConfigTest, EveryDocumentedKeyAppearsInDefaultYamlWithAComment) {
  std::string text = read_all(default_yaml_file());
  auto keys = documented_keys();
  ASSERT_GE(keys.size(), 50u);
  for (const auto& key : keys) {
    EXPECT_FALSE(key.doc.empty()) << key.key;
    EXPECT_FALSE(key.default_value.empty()) << key.key;
    std::string leaf = key.key.substr(key.key.find('.') + 1);
    std::string expected_start = "  " + leaf + ": " + key.default_value;
    bool found = false;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
      if (line.starts_with(expected_start) && line.find("# " + key.doc) != std::string::npos)
        found = true;
    EXPECT_TRUE(found) << key.key << " with its default and comment is missing";
  }
}

TEST_F(ConfigTest, DocumentedKeysShowDefaultsAsYamlText) {
  std::map<std::string, std::string> defaults;
  for (const auto& key : documented_keys()) defaults[key.key] = key.default_value;
  EXPECT_EQ(defaults.at("audio.sample_rate"), "16000");
  EXPECT_EQ(defaults.at("audio.output"), "auto");
  EXPECT_EQ(defaults.at("training.learning_rate"), "0.001");
  EXPECT_EQ(defaults.at("paths.data_dir"), "\"\"");
  EXPECT_EQ(defaults.at("generation.tags"), "[]");
  EXPECT_EQ(defaults.at("http.enabled"), "true");
}

TEST_F(ConfigTest, AConfigWithEveryKeyChangedSurvivesToYamlAndBack) {
  Config c;
  c.paths = {"/d", "/s.sock", "/l.log", "/w", "/u"};
  c.daemon = {LogLevel::debug, 7000, 4096, 90, "alice"};
  c.http = {false, 9000, "0.0.0.0"};
  c.audio = {AudioOutput::none, 48000, "pulse \"x\"", 512, 3.5, 2.0, 0.25};
  c.feedback = {0.4, 0.6, 0.4, 0.2, 0.05, 14.0};
  c.dataset = {80.0, false, true, 10.0, 3};
  c.schedule = {60, 20, "03:30", 12};
  c.model = {Device::cuda, 4, 10, 1.5, Vocoder::griffin_lim, 2.5};
  c.training = {AdapterInit::parent, Objective::kto, 2.5, 4, 16.0, 0.1, 3.0, {"down.*", "mid"}, 100, 4,
                5e-4, 1, 10, 42, 8, {0.25, 2.0}};
  c.generation = {8, 0.25, 0.5, 0.8, 4.5, {"slow", "minor"}, 6, 3, 0.5, 0.0};
  std::string yaml = to_yaml(c);
  EXPECT_EQ(load_config_string(yaml, dir_ / "printed.yaml"), c) << yaml;
  EXPECT_EQ(load_config_string(to_yaml(Config{}), dir_ / "printed.yaml"), Config{});
}

TEST_F(ConfigTest, KeysLeftOutKeepTheirDefaultsAndGivenKeysAreApplied) {
  fs::path file = write("partial.yaml",
                        "audio:\n  sample_rate: 44100\n  output: none\n"
                        "generation:\n  tags: slow, minor piano\n"
                        "schedule:\n  time_of_day: \"07:05\"\n");
  Config c = load_config_file(file);
  EXPECT_EQ(c.audio.sample_rate, 44100);
  EXPECT_EQ(c.audio.output, AudioOutput::none);
  EXPECT_EQ(c.generation.tags, (std::vector<std::string>{"slow", "minor", "piano"}));
  EXPECT_EQ(minutes_since_midnight(c.schedule.time_of_day), 7 * 60 + 5);
  Config expected;
  expected.audio.sample_rate = 44100;
  expected.audio.output = AudioOutput::none;
  expected.generation.tags = {"slow", "minor", "piano"};
  expected.schedule.time_of_day = "07:05";
  EXPECT_EQ(c, expected);
}

TEST_F(ConfigTest, AnEmptyFileGivesTheBuiltInDefaults) {
  EXPECT_EQ(load_config_file(write("empty.yaml", "")), Config{});
  EXPECT_EQ(load_config_file(write("comments.yaml", "# nothing\naudio:\n")), Config{});
}

TEST_F(ConfigTest, AnUnknownKeyNamesFileLineKeyAndSuggestsTheCloseName) {
  auto e = error_for("audio:\n  volume: 0.5\n  sampel_rate: 8000\n");
  expect_names(e, "bad.yaml", 3, "audio.sampel_rate");
  EXPECT_NE(std::string(e.what()).find("did you mean 'audio.sample_rate'"), std::string::npos)
      << e.what();
}

TEST_F(ConfigTest, AKeyInTheWrongSectionSuggestsWhereItBelongs) {
  auto e = error_for("audio:\n  percentile: 50\n");
  expect_names(e, "bad.yaml", 2, "audio.percentile");
  EXPECT_NE(std::string(e.what()).find("did you mean 'dataset.percentile'"), std::string::npos)
      << e.what();
}

TEST_F(ConfigTest, AnUnknownSectionIsAnError) {
  auto e = error_for("daemon:\n  tcp_port: 0\naudoi:\n  volume: 1\n");
  expect_names(e, "bad.yaml", 3, "audoi");
  EXPECT_NE(std::string(e.what()).find("did you mean 'audio'"), std::string::npos) << e.what();
}

TEST_F(ConfigTest, AWrongTypeSaysWhatWasExpectedAndWhatWasFound) {
  auto e = error_for("# comment\naudio:\n  sample_rate: abc\n");
  expect_names(e, "bad.yaml", 3, "audio.sample_rate");
  EXPECT_NE(std::string(e.what()).find("expected a whole number, got 'abc'"), std::string::npos)
      << e.what();

  e = error_for("feedback:\n  rating_weight: [1, 2]\n");
  expect_names(e, "bad.yaml", 2, "feedback.rating_weight");
  EXPECT_NE(std::string(e.what()).find("expected a number, got a list"), std::string::npos);

  e = error_for("http:\n  enabled: maybe\n");
  expect_names(e, "bad.yaml", 2, "http.enabled");

  e = error_for("model:\n  threads: 2.5\n");
  expect_names(e, "bad.yaml", 2, "model.threads");

  e = error_for("audio:\n  ring_seconds:\n");
  expect_names(e, "bad.yaml", 2, "audio.ring_seconds");
  EXPECT_NE(std::string(e.what()).find("got nothing"), std::string::npos) << e.what();
}

TEST_F(ConfigTest, AnOutOfRangeValueNamesTheBounds) {
  auto e = error_for("audio:\n  sample_rate: 4000\n");
  expect_names(e, "bad.yaml", 2, "audio.sample_rate");
  EXPECT_NE(std::string(e.what()).find("must be between 8000 and 192000"), std::string::npos)
      << e.what();

  e = error_for("audio:\n  volume: 1.5\n");
  expect_names(e, "bad.yaml", 2, "audio.volume");

  e = error_for("training:\n  learning_rate: 0\n");
  expect_names(e, "bad.yaml", 2, "training.learning_rate");
  EXPECT_NE(std::string(e.what()).find("greater than 0"), std::string::npos) << e.what();

  e = error_for("schedule:\n  time_of_day: \"25:00\"\n");
  expect_names(e, "bad.yaml", 2, "schedule.time_of_day");

  e = error_for("daemon:\n  listener: \"\"\n");
  expect_names(e, "bad.yaml", 2, "daemon.listener");

  e = error_for("training:\n  targets: []\n");
  expect_names(e, "bad.yaml", 2, "training.targets");

  for (const char* bad : {"[0, 1]", "[1, 4.5]", "[]", "[0.5, strong]"}) {
    e = error_for(std::string("training:\n  strength_scales: ") + bad + "\n");
    expect_names(e, "bad.yaml", 2, "training.strength_scales");
  }
  EXPECT_EQ(load_config_string("training:\n  strength_scales: 0.6\n", dir_ / "one.yaml")
                .training.strength_scales,
            std::vector<double>{0.6});
}

TEST_F(ConfigTest, ABadEnumListsTheAllowedValues) {
  auto e = error_for("model:\n  device: tpu\n");
  expect_names(e, "bad.yaml", 2, "model.device");
  EXPECT_NE(std::string(e.what()).find("'tpu' is not one of: auto, cpu, cuda"), std::string::npos)
      << e.what();

  e = error_for("daemon:\n  log_level: verbose\n");
  expect_names(e, "bad.yaml", 2, "daemon.log_level");
  EXPECT_NE(std::string(e.what()).find("trace, debug, info, warn, error"), std::string::npos);
}

TEST_F(ConfigTest, AYamlSyntaxErrorNamesFileAndLine) {
  auto e = error_for("audio:\n  volume: 1\n  device: [unclosed\n");
  std::string message = e.what();
  EXPECT_NE(message.find("bad.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("syntax error"), std::string::npos) << message;
  EXPECT_GE(e.line(), 3) << message;
  EXPECT_NE(message.find(":" + std::to_string(e.line()) + ":"), std::string::npos) << message;

  e = error_for("audio:\n  volume: 1\n bad indentation: [\n");
  EXPECT_GT(e.line(), 0) << e.what();
}

TEST_F(ConfigTest, AKeyGivenTwiceIsAnError) {
  auto e = error_for("audio:\n  volume: 1\n  volume: 0.5\n");
  expect_names(e, "bad.yaml", 3, "audio.volume");
}

TEST_F(ConfigTest, ASectionThatIsNotAMappingIsAnError) {
  auto e = error_for("audio: 5\n");
  expect_names(e, "bad.yaml", 1, "audio");
}

TEST_F(ConfigTest, AMissingExplicitConfigFileIsAnErrorNamingIt) {
  fs::path missing = dir_ / "nowhere.yaml";
  try {
    load_config(LoadOptions{missing, std::nullopt});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST_F(ConfigTest, XdgVariablesChooseTheDefaultLocations) {
  ::setenv("XDG_DATA_HOME", "/xdg/data", 1);
  ::setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
  ::setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
  EXPECT_EQ(default_data_dir(), fs::path("/xdg/data/tuneloop"));
  EXPECT_EQ(default_socket_path(), fs::path("/run/user/1234/tuneloop.sock"));
  EXPECT_EQ(default_config_path(), fs::path("/xdg/config/tuneloop/config.yaml"));
}

TEST_F(ConfigTest, WithoutXdgVariablesDefaultsFallBackToHomeAndTmp) {
  ::setenv("HOME", "/home/listener", 1);
  ::unsetenv("XDG_DATA_HOME");
  ::unsetenv("XDG_RUNTIME_DIR");
  ::setenv("XDG_CONFIG_HOME", "relative/is/ignored", 1);
  EXPECT_EQ(default_data_dir(), fs::path("/home/listener/.local/share/tuneloop"));
  EXPECT_EQ(default_config_path(), fs::path("/home/listener/.config/tuneloop/config.yaml"));
  EXPECT_EQ(default_socket_path(),
            fs::path("/tmp/tuneloop-" + std::to_string(::getuid()) + "/tuneloop.sock"));
  Config c;
  EXPECT_EQ(c.paths.data_dir, fs::path("/home/listener/.local/share/tuneloop"));
}

TEST_F(ConfigTest, PathsExpandTildeAndEnvironmentVariables) {
  ::setenv("HOME", "/home/listener", 1);
  ::setenv("TUNELOOP_TEST_MUSIC", "/srv/music", 1);
  Config c = load_config_string(
      "paths:\n"
      "  data_dir: ~/tuneloop-data\n"
      "  log_file: $TUNELOOP_TEST_MUSIC/log.txt\n"
      "  weights_dir: ${TUNELOOP_TEST_MUSIC}/weights\n"
      "  ui_dir: ${TUNELOOP_TEST_UNSET:-/opt/ui}\n"
      "  socket: \"~\"\n",
      dir_ / "x.yaml");
  EXPECT_EQ(c.paths.data_dir, fs::path("/home/listener/tuneloop-data"));
  EXPECT_EQ(c.paths.log_file, fs::path("/srv/music/log.txt"));
  EXPECT_EQ(c.paths.weights_dir, fs::path("/srv/music/weights"));
  EXPECT_EQ(c.paths.ui_dir, fs::path("/opt/ui"));
  EXPECT_EQ(c.paths.socket, fs::path("/home/listener"));
}

TEST_F(ConfigTest, AnUnsetVariableInAPathIsAnError) {
  auto e = error_for("paths:\n  data_dir: $TUNELOOP_TEST_UNSET/data\n");
  expect_names(e, "bad.yaml", 2, "paths.data_dir");
  EXPECT_NE(std::string(e.what()).find("TUNELOOP_TEST_UNSET"), std::string::npos) << e.what();
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigFilesFolder) {
  fs::path file =
      write("etc/tuneloop.yaml", "paths:\n  data_dir: data\n  log_file: ../logs/d.log\n");
  Config c = load_config_file(file);
  EXPECT_EQ(c.paths.data_dir, dir_ / "etc" / "data");
  EXPECT_EQ(c.paths.log_file, dir_ / "logs" / "d.log");
}

TEST_F(ConfigTest, AnEmptyPathMeansTheComputedDefault) {
  ::setenv("XDG_DATA_HOME", "/xdg/data", 1);
  Config c = load_config_string("paths:\n  data_dir: \"\"\n  weights_dir: \"\"\n");
  EXPECT_EQ(c.paths.data_dir, fs::path("/xdg/data/tuneloop"));
  EXPECT_EQ(c.paths.weights_dir, fs::path());
}

TEST_F(ConfigTest, TheDefaultConfigFileIsUsedOnlyWhenPresent) {
  ::setenv("XDG_CONFIG_HOME", (dir_ / "cfg").c_str(), 1);
  EXPECT_EQ(config_file_to_use(std::nullopt), std::nullopt);
  EXPECT_EQ(load_config(), Config{});

  fs::path file = write("cfg/tuneloop/config.yaml", "http:\n  port: 9999\n");
  EXPECT_EQ(config_file_to_use(std::nullopt), file);
  EXPECT_EQ(load_config().http.port, 9999);

  fs::path other = write("other.yaml", "http:\n  port: 7777\n");
  EXPECT_EQ(load_config(LoadOptions{other, std::nullopt}).http.port, 7777);
}

TEST_F(ConfigTest, DataDirOptionOverridesTheFile) {
  ::setenv("HOME", "/home/listener", 1);
  fs::path file = write("c.yaml", "paths:\n  data_dir: /from/file\n");
  EXPECT_EQ(load_config(LoadOptions{file, fs::path("/from/option")}).paths.data_dir,
            fs::path("/from/option"));
  EXPECT_EQ(load_config(LoadOptions{file, fs::path("~/d")}).paths.data_dir,
            fs::path("/home/listener/d"));
  EXPECT_EQ(load_config(LoadOptions{file, std::nullopt}).paths.data_dir, fs::path("/from/file"));
}

TEST(TimeOfDay, OnlyValidClockTimesParse) {
  EXPECT_EQ(minutes_since_midnight("00:00"), 0);
  EXPECT_EQ(minutes_since_midnight("7:30"), 450);
  EXPECT_EQ(minutes_since_midnight("23:59"), 1439);
  EXPECT_EQ(minutes_since_midnight(""), std::nullopt);
  EXPECT_EQ(minutes_since_midnight("24:00"), std::nullopt);
  EXPECT_EQ(minutes_since_midnight("12:60"), std::nullopt);
  EXPECT_EQ(minutes_since_midnight("12:5"), std::nullopt);
  EXPECT_EQ(minutes_since_midnight("ab:cd"), std::nullopt);
}

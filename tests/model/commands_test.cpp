// `tuneloop fine-tune` and the device option of the model commands (model/commands.hpp), on
// fixture weights written to a temp folder.
#include "model/commands.hpp"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "audio/audio.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::model {
namespace {

namespace fs = std::filesystem;
using tuneloop::testing::TempDir;

// The step column of a losses CSV (its header checked).
std::vector<int> logged_steps(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<int> steps;
  if (!std::getline(in, line) || line != "step,loss,seconds") {
    ADD_FAILURE() << path << ": no header";
    return steps;
  }
  while (std::getline(in, line)) steps.push_back(std::stoi(line.substr(0, line.find(','))));
  return steps;
}

std::vector<int> range(int from, int to) {
  std::vector<int> v;
  for (int i = from; i <= to; ++i) v.push_back(i);
  return v;
}

class FineTuneCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tuneloop::testing::write_fixture_weights(dir.file("weights"));
    fs::create_directories(dir.file("songs"));
    for (double hz : {220.0, 330.0}) {
      audio::Audio a;
      a.sample_rate = 16000;
      a.samples = tuneloop::testing::tone(hz, 1.5, 4.0);
      audio::write_audio(dir.file("songs/" + std::to_string(static_cast<int>(hz)) + ".wav"), a);
    }
    command.audio = {dir.file("songs")};
    command.weights_dir = dir.file("weights");
    command.device = "cpu";
    command.threads = 1;
    command.request.output_path = dir.file("adapters/mine.safetensors");
    command.request.steps = 6;
    command.request.batch = 2;
    command.request.calibration_clips = 0;
  }
  // Runs the command, setting its stop flag after step `stop_after` (0 = never); returns
  // the first training step it reported.
  int run(int stop_after = 0) {
    std::atomic<bool> stop{false};
    int first = -1;
    run_fine_tune(command, stop, [&](const Progress& p) {
      if (p.phase != "train") return;
      if (first < 0) first = p.step;
      if (p.step == stop_after) stop = true;
    });
    return first;
  }
  std::string checkpoint() const { return dir.file("adapters/mine.ckpt.safetensors"); }
  std::string losses() const { return dir.file("adapters/mine.losses.csv"); }

  TempDir dir{"tuneloop-commands"};
  FineTuneCommand command;
};

TEST_F(FineTuneCommandTest, KeepsItsCheckpointAndLossLogBesideTheAdapter) {
  EXPECT_EQ(default_fine_tune_checkpoint("/a/b/mine.safetensors"), "/a/b/mine.ckpt.safetensors");
  EXPECT_EQ(fine_tune_losses_path("/a/b/mine.safetensors"), "/a/b/mine.losses.csv");
  EXPECT_EQ(fine_tune_losses_path("mine"), "mine.losses.csv");
}

TEST_F(FineTuneCommandTest, LogsOneLossRowPerStepAndLeavesNoCheckpointWhenItFinishes) {
  EXPECT_EQ(run(), 1);
  EXPECT_TRUE(fs::exists(command.request.output_path));
  EXPECT_FALSE(fs::exists(checkpoint()));
  EXPECT_EQ(logged_steps(losses()), range(1, 6));
}

TEST_F(FineTuneCommandTest, AnInterruptedRunResumesFromItsDefaultCheckpointWhenRunAgain) {
  EXPECT_THROW(run(/*stop_after=*/3), Cancelled);
  EXPECT_TRUE(fs::exists(checkpoint()));
  EXPECT_FALSE(fs::exists(command.request.output_path));
  EXPECT_EQ(logged_steps(losses()), range(1, 3));

  EXPECT_EQ(run(), 4);  // the same command again
  EXPECT_TRUE(fs::exists(command.request.output_path));
  EXPECT_FALSE(fs::exists(checkpoint()));
  EXPECT_EQ(logged_steps(losses()), range(1, 6));
}

TEST_F(FineTuneCommandTest, WithoutACheckpointAnInterruptedRunStartsOver) {
  command.no_checkpoint = true;
  EXPECT_THROW(run(/*stop_after=*/3), Cancelled);
  EXPECT_FALSE(fs::exists(checkpoint()));
  EXPECT_EQ(run(), 1);
  EXPECT_EQ(logged_steps(losses()), range(1, 6));
}

TEST_F(FineTuneCommandTest, AnExplicitCheckpointFileIsUsedInsteadOfTheDefault) {
  command.request.checkpoint_path = dir.file("elsewhere.ckpt");
  EXPECT_THROW(run(/*stop_after=*/2), Cancelled);
  EXPECT_TRUE(fs::exists(dir.file("elsewhere.ckpt")));
  EXPECT_FALSE(fs::exists(checkpoint()));
  EXPECT_EQ(run(), 3);
  command.request.checkpoint_path = command.request.output_path;
  EXPECT_THROW(run(), ModelError);
}

TEST_F(FineTuneCommandTest, TheCommandLineRunsItAndItsHelpListsTheNewOptionsWithDefaults) {
  CLI::App app;
  add_model_commands(app);
  const std::string out = command.request.output_path;
  const std::string songs = dir.file("songs"), weights = dir.file("weights");
  std::vector<const char*> argv = {"tuneloop",
                                   "fine-tune",
                                   "--audio",
                                   songs.c_str(),
                                   "--out",
                                   out.c_str(),
                                   "--weights",
                                   weights.c_str(),
                                   "--steps",
                                   "3",
                                   "--batch",
                                   "1",
                                   "--calibration-clips",
                                   "0",
                                   "--threads",
                                   "1",
                                   "--device",
                                   "cpu"};
  EXPECT_NO_THROW(app.parse(static_cast<int>(argv.size()), argv.data()));
  EXPECT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(checkpoint()));
  EXPECT_EQ(logged_steps(losses()), range(1, 3));

  const auto help = app.get_subcommand("fine-tune")->help();
  for (const char* text : {"--device", "--config", "--no-checkpoint", "--checkpoint-every",
                           "OUT_STEM.ckpt.safetensors", "OUT_STEM.losses.csv"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text << " not in:\n" << help;
  }
  EXPECT_NE(app.get_subcommand("generate")->help().find("--device"), std::string::npos);

  CLI::App bad;
  add_model_commands(bad);
  std::vector<const char*> gpu = {"tuneloop", "generate", "-o", "x.wav", "--device", "gpu"};
  EXPECT_THROW(bad.parse(static_cast<int>(gpu.size()), gpu.data()), CLI::ValidationError);
}

// Sets an environment variable for one test and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ModelCommandDevice, ComesFromTheOptionElseTheDaemonsConfigElseAuto) {
  TempDir dir{"tuneloop-commands"};
  ScopedEnv xdg("XDG_CONFIG_HOME", dir.path().string());
  EXPECT_EQ(resolve_device("", ""), "auto");  // no config file
  EXPECT_EQ(resolve_device("cuda", ""), "cuda");

  fs::create_directories(dir.path() / "tuneloop");
  std::ofstream(dir.file("tuneloop/config.yaml")) << "model:\n  device: cpu\n";
  EXPECT_EQ(resolve_device("", ""), "cpu");  // the file tuneloopd reads by default
  EXPECT_EQ(resolve_device("auto", ""), "auto");

  std::ofstream(dir.file("other.yaml")) << "model:\n  device: cuda\n";
  EXPECT_EQ(resolve_device("", dir.file("other.yaml")), "cuda");
  EXPECT_THROW(resolve_device("", dir.file("missing.yaml")), ModelError);

  std::ofstream(dir.file("tuneloop/config.yaml")) << "model:\n  device: tpu\n";
  EXPECT_EQ(resolve_device("", ""), "auto");  // a broken default file is skipped, with a note
}

}  // namespace
}  // namespace tuneloop::model

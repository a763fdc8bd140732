// How the training commands show progress and log losses (progress/progress.hpp).
#include "progress/progress.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "model/model_error.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::progress {
namespace {

using tuneloop::testing::TempDir;

ProgressFigures figures(int step, int total, double rate = 1.0, double eta = std::nan(""),
                        double loss = std::nan("")) {
  ProgressFigures f;
  f.step = step;
  f.total = total;
  f.rate = rate;
  f.eta_seconds = eta;
  f.loss = loss;
  return f;
}

// The bar: the text between '[' and ']'.
std::string bar_of(const std::string& line) {
  return line.substr(1, line.find(']') - 1);
}

// What a ProgressDisplay wrote to a temporary file.
std::string read_back(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c; (c = std::fgetc(file)) != EOF;) text += static_cast<char>(c);
  return text;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ProgressBar, FillsInProportionToTheStepsDoneAndNeverOverflows) {
  EXPECT_EQ(bar_of(progress_bar_line(figures(0, 10), 10)), "..........");
  EXPECT_EQ(bar_of(progress_bar_line(figures(5, 10), 10)), "#####.....");
  EXPECT_EQ(bar_of(progress_bar_line(figures(10, 10), 10)), "##########");
  EXPECT_EQ(bar_of(progress_bar_line(figures(3, 12), 8)), "##......");
  EXPECT_EQ(bar_of(progress_bar_line(figures(450, 1200), 16)), "######..........");
  EXPECT_EQ(bar_of(progress_bar_line(figures(15, 10), 10)), "##########");
  EXPECT_EQ(bar_of(progress_bar_line(figures(-2, 10), 10)), "..........");
  EXPECT_EQ(bar_of(progress_bar_line(figures(1, 0), 4)), "....");
}

TEST(ProgressBar, ShowsStepsOfTotalRateEtaAndLoss) {
  const auto line = progress_bar_line(figures(450, 1200, 2.1, 357.0, 0.123), 16);
  EXPECT_EQ(line, "[######..........]   450/1200  2.10 steps/s  ETA 5m57s  loss 0.12300");
  // The step is padded to the total's width, so the line does not jump as it is redrawn.
  EXPECT_EQ(progress_bar_line(figures(9, 1200, 2.1, 357.0, 0.123), 16).size(), line.size());
}

TEST(ProgressBar, LeavesOutAnUnknownLossAndMarksAnUnknownEta) {
  const auto line = progress_bar_line(figures(2, 8, 0.5), 4, "clips");
  EXPECT_EQ(line, "[#...]  2/8  0.50 clips/s  ETA --");
}

TEST(ProgressDuration, ReadsAsSecondsMinutesOrHours) {
  EXPECT_EQ(format_duration(0.0), "0s");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(357.0), "5m57s");
  EXPECT_EQ(format_duration(7500.0), "2h05m");
  EXPECT_EQ(format_duration(-1.0), "--");
  EXPECT_EQ(format_duration(std::nan("")), "--");
  EXPECT_EQ(format_duration(INFINITY), "--");
}

TEST(ProgressLogLine, NamesTheCommandThenStepLossRateAndEta) {
  EXPECT_EQ(progress_text_line("train-denoiser", figures(450, 1200, 2.1, 357.0, 0.123)),
            "train-denoiser  step 450/1200  loss 0.12300  2.10 steps/s  ETA 5m57s");
  EXPECT_EQ(progress_text_line("fine-tune encode", figures(3, 12, 1.5, 6.0), "clips"),
            "fine-tune encode  3/12 clips  1.50 clips/s  ETA 6s");
}

TEST(ProgressStyle, IsALogWhenTheOutputIsNotATerminalAndNothingWhenQuiet) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(progress_style_for(file, false), ProgressStyle::lines);
  EXPECT_EQ(progress_style_for(file, true), ProgressStyle::none);
  std::fclose(file);
}

TEST(ProgressDisplay, AsALogWritesOnlyEvery2SecondsAndTheLastStep) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressDisplay display("train-x", 5, ProgressStyle::lines, file);
    for (int step = 1; step <= 5; ++step) display.update(step, 0, 1.0);
    EXPECT_GT(display.rate(), 0.0);
  }
  const auto text = read_back(file);
  std::fclose(file);
  EXPECT_EQ(text.rfind("train-x  step 5/5  loss 1.00000  ", 0), 0u) << text;
  EXPECT_NE(text.find("ETA 0s\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

TEST(ProgressDisplay, OnATerminalRedrawsOneLineAndANoteMakesWayForIt) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressDisplay display("train-x", 4, ProgressStyle::bar, file);
    display.update(1, 0, 2.0);
    display.note("checkpoint");
    display.update(2, 0, 2.0);
    display.update(4, 0, 2.0);
  }
  const auto text = read_back(file);
  std::fclose(file);
  // Step 1 drawn, cleared for the note, redrawn at once after it, and ended at step 4.
  EXPECT_EQ(text.rfind("\rtrain-x  [", 0), 0u) << text;
  EXPECT_NE(text.find(" 1/4  "), std::string::npos) << text;
  EXPECT_NE(text.find("\r\x1b[Ktrain-x  checkpoint\n\rtrain-x  ["), std::string::npos) << text;
  EXPECT_NE(text.find(" 2/4  "), std::string::npos) << text;
  EXPECT_NE(text.find(" 4/4  "), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
}

TEST(ProgressDisplay, WhenQuietWritesNothing) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressDisplay display("train-x", 2, ProgressStyle::none, file);
    display.update(1, 0, 1.0);
    display.note("hello");
    display.update(2, 0, 1.0);
  }
  EXPECT_EQ(read_back(file), "");
  std::fclose(file);
}

TEST(LossLog, WritesAHeaderAndOneRowPerStep) {
  TempDir dir{"tuneloop-progress"};
  {
    LossLog log(dir.file("losses.csv"), false);
    log.add(1, 0.5, 0.1);
    log.add(2, 0.25, 0.2);
  }
  EXPECT_EQ(lines_of(dir.file("losses.csv")),
            (std::vector<std::string>{"step,loss,seconds", "1,0.5,0.1", "2,0.25,0.2"}));
}

TEST(LossLog, AResumedRunContinuesTheFileAndReplacesStepsLoggedAfterTheCheckpoint) {
  TempDir dir{"tuneloop-progress"};
  const auto path = dir.file("losses.csv");
  {
    LossLog log(path, false);
    for (int step = 1; step <= 5; ++step) log.add(step, 1.0, step);
  }
  {
    LossLog log(path, true);  // the checkpoint was at step 3
    log.add(4, 0.5, 0.1);
  }
  EXPECT_EQ(lines_of(path), (std::vector<std::string>{"step,loss,seconds", "1,1,1", "2,1,2",
                                                      "3,1,3", "4,0.5,0.1"}));
  {
    LossLog log(path, false);  // a fresh run starts the file again
    log.add(1, 2.0, 0.1);
  }
  EXPECT_EQ(lines_of(path), (std::vector<std::string>{"step,loss,seconds", "1,2,0.1"}));
  {
    LossLog log(dir.file("new.csv"), true);  // nothing to continue
    log.add(1, 2.0, 0.1);
  }
  EXPECT_EQ(lines_of(dir.file("new.csv")),
            (std::vector<std::string>{"step,loss,seconds", "1,2,0.1"}));
}

TEST(LossLog, AnUnwritableFileIsAnErrorNamingIt) {
  try {
    LossLog log("/nonexistent-folder/losses.csv", false);
    FAIL() << "accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-folder/losses.csv"), std::string::npos);
  }
}

}  // namespace
}  // namespace tuneloop::progress

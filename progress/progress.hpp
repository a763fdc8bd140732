#pragma once
// How the training commands (train-autoencoder, train-denoiser, train-vocoder, fine-tune)
// show their progress and log their losses. No LibTorch here.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

namespace tuneloop::progress {

// What a progress report shows. NaN eta_seconds or loss = unknown (shown as "--" / left out).
struct ProgressFigures {
  int step = 0;
  int total = 0;
  double rate = 0.0;  // steps (or `unit`s) per second
  double eta_seconds = std::nan("");
  double loss = std::nan("");
};

// "42s", "5m57s", "2h05m"; "--" for a negative or non-finite time.
std::string format_duration(double seconds);

// The redrawn terminal line without the command's name, e.g.
// "[#########.......]  450/1200  2.10 steps/s  ETA 5m57s  loss 0.12300": `bar_width` cells,
// filled in proportion to step/total (clamped to the bar).
std::string progress_bar_line(const ProgressFigures& figures, int bar_width,
                              const std::string& unit = "steps");

// The periodic line for logs, e.g.
// "train-denoiser  step 450/1200  loss 0.12300  2.10 steps/s  ETA 5m57s".
std::string progress_text_line(const std::string& name, const ProgressFigures& figures,
                               const std::string& unit = "steps");

enum class ProgressStyle {
  bar,    // one line redrawn with \r (stderr is a terminal)
  lines,  // a line every 2 s and at the end (logs, CI)
  none,   // quiet
};
// bar when `out` is a terminal, else lines; none when quiet.
ProgressStyle progress_style_for(std::FILE* out, bool quiet) noexcept;

// Progress of one run of steps on `out`: rate and ETA measured from construction, loss
// smoothed (exponential, 0.95). Not thread-safe.
class ProgressDisplay {
 public:
  ProgressDisplay(std::string name, int total, ProgressStyle style, std::FILE* out = stderr,
                  std::string unit = "steps");
  ~ProgressDisplay();  // ends a drawn bar with a newline
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // `step` of `total` is done; steps up to `first_step` were done before this run (a resume).
  // NaN loss = none (e.g. encoding clips).
  void update(int step, int first_step, double loss = std::nan(""));
  // A line of its own ("<name>  <text>"), which a drawn bar makes way for.
  void note(const std::string& text);
  double rate() const noexcept { return rate_; }
  double elapsed_seconds() const;

 private:
  void draw(const ProgressFigures& figures);

  std::string name_, unit_;
  int total_;
  ProgressStyle style_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;  // a bar is on the current line
  int bar_width_ = 0;   // cells, set at the first draw
  double smoothed_ = std::nan("");
  double rate_ = 0.0;
};

// A loss log: "step,loss,seconds" and one row per step, flushed as written.
class LossLog {
 public:
  // append: continue a resumed run's file. Its rows from the first step this run logs on
  // are dropped (a run killed after its last checkpoint logged steps that are done again).
  // Throws std::runtime_error if the file cannot be written.
  LossLog(std::string path, bool append);
  void add(int step, double loss, double seconds);
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  bool trim_on_first_row_ = false;
  std::ofstream csv_;
};

}  // namespace tuneloop::progress

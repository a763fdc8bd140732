#include "progress/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>


namespace tuneloop::progress {
namespace fs = std::filesystem;

namespace {

std::string printf_string(const char* format, auto... args) {
  char buffer[256];
  const int n = std::snprintf(buffer, sizeof buffer, format, args...);
  return std::string(buffer,
                     static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buffer) - 1)));
}

std::string rate_text(double rate, const std::string& unit) {
  return printf_string("%.2f %s/s", rate, unit.c_str());
}

int terminal_columns(std::FILE* out) noexcept {
  winsize w{};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  return 80;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) return "--";
  const long long t = std::llround(seconds);
  if (t < 60) return printf_string("%llds", t);
  if (t < 3600) return printf_string("%lldm%02llds", t / 60, t % 60);
  return printf_string("%lldh%02lldm", t / 3600, t % 3600 / 60);
}

std::string progress_bar_line(const ProgressFigures& f, int bar_width, const std::string& unit) {
  const int cells = std::max(bar_width, 1);
  const int done = std::clamp(f.step, 0, std::max(f.total, 0));
  const int filled =
      f.total > 0 ? static_cast<int>(static_cast<long long>(done) * cells / f.total) : 0;
  std::string line(1, '[');
  line.append(filled, '#').append(cells - filled, '.').push_back(']');
  const int digits = static_cast<int>(std::to_string(std::max(f.total, 0)).size());
  line += printf_string("  %*d/%d", digits, f.step, f.total);
  line += "  " + rate_text(f.rate, unit) + "  ETA " + format_duration(f.eta_seconds);
  if (std::isfinite(f.loss)) line += printf_string("  loss %.5f", f.loss);
  return line;
}

std::string progress_text_line(const std::string& name, const ProgressFigures& f,
                               const std::string& unit) {
  std::string line =
      name + (unit == "steps" ? printf_string("  step %d/%d", f.step, f.total)
                              : printf_string("  %d/%d %s", f.step, f.total, unit.c_str()));
  if (std::isfinite(f.loss)) line += printf_string("  loss %.5f", f.loss);
  return line + "  " + rate_text(f.rate, unit) + "  ETA " + format_duration(f.eta_seconds);
}

ProgressStyle progress_style_for(std::FILE* out, bool quiet) noexcept {
  if (quiet) return ProgressStyle::none;
  return ::isatty(::fileno(out)) ? ProgressStyle::bar : ProgressStyle::lines;
}

// ---------------------------------------------------------------- ProgressDisplay

ProgressDisplay::ProgressDisplay(std::string name, int total, ProgressStyle style, std::FILE* out,
                                 std::string unit)
    : name_(std::move(name)),
      unit_(std::move(unit)),
      total_(total),
      style_(style),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressDisplay::~ProgressDisplay() {
  if (drawn_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

double ProgressDisplay::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressDisplay::update(int step, int first_step, double loss) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (std::isfinite(loss))
    smoothed_ = std::isnan(smoothed_) ? loss : 0.95 * smoothed_ + 0.05 * loss;
  const int done = step - first_step;
  rate_ = done > 0 ? done / std::max(elapsed, 1e-9) : 0.0;
  if (style_ == ProgressStyle::none) return;
  const bool last = step >= total_;
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  // A bar is redrawn ten times a second at most; log lines come every 2 s.
  const double every = style_ == ProgressStyle::bar ? 0.1 : 2.0;
  const bool first_bar = style_ == ProgressStyle::bar && !drawn_;
  if (!last && !first_bar && since_draw < every) return;
  last_draw_ = now;
  ProgressFigures f;
  f.step = step;
  f.total = total_;
  f.rate = rate_;
  f.eta_seconds = last ? 0.0 : rate_ > 0.0 ? (total_ - step) / rate_ : std::nan("");
  f.loss = smoothed_;
  draw(f);
}

void ProgressDisplay::draw(const ProgressFigures& f) {
  if (style_ == ProgressStyle::lines) {
    std::fprintf(out_, "%s\n", progress_text_line(name_, f, unit_).c_str());
    std::fflush(out_);
    return;
  }
  // The bar takes what the terminal's width leaves (5 to 40 cells, room kept for the rate
  // and ETA to grow), fixed at the first draw so that it does not jitter. A line wider than
  // the terminal is cut: a wrapped one could not be redrawn with \r.
  const int columns = terminal_columns(out_);
  if (bar_width_ == 0) {
    const int rest = static_cast<int>(name_.size() + progress_bar_line(f, 10, unit_).size()) - 8;
    bar_width_ = std::clamp(columns - 1 - 6 - rest, 5, 40);
  }
  std::string line = name_ + "  " + progress_bar_line(f, bar_width_, unit_);
  if (static_cast<int>(line.size()) > columns - 1) line.resize(std::max(columns - 1, 1));
  std::fprintf(out_, "\r%s\x1b[K", line.c_str());
  drawn_ = f.step < f.total;
  if (!drawn_) std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressDisplay::note(const std::string& text) {
  if (style_ == ProgressStyle::none) return;
  if (drawn_) std::fputs("\r\x1b[K", out_);
  drawn_ = false;
  std::fprintf(out_, "%s  %s\n", name_.c_str(), text.c_str());
  std::fflush(out_);
}

// ---------------------------------------------------------------- LossLog

LossLog::LossLog(std::string path, bool append) : path_(std::move(path)) {
  std::error_code ec;
  trim_on_first_row_ = append && fs::exists(path_, ec);
  csv_.open(path_, trim_on_first_row_ ? std::ios::app : std::ios::trunc);
  if (!csv_) throw std::runtime_error(path_ + ": cannot write the loss log");
  if (!trim_on_first_row_) csv_ << "step,loss,seconds\n" << std::flush;
}

void LossLog::add(int step, double loss, double seconds) {
  if (trim_on_first_row_) {
    trim_on_first_row_ = false;
    csv_.close();
    std::vector<std::string> kept;
    {
      std::ifstream in(path_);
      std::string line;
      while (std::getline(in, line)) {
        char* end = nullptr;
        const long logged = std::strtol(line.c_str(), &end, 10);
        const bool row = end != line.c_str() && *end == ',';
        if (kept.empty() || (row && logged < step)) kept.push_back(line);  // the header, then rows
      }
    }
    const auto temporary = path_ + ".tmp";
    {
      std::ofstream out(temporary, std::ios::trunc);
      for (const auto& line : kept) out << line << '\n';
      if (!out) throw std::runtime_error(temporary + ": cannot write the loss log");
    }
    fs::rename(temporary, path_);
    csv_.open(path_, std::ios::app);
    if (!csv_) throw std::runtime_error(path_ + ": cannot write the loss log");
  }
  csv_ << step << ',' << loss << ',' << seconds << '\n' << std::flush;
}

}  // namespace tuneloop::progress

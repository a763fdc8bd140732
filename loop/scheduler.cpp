#include "loop/scheduler.hpp"

#include <cstdio>
#include <ctime>
#include <vector>

namespace tuneloop::loop {

namespace {

constexpr std::int64_t kMsPerMinute = 60'000;
constexpr std::int64_t kMsPerDay = 24 * 60 * kMsPerMinute;

std::optional<int> parse_time_of_day(const std::string& text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  auto digit = [&](std::size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (!digit(0) || !digit(1) || !digit(3) || !digit(4)) return std::nullopt;
  const int hours = (text[0] - '0') * 10 + (text[1] - '0');
  const int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (hours > 23 || minutes > 59) return std::nullopt;
  return hours * 60 + minutes;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::string minutes_text(std::int64_t minutes) {
  return std::to_string(minutes) + " min";
}

Decision start(Trigger trigger, std::string reason) {
  return {true, trigger, std::move(reason)};
}
Decision wait(std::string reason) {
  return {false, Trigger::none, "waiting: " + reason};
}

}  // namespace

UnixMs last_daily_occurrence(UnixMs now, int minutes, int utc_offset_minutes) noexcept {
  const std::int64_t local = now + utc_offset_minutes * kMsPerMinute;
  const std::int64_t day_start = floor_div(local, kMsPerDay) * kMsPerDay;
  std::int64_t occurrence = day_start + minutes * kMsPerMinute;
  if (occurrence > local) occurrence -= kMsPerDay;
  return occurrence - utc_offset_minutes * kMsPerMinute;
}

int local_utc_offset_minutes(UnixMs at) noexcept {
  const std::time_t seconds = static_cast<std::time_t>(floor_div(at, 1000));
  std::tm local{};
  if (localtime_r(&seconds, &local) == nullptr) return 0;
  return static_cast<int>(local.tm_gmtoff / 60);
}

Decision decide(const ScheduleState& state, const config::ScheduleConfig& schedule,
                Request request) {
  if (state.job_running) return {false, Trigger::none, "job already running"};
  if (request != Request::forced && state.feedback_count < schedule.min_feedback) {
    return wait(std::to_string(state.feedback_count) + " of " +
                std::to_string(schedule.min_feedback) + " feedback events needed");
  }
  if (request != Request::automatic) {
    return start(Trigger::manual, request == Request::forced ? "manual (forced)" : "manual");
  }

  std::vector<std::string> waiting;
  const bool fresh = state.new_feedback > 0 || state.new_ratings > 0;

  if (schedule.interval_minutes > 0) {
    const std::int64_t interval_ms = schedule.interval_minutes * kMsPerMinute;
    const bool elapsed =
        !state.last_iteration_at || state.now - *state.last_iteration_at >= interval_ms;
    if (elapsed && fresh) {
      return start(Trigger::interval,
                   "interval of " + minutes_text(schedule.interval_minutes) + " elapsed");
    }
    if (elapsed) {
      waiting.push_back("interval of " + minutes_text(schedule.interval_minutes) +
                        " elapsed but no new feedback since the last iteration");
    } else {
      const std::int64_t left_ms = interval_ms - (state.now - *state.last_iteration_at);
      waiting.push_back(minutes_text((left_ms + kMsPerMinute - 1) / kMsPerMinute) +
                        " until the interval of " + minutes_text(schedule.interval_minutes) +
                        " elapses");
    }
  }

  if (schedule.after_new_ratings > 0) {
    if (state.new_ratings >= schedule.after_new_ratings) {
      return start(Trigger::new_ratings, std::to_string(state.new_ratings) +
                                             " new ratings (after_new_ratings " +
                                             std::to_string(schedule.after_new_ratings) + ")");
    }
    waiting.push_back(std::to_string(state.new_ratings) + " of " +
                      std::to_string(schedule.after_new_ratings) + " new ratings");
  }

  if (const auto minutes = parse_time_of_day(schedule.time_of_day)) {
    const UnixMs occurrence = last_daily_occurrence(state.now, *minutes, state.utc_offset_minutes);
    const bool due = !state.last_iteration_at || *state.last_iteration_at < occurrence;
    if (due && fresh) {
      return start(Trigger::time_of_day, "time of day " + schedule.time_of_day + " reached");
    }
    waiting.push_back(due ? "time of day " + schedule.time_of_day +
                                " reached but no new feedback since the last iteration"
                          : "next run at " + schedule.time_of_day);
  }

  if (waiting.empty()) return wait("no automatic trigger configured (manual only)");
  std::string reason;
  for (const auto& part : waiting) reason += (reason.empty() ? "" : "; ") + part;
  return wait(reason);
}

}  // namespace tuneloop::loop

#pragma once
// When to start the next iteration: a pure decision from the clock, the feedback counts
// and config::ScheduleConfig. The daemon asks it on a timer and on every new rating,
// and `status` shows its reason while it waits. Rules: docs/feedback.md.

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace tuneloop::loop {

using UnixMs = std::int64_t;

/// What the scheduler knows at one moment.
struct ScheduleState {
  UnixMs now = 0;
  std::optional<UnixMs> last_iteration_at;  // created_at of the newest iteration; empty = none
  int new_ratings = 0;                      // ratings given since the last iteration
  int new_feedback = 0;                     // ratings plus finished plays since the last iteration
  int feedback_count = 0;  // tracks ever rated or heard (compared with min_feedback)
  bool job_running = false;
  int utc_offset_minutes = 0;  // local time = UTC + this, for schedule.time_of_day
};

enum class Trigger { none, manual, interval, new_ratings, time_of_day };

struct Decision {
  bool start = false;
  Trigger trigger = Trigger::none;
  /// Why: "manual", "interval of 60 min elapsed", "10 new ratings (after_new_ratings 10)",
  /// "time of day 03:00 reached", "job already running",
  /// "waiting: 3 of 8 feedback events needed", "waiting: 4 of 10 new ratings", …
  std::string reason;
};

enum class Request { automatic, manual, forced };

/// Decides whether to start an iteration now.
/// - A running job always wins: never two at once, not even when forced.
/// - Fewer than min_feedback tracks with feedback: wait (a forced request skips this).
/// - Manual and forced requests start.
/// - Automatic: the interval, the count of new ratings, or the daily time of day; the
///   interval and time of day also need some feedback since the last iteration so that
///   an idle listener does not retrain on the same data.
/// A bad time_of_day string counts as off (config validation rejects it earlier).
Decision decide(const ScheduleState& state, const config::ScheduleConfig& schedule,
                Request request = Request::automatic);

/// The local UTC offset (minutes) at `at`, from the process's time zone.
int local_utc_offset_minutes(UnixMs at) noexcept;

/// The latest moment ≤ now whose local clock reads `minutes` after midnight.
UnixMs last_daily_occurrence(UnixMs now, int minutes, int utc_offset_minutes) noexcept;

}  // namespace tuneloop::loop

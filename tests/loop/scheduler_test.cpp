#include "loop/scheduler.hpp"

#include <gtest/gtest.h>

namespace {

using tuneloop::config::ScheduleConfig;
using tuneloop::loop::decide;
using tuneloop::loop::Request;
using tuneloop::loop::ScheduleState;
using tuneloop::loop::Trigger;

constexpr std::int64_t kMinute = 60'000;
constexpr std::int64_t kDay = 24 * 60 * kMinute;
// 2027-01-15 00:00 UTC, a whole number of days since the epoch.
constexpr std::int64_t kMidnight = 20833 * kDay;

ScheduleConfig only_manual() {
  ScheduleConfig s;
  s.interval_minutes = 0;
  s.after_new_ratings = 0;
  s.time_of_day = "";
  s.min_feedback = 8;
  return s;
}

ScheduleState enough_feedback(std::int64_t now = kMidnight + 12 * 60 * kMinute) {
  ScheduleState state;
  state.now = now;
  state.last_iteration_at = now - 30 * kMinute;
  state.feedback_count = 10;
  state.new_feedback = 3;
  state.new_ratings = 2;
  return state;
}

TEST(Scheduler, NeverStartsWhileAJobIsRunningEvenWhenForced) {
  ScheduleState state = enough_feedback();
  state.job_running = true;
  const auto d = decide(state, only_manual(), Request::forced);
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.reason, "job already running");
}

TEST(Scheduler, WaitsForMinFeedbackAndSaysHowMuchIsMissing) {
  ScheduleState state = enough_feedback();
  state.feedback_count = 3;
  const auto d = decide(state, only_manual(), Request::manual);
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.reason, "waiting: 3 of 8 feedback events needed");
}

TEST(Scheduler, ManualRequestStartsOnceThereIsEnoughFeedback) {
  const auto d = decide(enough_feedback(), only_manual(), Request::manual);
  EXPECT_TRUE(d.start);
  EXPECT_EQ(d.trigger, Trigger::manual);
  EXPECT_EQ(d.reason, "manual");
}

TEST(Scheduler, ForcedRequestIgnoresMinFeedback) {
  ScheduleState state = enough_feedback();
  state.feedback_count = 0;
  const auto d = decide(state, only_manual(), Request::forced);
  EXPECT_TRUE(d.start);
  EXPECT_EQ(d.reason, "manual (forced)");
}

TEST(Scheduler, WithNoAutomaticTriggerConfiguredItWaitsForAManualOne) {
  const auto d = decide(enough_feedback(), only_manual());
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.reason, "waiting: no automatic trigger configured (manual only)");
}

TEST(Scheduler, StartsWhenTheIntervalHasElapsed) {
  ScheduleConfig s = only_manual();
  s.interval_minutes = 60;
  ScheduleState state = enough_feedback();
  state.last_iteration_at = state.now - 60 * kMinute;
  const auto d = decide(state, s);
  EXPECT_TRUE(d.start);
  EXPECT_EQ(d.trigger, Trigger::interval);
  EXPECT_EQ(d.reason, "interval of 60 min elapsed");
}

TEST(Scheduler, SaysHowLongUntilTheIntervalElapses) {
  ScheduleConfig s = only_manual();
  s.interval_minutes = 60;
  ScheduleState state = enough_feedback();
  state.last_iteration_at = state.now - 37 * kMinute - 30'000;  // 22.5 min left → 23
  const auto d = decide(state, s);
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.reason, "waiting: 23 min until the interval of 60 min elapses");
}

TEST(Scheduler, ElapsedIntervalWithoutNewFeedbackDoesNotRetrain) {
  ScheduleConfig s = only_manual();
  s.interval_minutes = 60;
  ScheduleState state = enough_feedback();
  state.last_iteration_at = state.now - 120 * kMinute;
  state.new_feedback = 0;
  state.new_ratings = 0;
  const auto d = decide(state, s);
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.reason,
            "waiting: interval of 60 min elapsed but no new feedback since the last iteration");
}

TEST(Scheduler, StartsAfterEnoughNewRatings) {
  ScheduleConfig s = only_manual();
  s.after_new_ratings = 10;
  ScheduleState state = enough_feedback();
  state.new_ratings = 10;
  const auto d = decide(state, s);
  EXPECT_TRUE(d.start);
  EXPECT_EQ(d.trigger, Trigger::new_ratings);
  EXPECT_EQ(d.reason, "10 new ratings (after_new_ratings 10)");
}

TEST(Scheduler, CountsNewRatingsWhileWaiting) {
  ScheduleConfig s = only_manual();
  s.after_new_ratings = 10;
  ScheduleState state = enough_feedback();
  state.new_ratings = 4;
  EXPECT_EQ(decide(state, s).reason, "waiting: 4 of 10 new ratings");
}

TEST(Scheduler, StartsOnceTheDailyTimeHasPassedSinceTheLastIteration) {
  ScheduleConfig s = only_manual();
  s.time_of_day = "03:00";
  ScheduleState state = enough_feedback(kMidnight + 3 * 60 * kMinute + 5 * kMinute);  // 03:05
  state.last_iteration_at = kMidnight - 2 * 60 * kMinute;  // 22:00 the day before
  const auto d = decide(state, s);
  EXPECT_TRUE(d.start);
  EXPECT_EQ(d.trigger, Trigger::time_of_day);
  EXPECT_EQ(d.reason, "time of day 03:00 reached");
}

TEST(Scheduler, DailyTimeUsesLocalTime) {
  ScheduleConfig s = only_manual();
  s.time_of_day = "03:00";
  // 02:30 UTC is 03:30 at UTC+1: the local 03:00 has passed.
  ScheduleState state = enough_feedback(kMidnight + 150 * kMinute);
  state.last_iteration_at = kMidnight - 60 * kMinute;
  state.utc_offset_minutes = 60;
  EXPECT_TRUE(decide(state, s).start);
  state.utc_offset_minutes = 0;
  const auto d = decide(state, s);
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.reason, "waiting: next run at 03:00");
}

TEST(Scheduler, DailyTimeRunsOnlyOncePerDay) {
  ScheduleConfig s = only_manual();
  s.time_of_day = "03:00";
  ScheduleState state = enough_feedback(kMidnight + 20 * 60 * kMinute);  // 20:00
  state.last_iteration_at = kMidnight + 3 * 60 * kMinute + kMinute;      // ran at 03:01
  EXPECT_FALSE(decide(state, s).start);
}

TEST(Scheduler, JoinsEveryWaitingReason) {
  ScheduleConfig s = only_manual();
  s.interval_minutes = 60;
  s.after_new_ratings = 10;
  ScheduleState state = enough_feedback();  // 30 min since the last iteration, 2 ratings
  EXPECT_EQ(decide(state, s).reason,
            "waiting: 30 min until the interval of 60 min elapses; 2 of 10 new ratings");
}

TEST(Scheduler, LastDailyOccurrenceIsTodayOrYesterday) {
  using tuneloop::loop::last_daily_occurrence;
  EXPECT_EQ(last_daily_occurrence(kMidnight + 4 * 60 * kMinute, 180, 0), kMidnight + 180 * kMinute);
  EXPECT_EQ(last_daily_occurrence(kMidnight + 2 * 60 * kMinute, 180, 0),
            kMidnight - kDay + 180 * kMinute);
  EXPECT_EQ(last_daily_occurrence(kMidnight + 180 * kMinute, 180, 0), kMidnight + 180 * kMinute);
}

}  // namespace

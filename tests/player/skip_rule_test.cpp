#include <gtest/gtest.h>

#include "player/player.hpp"

using tuneloop::player::classify_end;
using tuneloop::player::EndReason;

TEST(SkipRule, APlayThatReachedTheEndIsCompletedWhateverWasHeard) {
  EXPECT_EQ(classify_end(3.0, 3.0, true, 0.5, false), EndReason::completed);
  EXPECT_EQ(classify_end(0.2, 3.0, true, 0.5, false), EndReason::completed);  // seeked over
}

TEST(SkipRule, AUserStopBeforeTheSkipFractionIsASkip) {
  EXPECT_EQ(classify_end(0.8, 3.0, false, 0.5, true), EndReason::skipped);
  EXPECT_EQ(classify_end(1.49, 3.0, false, 0.5, true), EndReason::skipped);
}

TEST(SkipRule, AUserStopAfterTheSkipFractionIsAStop) {
  EXPECT_EQ(classify_end(1.5, 3.0, false, 0.5, true), EndReason::stopped);
  EXPECT_EQ(classify_end(2.9, 3.0, false, 0.5, true), EndReason::stopped);
}

TEST(SkipRule, TheFractionIsConfigurable) {
  EXPECT_EQ(classify_end(1.0, 3.0, false, 0.25, true), EndReason::stopped);
  EXPECT_EQ(classify_end(1.0, 3.0, false, 0.9, true), EndReason::skipped);
}

TEST(SkipRule, AStopThatWasNotTheListenersIsAnInterruption) {
  EXPECT_EQ(classify_end(0.1, 3.0, false, 0.5, false), EndReason::interrupted);
}

TEST(SkipRule, AnEmptyTrackStoppedByTheUserIsASkip) {
  EXPECT_EQ(classify_end(0.0, 0.0, false, 0.5, true), EndReason::skipped);
}

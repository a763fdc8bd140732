#include "player/play_queue.hpp"

#include <gtest/gtest.h>

using tuneloop::player::PlayQueue;

TEST(PlayQueue, PlaysUpcomingTracksInOrder) {
  PlayQueue q;
  q.set_upcoming({1, 2, 3});
  EXPECT_EQ(q.next(), 1);
  EXPECT_EQ(q.next(), 2);
  EXPECT_EQ(q.next(), 3);
  EXPECT_EQ(q.next(), std::nullopt);
  EXPECT_EQ(q.current(), 3);
}

TEST(PlayQueue, NeverRepeatsTheTrackJustPlayed) {
  PlayQueue q;
  q.set_upcoming({7, 7, 8, 7});
  EXPECT_EQ(q.next(), 7);
  EXPECT_EQ(q.next(), 8);  // the second 7 is passed over...
  EXPECT_EQ(q.next(), 7);  // ...and plays once something else came between
  EXPECT_EQ(q.next(), std::nullopt) << "only a repeat is left";
}

TEST(PlayQueue, ReturnsNothingWhenOnlyARepeatIsQueued) {
  PlayQueue q;
  q.set_upcoming({5, 5});
  EXPECT_EQ(q.next(), 5);
  EXPECT_EQ(q.next(), std::nullopt);
  EXPECT_EQ(q.current(), 5);
  EXPECT_EQ(q.upcoming().size(), 1u);
}

TEST(PlayQueue, PreviousGoesBackAndNextReturnsToWhereItWas) {
  PlayQueue q;
  q.set_upcoming({1, 2, 3});
  q.next();
  q.next();
  EXPECT_EQ(q.previous(), 1);
  EXPECT_EQ(q.next(), 2);
  EXPECT_EQ(q.next(), 3);
}

TEST(PlayQueue, PreviousWithoutHistoryReturnsNothing) {
  PlayQueue q;
  EXPECT_EQ(q.previous(), std::nullopt);
  q.set_upcoming({4});
  q.next();
  EXPECT_EQ(q.previous(), std::nullopt);
  EXPECT_EQ(q.current(), 4);
}

TEST(PlayQueue, NewIterationTracksReplaceTheUpcomingOnesButKeepTheCurrent) {
  PlayQueue q;
  q.set_upcoming({1, 2});
  q.next();
  q.set_upcoming({10, 11});
  EXPECT_EQ(q.current(), 1);
  EXPECT_EQ(q.next(), 10);
  q.enqueue(12);
  q.enqueue_front(9);
  EXPECT_EQ(q.next(), 9);
  EXPECT_EQ(q.next(), 11);
  EXPECT_EQ(q.next(), 12);
}

TEST(PlayQueue, PlayNowMakesATrackCurrentAndRemembersTheOldOne) {
  PlayQueue q;
  q.play_now(3);
  q.play_now(4);
  EXPECT_EQ(q.current(), 4);
  EXPECT_EQ(q.previous(), 3);
}

TEST(PlayQueue, HistoryIsBounded) {
  PlayQueue q;
  for (int i = 0; i < 500; ++i) q.play_now(i);
  EXPECT_EQ(q.history().size(), PlayQueue::kMaxHistory);
}

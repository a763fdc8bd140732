#include "loop/worker.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

namespace tuneloop::loop {
namespace {

TEST(Worker, RunsTasksInOrderOnOneThreadAtALowerPriority) {
  Worker w(5);
  std::vector<int> order;
  std::promise<std::thread::id> first, second;
  w.submit([&] { order.push_back(1); first.set_value(std::this_thread::get_id()); });
  w.submit([&] { order.push_back(2); second.set_value(std::this_thread::get_id()); });
  const auto a = first.get_future().get();
  const auto b = second.get_future().get();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, std::this_thread::get_id());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_GE(w.nice_value(), 5);
}

TEST(Worker, StopCancelsTheRunningTaskAndDropsQueuedOnes) {
  bool second_ran = false;
  std::promise<void> started;
  bool saw_cancel = false;
  {
    Worker w(0);
    w.submit([&] {
      started.set_value();
      while (!w.cancel_flag()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      saw_cancel = true;
    });
    w.submit([&] { second_ran = true; });
    started.get_future().wait();
    w.stop();
  }
  EXPECT_TRUE(saw_cancel);
  EXPECT_FALSE(second_ran);
}

TEST(Worker, AnEscapingExceptionDoesNotStopTheWorker) {
  Worker w(0);
  std::promise<bool> ran;
  w.submit([] { throw std::runtime_error("boom"); });
  w.submit([&] { ran.set_value(true); });
  EXPECT_TRUE(ran.get_future().get());
}

}  // namespace
}  // namespace tuneloop::loop

#pragma once
// The one worker thread that runs training and generation, away from the io thread and
// the audio callback. It lowers its own scheduling priority (nice) so that playback and
// IPC win the CPU; LibTorch's intra-op threads, created from it, inherit that priority.
// Tasks run one at a time in submission order.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tuneloop::loop {

class Worker {
 public:
  using Task = std::function<void()>;

  /// Starts the thread. `nice_increment` is added to the thread's nice value (0 = as is).
  explicit Worker(int nice_increment = 10);
  /// Sets the cancel flag, drops queued tasks, and joins after the running task returns.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Queues a task. A task must catch its own exceptions (an escaping one is logged and
  /// dropped). Thread-safe.
  void submit(Task task);
  /// Set by stop() and by cancel_current(); tasks poll it. Cleared before each task.
  const std::atomic<bool>& cancel_flag() const noexcept { return cancel_; }
  /// Asks the running task to stop at its next check. Thread-safe.
  void cancel_current() noexcept { cancel_ = true; }
  /// True while a task runs or waits. Thread-safe.
  bool busy() const;
  /// Cancels the running task, drops the queued ones and joins the thread. Idempotent.
  void stop();
  /// The nice value the worker thread ended up with (for status and tests).
  int nice_value() const noexcept { return nice_.load(); }

 private:
  void run(int nice_increment);

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> tasks_;
  bool running_task_ = false;
  bool stopping_ = false;
  std::atomic<bool> cancel_{false};
  std::atomic<int> nice_{0};
  std::thread thread_;
};

}  // namespace tuneloop::loop

#include "loop/worker.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

namespace tuneloop::loop {

Worker::Worker(int nice_increment) : thread_([this, nice_increment] { run(nice_increment); }) {}

Worker::~Worker() { stop(); }

void Worker::submit(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

bool Worker::busy() const {
  std::lock_guard lock(mutex_);
  return running_task_ || !tasks_.empty();
}

void Worker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    tasks_.clear();
  }
  cancel_ = true;
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Worker::run(int nice_increment) {
  // On Linux nice is per thread: PRIO_PROCESS with a thread id changes only this one.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (nice_increment != 0 && ::setpriority(PRIO_PROCESS, tid, current + nice_increment) != 0)
    spdlog::warn("loop: cannot lower the worker's priority (errno {})", errno);
  nice_ = ::getpriority(PRIO_PROCESS, tid);
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      running_task_ = true;
      cancel_ = false;
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("loop: worker task failed: {}", e.what());
    } catch (...) {
      spdlog::error("loop: worker task failed with an unknown exception");
    }
    std::lock_guard lock(mutex_);
    running_task_ = false;
  }
}

}  // namespace tuneloop::loop

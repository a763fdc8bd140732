#pragma once
// Persistent single-threaded LibTorch workers for splitting a batch across cores.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <torch/torch.h>

namespace tuneloop::model {

// Threads that each run one LibTorch thread and wait for a job: a training step's batch
// shards (the fine-tune's and the vocoder trainer's). They live for the whole run because
// setting a thread's LibTorch thread count also empties oneDNN's cache of prepared convolutions,
// which is too costly to do every step.
class ShardWorkers {
 public:
  explicit ShardWorkers(int count) {
    for (int k = 0; k < count; ++k) threads_.emplace_back([this, k] { serve(k); });
  }
  ~ShardWorkers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  size_t size() const noexcept { return threads_.size(); }
  // Starts job(k) on worker k for every k; `job` must not throw and must outlive wait().
  void start(const std::function<void(int)>& job) {
    {
      std::lock_guard lock(mutex_);
      job_ = &job;
      pending_ = static_cast<int>(threads_.size());
      ++generation_;
    }
    wake_.notify_all();
  }
  // Returns when every worker has finished the job start() gave it.
  void wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void serve(int k) {
    torch::set_num_threads(1);
    uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      const auto* job = job_;
      lock.unlock();
      (*job)(k);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

// How many slices a batch splits into: one for the calling thread plus one per worker.
inline int shard_count(const ShardWorkers* workers) noexcept {
  return 1 + (workers ? static_cast<int>(workers->size()) : 0);
}

// Runs slice(0) on this thread and slice(k + 1) on worker k (workers may be null: slice 0
// alone), waits for all, then rethrows the first slice's error, in slice order.
inline void run_slices(ShardWorkers* workers, const std::function<void(int)>& slice) {
  std::vector<std::exception_ptr> errors(shard_count(workers));
  auto guarded = [&](int k) noexcept {
    try {
      slice(k);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  };
  const std::function<void(int)> job = [&](int k) { guarded(k + 1); };
  if (workers) workers->start(job);
  guarded(0);
  if (workers) workers->wait();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// The slices' gradients added in slice order (so the sum does not depend on which thread
// finished first); a parameter no slice reached stays undefined.
inline std::vector<torch::Tensor> sum_gradients(
    const std::vector<std::vector<torch::Tensor>>& per_slice, size_t parameters) {
  std::vector<torch::Tensor> sum(parameters);
  for (const auto& grads : per_slice) {
    for (size_t i = 0; i < parameters; ++i) {
      const auto& g = grads[i];
      if (g.defined()) sum[i] = sum[i].defined() ? sum[i] + g : g;
    }
  }
  return sum;
}

}  // namespace tuneloop::model

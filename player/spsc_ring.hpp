#pragma once

// A single-producer single-consumer ring of audio samples, lock-free and preallocated, so
// the real-time audio callback can read from it without locking or allocating.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <vector>

namespace tuneloop::player {

class SpscRing {
 public:
  // Capacity is rounded up to a power of two (at least 2 samples).
  explicit SpscRing(std::size_t min_capacity) {
    std::size_t cap = 2;
    while (cap < min_capacity) cap <<= 1;
    buffer_.assign(cap, 0.0f);
    mask_ = cap - 1;
  }

  std::size_t capacity() const noexcept { return buffer_.size(); }

  // Producer side. Returns how many samples were written (fewer when full).
  std::size_t write(const float* src, std::size_t n) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    n = std::min(n, capacity() - (head - tail));
    for (std::size_t i = 0; i < n; ++i) buffer_[(head + i) & mask_] = src[i];
    head_.store(head + n, std::memory_order_release);
    return n;
  }

  // Consumer side. Returns how many samples were read (fewer when empty).
  std::size_t read(float* dst, std::size_t n) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    const std::size_t head = head_.load(std::memory_order_acquire);
    n = std::min(n, head - tail);
    for (std::size_t i = 0; i < n; ++i) dst[i] = buffer_[(tail + i) & mask_];
    tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // Readable samples; exact for the consumer, a lower bound for anyone else.
  std::size_t available() const noexcept {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }
  std::size_t free_space() const noexcept { return capacity() - available(); }

  // Empties the ring. Only while neither side is running (e.g. stream stopped, decoder
  // joined): the indices are otherwise owned by one side each.
  void reset() noexcept {
    head_.store(0, std::memory_order_relaxed);
    tail_.store(0, std::memory_order_relaxed);
  }

 private:
  std::vector<float> buffer_;
  std::size_t mask_ = 0;
  alignas(64) std::atomic<std::size_t> head_{0};  // written by the producer only
  alignas(64) std::atomic<std::size_t> tail_{0};  // written by the consumer only
};

}  // namespace tuneloop::player

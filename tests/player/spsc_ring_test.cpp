#include "player/spsc_ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

using tuneloop::player::SpscRing;

TEST(SpscRing, RoundsCapacityUpToAPowerOfTwo) {
  EXPECT_EQ(SpscRing(1000).capacity(), 1024u);
}

TEST(SpscRing, WritesNoMoreThanFitsAndReadsNoMoreThanIsThere) {
  SpscRing ring(8);
  std::vector<float> in(12, 1.0f), out(12, 0.0f);
  EXPECT_EQ(ring.write(in.data(), 12), 8u);
  EXPECT_EQ(ring.free_space(), 0u);
  EXPECT_EQ(ring.read(out.data(), 12), 8u);
  EXPECT_EQ(ring.read(out.data(), 12), 0u);
}

TEST(SpscRing, KeepsSampleOrderAcrossTheWrapAround) {
  SpscRing ring(8);
  std::vector<float> out(8);
  float next_in = 0, next_out = 0;
  for (int round = 0; round < 10; ++round) {
    std::vector<float> in{next_in, next_in + 1, next_in + 2, next_in + 3, next_in + 4};
    ASSERT_EQ(ring.write(in.data(), 5), 5u);
    next_in += 5;
    ASSERT_EQ(ring.read(out.data(), 5), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(out[i], next_out++);
  }
}

TEST(SpscRing, AProducerAndAConsumerThreadPassEverySampleInOrder) {
  SpscRing ring(64);
  constexpr int kCount = 50000;
  std::thread producer([&] {
    for (int i = 0; i < kCount;) {
      float chunk[7];
      const int n = std::min(7, kCount - i);
      for (int k = 0; k < n; ++k) chunk[k] = static_cast<float>(i + k);
      const std::size_t written = ring.write(chunk, n);
      i += static_cast<int>(written);
      if (written == 0) std::this_thread::yield();
    }
  });
  int expected = 0;
  bool in_order = true;
  std::vector<float> buf(16);
  while (expected < kCount) {
    const std::size_t n = ring.read(buf.data(), buf.size());
    if (n == 0) std::this_thread::yield();
    for (std::size_t i = 0; i < n; ++i) in_order &= buf[i] == static_cast<float>(expected++);
  }
  producer.join();
  EXPECT_TRUE(in_order);
}

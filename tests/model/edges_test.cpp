// The shipped model's track openings: the base model opens every clip as its corpus does
// (a cymbal crash on the first beat), a burst of hiss; the engine's pre-roll cuts it off.
// Engine interface only (no LibTorch headers).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "audio/edge_brightness.hpp"
#include "model/engine.hpp"

namespace tuneloop::model {
namespace {

// Clips as bench_model_edges makes them (its first 12): every second one tagged.
int openings_with_a_burst(Engine& engine, double pre_roll_seconds) {
  const std::vector<std::vector<std::string>> tag_sets = {
      {"piano"}, {"drums", "fast"}, {"strings", "slow"}, {"dense", "drums"},
      {"organ", "minor"}, {"pad", "soft"}};
  int bursts = 0;
  for (int i = 0; i < 12; ++i) {
    GenerateParams p;
    p.seed = static_cast<uint64_t>(i + 1);
    p.seconds = 8;
    p.pre_roll_seconds = pre_roll_seconds;
    if (i % 2 == 1) p.tags = tag_sets[static_cast<std::size_t>(i / 2)];
    const auto clip = engine.generate(p);
    EXPECT_EQ(clip.samples.size(), static_cast<std::size_t>(8 * clip.sample_rate));
    const auto e = audio::edge_brightness(clip);
    bursts += audio::bright_burst(e.opening, e.body);
  }
  return bursts;
}

TEST(ShippedModelEdgesTest, TracksOpenWithoutTheBurstOfHissTheBaseModelDrawsThere) {
  const auto shipped = std::filesystem::path(TUNELOOP_SOURCE_DIR) / "model" / "weights";
  ASSERT_TRUE(std::filesystem::exists(shipped / "denoiser.safetensors"))
      << "no shipped base model in " << shipped;
  auto engine = Engine::load({"", "cpu", 2});
  // As the model draws them, about half of these open brighter than they go on.
  EXPECT_GE(openings_with_a_burst(*engine, 0.0), 4);
  // As generate() hands them out (the default pre-roll): at most one, as often as endings.
  EXPECT_LE(openings_with_a_burst(*engine, GenerateParams{}.pre_roll_seconds), 1);
}

}  // namespace
}  // namespace tuneloop::model

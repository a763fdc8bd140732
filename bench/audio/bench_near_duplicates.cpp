// Calibrates the near-duplicate threshold of the variety measure (audio/sound_profile.hpp)
// on real clips: prints the sound-profile distance (dB) of every pair within each group of
// files (the same clip made twice with small differences: should read below the threshold)
// and between the groups' first files (different music: should read above it).
//   bench_near_duplicates a1.wav a2.wav -- b1.wav b2.wav -- c1.wav c2.wav
#include <cstdio>
#include <string>
#include <vector>

#include "audio/sound_profile.hpp"

using namespace tuneloop::audio;

int main(int argc, char** argv) {
  std::vector<std::vector<std::vector<double>>> groups(1);
  std::vector<std::vector<std::string>> names(1);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      groups.emplace_back();
      names.emplace_back();
      continue;
    }
    try {
      groups.back().push_back(sound_profile(read_audio(arg)));
      names.back().push_back(arg);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_near_duplicates: %s\n", e.what());
      return 1;
    }
  }
  std::printf("near-duplicate threshold: %.2f dB\n\nwithin groups (same clip, small differences):\n",
              kNearDuplicateDb);
  double worst_within = 0;
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t a = 0; a < groups[g].size(); ++a)
      for (std::size_t b = a + 1; b < groups[g].size(); ++b) {
        const double d = profile_distance(groups[g][a], groups[g][b]);
        worst_within = std::max(worst_within, d);
        std::printf("  %.2f dB  %s  %s\n", d, names[g][a].c_str(), names[g][b].c_str());
      }
  std::printf("\nbetween groups (different clips):\n");
  double closest_between = 1e9;
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t h = g + 1; h < groups.size(); ++h) {
      if (groups[g].empty() || groups[h].empty()) continue;
      const double d = profile_distance(groups[g][0], groups[h][0]);
      closest_between = std::min(closest_between, d);
      std::printf("  %.2f dB  %s  %s\n", d, names[g][0].c_str(), names[h][0].c_str());
    }
  std::printf("\nlargest within a group: %.2f dB; smallest between groups: %.2f dB\n", worst_within,
              closest_between);
  return 0;
}

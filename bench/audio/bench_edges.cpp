// Bright edges of audio files (audio/edge_brightness.hpp): per file, the share of energy above
// 4 kHz and the spectral centroid of the first and last 1.5 s against the rest, and how many
// files pass the bounds (share ratio ≤ 1.5, centroid within 25 %).
//   bench_edges a.wav b.wav …
#include <cstdio>
#include <string>

#include "audio/edge_brightness.hpp"

using namespace tuneloop::audio;

int main(int argc, char** argv) {
  int files = 0, opening_share_ok = 0, opening_centroid_ok = 0, ending_share_ok = 0,
      ending_centroid_ok = 0;
  std::printf("| file | >4k open %% | >4k body %% | >4k end %% | centroid open/body/end Hz |\n");
  std::printf("|---|---|---|---|---|\n");
  for (int i = 1; i < argc; ++i) {
    try {
      const EdgeBrightness e = edge_brightness(read_audio(argv[i]));
      ++files;
      opening_share_ok += e.opening_share_ratio() <= kMaxEdgeShareRatio;
      ending_share_ok += e.ending_share_ratio() <= kMaxEdgeShareRatio;
      opening_centroid_ok += e.opening_centroid_change() <= kMaxEdgeCentroidChange;
      ending_centroid_ok += e.ending_centroid_change() <= kMaxEdgeCentroidChange;
      std::printf("| %s | %.2f | %.2f | %.2f | %.0f / %.0f / %.0f |\n", argv[i],
                  100 * e.opening.high_share, 100 * e.body.high_share, 100 * e.ending.high_share,
                  e.opening.centroid_hz, e.body.centroid_hz, e.ending.centroid_hz);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_edges: %s: %s\n", argv[i], e.what());
    }
  }
  std::printf("\n%d files; share ratio ≤ %.1f: opening %d, ending %d; centroid within %.0f %%: "
              "opening %d, ending %d\n",
              files, kMaxEdgeShareRatio, opening_share_ok, ending_share_ok,
              100 * kMaxEdgeCentroidChange, opening_centroid_ok, ending_centroid_ok);
  return files > 0 ? 0 : 1;
}

// Bright track edges (the opening hiss) of generated clips: generates clips untagged and with
// a rotation of tags (seeds 1..N), measures the first and last 1.5 s against the rest
// (audio/edge_brightness.hpp) and prints how many pass the strict bounds (share of energy
// above 4 kHz at most 1.5 × the body's, spectral centroid within 25 % of the body's) and how
// many open or end with a burst of brightness (audio::bright_burst). The ending is the
// control: nothing in the model brightens it.
//
// Usage: bench_model_edges [--weights DIR] [--clips N=100] [--seconds S=8] [--pre-roll S=1.5]
//                    [--adapter FILE] [--strength X=1] [--threads T=2] [--list]
//        (--pre-roll 0 = the opening as the model draws it; --list prints every clip)
//        bench_model_edges --corpus DIR [--clips N=100] [--list]
//        (the first N clips of a corpus, DIR/clips/*.wav, as the model learns from them)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio.hpp"
#include "audio/edge_brightness.hpp"
#include "model/engine.hpp"

using namespace tuneloop;

namespace {

// Tag sets the rotation goes through (every second clip is untagged).
const std::vector<std::vector<std::string>> kTagSets = {
    {"piano"},           {"drums", "fast"},   {"strings", "slow"}, {"dense", "drums"},
    {"organ", "minor"},  {"pad", "soft"},     {"guitar", "major"}, {"brass", "loud"},
    {"lead", "arpeggio"}, {"bass", "sparse"}, {"woodwind", "high"}, {"nodrums", "chords"},
};

struct Args {
  std::string weights, adapter, corpus;
  int clips = 100, threads = 2;
  double seconds = 8, pre_roll = model::GenerateParams{}.pre_roll_seconds, strength = 1;
  bool list = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_model_edges: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--weights") a.weights = value();
    else if (k == "--adapter") a.adapter = value();
    else if (k == "--corpus") a.corpus = value();
    else if (k == "--clips") a.clips = std::atoi(value().c_str());
    else if (k == "--threads") a.threads = std::atoi(value().c_str());
    else if (k == "--seconds") a.seconds = std::atof(value().c_str());
    else if (k == "--pre-roll") a.pre_roll = std::atof(value().c_str());
    else if (k == "--strength") a.strength = std::atof(value().c_str());
    else if (k == "--list") a.list = true;
    else {
      std::fprintf(stderr, "bench_model_edges: unknown option %s (see the comment at the top)\n",
                   k.c_str());
      std::exit(2);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    std::unique_ptr<model::Engine> engine;
    std::vector<std::filesystem::path> files;
    if (args.corpus.empty()) {
      engine = model::Engine::load({args.weights, "cpu", args.threads});
      if (!args.adapter.empty()) engine->set_adapter(engine->load_adapter(args.adapter));
    } else {
      for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(args.corpus) / "clips"))
        if (f.path().extension() == ".wav") files.push_back(f.path());
      std::sort(files.begin(), files.end());
      if (static_cast<int>(files.size()) > args.clips) files.resize(static_cast<std::size_t>(args.clips));
    }
    const int clips = args.corpus.empty() ? args.clips : static_cast<int>(files.size());
    int open_share = 0, open_centroid = 0, end_share = 0, end_centroid = 0, open_burst = 0,
        end_burst = 0, open_brighter = 0, end_brighter = 0;
    double worst_open_ratio = 0;
    for (int i = 0; i < clips; ++i) {
      model::GenerateParams p;
      p.seed = static_cast<uint64_t>(i + 1);
      p.seconds = args.seconds;
      p.pre_roll_seconds = args.pre_roll;
      p.adapter_strength = args.strength;
      if (i % 2 == 1 && engine) p.tags = kTagSets[static_cast<std::size_t>(i / 2) % kTagSets.size()];
      const auto e = audio::edge_brightness(engine ? engine->generate(p) : audio::read_audio(files[i].string()));
      open_share += e.opening_share_ratio() <= audio::kMaxEdgeShareRatio;
      end_share += e.ending_share_ratio() <= audio::kMaxEdgeShareRatio;
      open_centroid += e.opening_centroid_change() <= audio::kMaxEdgeCentroidChange;
      end_centroid += e.ending_centroid_change() <= audio::kMaxEdgeCentroidChange;
      open_burst += audio::bright_burst(e.opening, e.body);
      end_burst += audio::bright_burst(e.ending, e.body);
      open_brighter += e.opening.centroid_hz > (1 + audio::kMaxEdgeCentroidChange) * e.body.centroid_hz;
      end_brighter += e.ending.centroid_hz > (1 + audio::kMaxEdgeCentroidChange) * e.body.centroid_hz;
      worst_open_ratio = std::max(worst_open_ratio, e.opening_share_ratio());
      if (args.list) {
        std::string tags;
        for (const auto& t : p.tags) tags += (tags.empty() ? "" : " ") + t;
        if (!engine) tags = files[static_cast<std::size_t>(i)].filename().string();
        std::printf("seed %3d %-18s >4k %%: open %5.2f body %5.2f end %5.2f; centroid Hz: %5.0f "
                    "%5.0f %5.0f\n",
                    i + 1, tags.empty() ? "(untagged)" : tags.c_str(), 100 * e.opening.high_share,
                    100 * e.body.high_share, 100 * e.ending.high_share, e.opening.centroid_hz,
                    e.body.centroid_hz, e.ending.centroid_hz);
      }
    }
    const double n = clips;
    if (engine)
      std::printf("%d clips of %.0f s, pre-roll %.1f s%s%s\n", clips, args.seconds, args.pre_roll,
                  args.adapter.empty() ? "" : ", adapter ", args.adapter.c_str());
    else
      std::printf("%d clips of the corpus %s\n", clips, args.corpus.c_str());
    std::printf("| edge | >4 kHz share ≤ 1.5 × body | centroid within 25 %% | burst of brightness | "
                "centroid > 1.25 × body |\n|---|---|---|---|---|\n");
    std::printf("| opening | %.0f %% | %.0f %% | %.0f %% | %.0f %% |\n", 100 * open_share / n,
                100 * open_centroid / n, 100 * open_burst / n, 100 * open_brighter / n);
    std::printf("| ending | %.0f %% | %.0f %% | %.0f %% | %.0f %% |\n", 100 * end_share / n,
                100 * end_centroid / n, 100 * end_burst / n, 100 * end_brighter / n);
    std::printf("worst opening share ratio: %.1f\n", worst_open_ratio);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model_edges: %s\n", e.what());
    return 1;
  }
  return 0;
}

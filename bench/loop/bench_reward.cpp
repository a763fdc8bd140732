// How well the reward model knows a listener, by the representation it reads: for every
// participant of finished pilot runs, the reward model is fitted as the loop fits it before
// iteration k (on the feedback on iterations 0..k-1, labels as the loop computes them) and
// scored two ways: leave-one-out pairwise accuracy on that feedback, and pairwise accuracy
// on the rated tracks of iteration k, which it never saw (the candidates' situation).
// Representations are functions of the embedding the loop stores beside each track (the
// preview's per-(channel, band) mean and standard deviation over time); with --weights, also
// of each rated track's audio read through the model (its latent, its log-mel profile).
//
//   bench_reward runs/compare-preroll/base_cand05/seed-*       # pilot output folders
//   bench_reward --weights model/weights runs/compare-preroll/base_cand05/seed-*

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "loop/dataset_builder.hpp"
#include "loop/feedback_reader.hpp"
#include "loop/iteration_runner.hpp"
#include "loop/reward_model.hpp"
#include "audio/audio.hpp"
#include "model/engine.hpp"

#include "store/store.hpp"

namespace fs = std::filesystem;
using namespace tuneloop;
using Embedding = std::vector<float>;

namespace {

constexpr int kChannels = 8, kBands = 16;  // the shipped denoiser's latent

struct Item {
  int iteration = -1;  // -1: a song
  Embedding embedding;
  Embedding features;  // the answer key's, when events.csv has them
  std::vector<Embedding> heard;  // representations of the track's audio (--weights)
  loop::FeedbackLabel label;
};

// Band groups of `size` adjacent bands, per channel: the mean of the means and of the
// standard deviations.
Embedding grouped(const Embedding& e, int size) {
  Embedding out;
  for (int part = 0; part < 2; ++part)
    for (int c = 0; c < kChannels; ++c)
      for (int g = 0; g < kBands; g += size) {
        double s = 0;
        for (int b = g; b < g + size; ++b) s += e[part * kChannels * kBands + c * kBands + b];
        out.push_back(static_cast<float>(s / size));
      }
  return out;
}

Embedding means_only(const Embedding& e) { return Embedding(e.begin(), e.begin() + kChannels * kBands); }

// Projection on the top `k` principal directions of `rows` (power iteration with deflation),
// after standardising each dimension over `rows`.
struct Pca {
  std::vector<double> mean, scale;
  std::vector<std::vector<double>> axes;
  Embedding project(const Embedding& e) const {
    Embedding out;
    for (const auto& a : axes) {
      double s = 0;
      for (std::size_t d = 0; d < a.size(); ++d) s += a[d] * (scale[d] > 0 ? (e[d] - mean[d]) / scale[d] : 0);
      out.push_back(static_cast<float>(s));
    }
    return out;
  }
};

Pca fit_pca(const std::vector<Embedding>& rows, int k) {
  const std::size_t n = rows.size(), dim = rows.front().size();
  Pca p;
  p.mean.assign(dim, 0);
  p.scale.assign(dim, 0);
  for (const auto& r : rows)
    for (std::size_t d = 0; d < dim; ++d) p.mean[d] += r[d] / n;
  for (const auto& r : rows)
    for (std::size_t d = 0; d < dim; ++d) p.scale[d] += (r[d] - p.mean[d]) * (r[d] - p.mean[d]) / n;
  for (auto& s : p.scale) s = s > 1e-12 ? std::sqrt(s) : 0;
  std::vector<std::vector<double>> x(n, std::vector<double>(dim));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < dim; ++d)
      x[i][d] = p.scale[d] > 0 ? (rows[i][d] - p.mean[d]) / p.scale[d] : 0;
  for (int a = 0; a < k && a < static_cast<int>(n) - 1; ++a) {
    std::vector<double> v(dim, 1.0 / std::sqrt(static_cast<double>(dim)));
    for (int it = 0; it < 200; ++it) {
      std::vector<double> w(dim, 0);
      for (const auto& r : x) {
        double dot = 0;
        for (std::size_t d = 0; d < dim; ++d) dot += r[d] * v[d];
        for (std::size_t d = 0; d < dim; ++d) w[d] += dot * r[d];
      }
      double norm = 0;
      for (double t : w) norm += t * t;
      norm = std::sqrt(norm);
      if (norm < 1e-12) break;
      for (std::size_t d = 0; d < dim; ++d) v[d] = w[d] / norm;
    }
    for (auto& r : x) {
      double dot = 0;
      for (std::size_t d = 0; d < dim; ++d) dot += r[d] * v[d];
      for (std::size_t d = 0; d < dim; ++d) r[d] -= dot * v[d];
    }
    p.axes.push_back(v);
  }
  return p;
}

// Pairwise accuracy of `predict` on the rated items (pairs with different labels).
std::optional<double> pairwise(const std::vector<const Item*>& items,
                               const std::function<double(const Item&)>& predict) {
  double right = 0;
  int pairs = 0;
  for (std::size_t i = 0; i < items.size(); ++i)
    for (std::size_t j = i + 1; j < items.size(); ++j) {
      const double truth = items[i]->label.label - items[j]->label.label;
      if (std::fabs(truth) < 1e-9) continue;
      const double guess = predict(*items[i]) - predict(*items[j]);
      right += guess == 0 ? 0.5 : (guess > 0) == (truth > 0);
      ++pairs;
    }
  if (pairs == 0) return std::nullopt;
  return right / pairs;
}

// The audio features the pilot's simulated listeners rate by (events.csv: onset_rate ..
// flatness), per participant and track id: a ceiling for the representations, never an
// input of the loop.
std::map<std::pair<std::string, long>, Embedding> answer_key(const fs::path& events) {
  std::map<std::pair<std::string, long>, Embedding> out;
  std::ifstream in(events);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() < 20 || f[4].empty() || f[13].empty()) continue;
    Embedding e;
    for (int i = 13; i <= 19; ++i) e.push_back(std::stof(f[i]));
    out[{f[0], std::stol(f[4])}] = e;
  }
  return out;
}

struct Tally {
  double loo = 0, ahead = 0;
  int loo_n = 0, ahead_n = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_reward: the reward model's accuracy on finished pilot runs, by representation"};
  std::vector<std::string> runs;
  app.add_option("runs", runs, "pilot output folders (each with participants/NAME/data)")->required();
  std::string weights;
  app.add_option("--weights", weights,
                 "also compare representations of each track's audio through these weights");
  CLI11_PARSE(app, argc, argv);
  std::unique_ptr<model::Engine> engine;
  if (!weights.empty()) {
    model::EngineOptions o;
    o.weights_dir = weights;
    o.threads = 1;
    try {
      engine = model::Engine::load(o);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_reward: %s\n", e.what());
      return 2;
    }
  }
  // Representations of a track's audio, computed once per track.
  const std::vector<std::pair<std::string, std::function<Embedding(const audio::Audio&)>>> heard = {
      {"audio latent 256", [&](const audio::Audio& a) { return engine->embed(a); }},
      {"mel profile 51 (via AE)", [&](const audio::Audio& a) { return engine->profile(a, true); }},
      {"mel profile 51 (direct)", [&](const audio::Audio& a) { return engine->profile(a, false); }},
      {"latent + mel profile (AE)", [&](const audio::Audio& a) {
         auto e = engine->embed(a);
         const auto p = engine->profile(a, true);
         e.insert(e.end(), p.begin(), p.end());
         return e;
       }},
  };

  using Rep = std::function<Embedding(const Embedding&)>;
  const std::vector<std::pair<std::string, Rep>> fixed = {
      {"mean+sd 256 (shipped)", [](const Embedding& e) { return e; }},
      {"mean 128", means_only},
      {"bands of 2: 128", [](const Embedding& e) { return grouped(e, 2); }},
      {"bands of 4: 64", [](const Embedding& e) { return grouped(e, 4); }},
      {"bands of 8: 32", [](const Embedding& e) { return grouped(e, 8); }},
      {"channels: 16", [](const Embedding& e) { return grouped(e, 16); }},
  };
  const std::vector<int> pca_sizes = {4};  // more components than that overfit 8 examples
  std::map<std::string, std::map<int, Tally>> tally;
  std::vector<std::string> order;
  for (const auto& f : fixed) order.push_back(f.first);
  for (int k : pca_sizes) order.push_back("pca " + std::to_string(k) + " (all tracks)");
  if (engine) {
    for (const auto& h : heard) order.push_back(h.first);
    order.push_back("audio latent, scored on previews");
  }

  const std::regex iter_re(R"(/iter-(\d+)/)");
  config::Config cfg;
  int listener_runs = 0;
  const std::string ceiling = "audio features 7 (ceiling)";
  order.push_back(ceiling);
  for (const auto& run : runs) {
    if (!fs::is_directory(fs::path(run) / "participants")) {
      std::fprintf(stderr, "bench_reward: %s is not a pilot output folder (no participants/)\n", run.c_str());
      return 2;
    }
    const auto key = answer_key(fs::path(run) / "events.csv");
    for (const auto& p : fs::directory_iterator(fs::path(run) / "participants")) {
      const fs::path db = p.path() / "data" / "tuneloop.db";
      if (!fs::exists(db)) continue;
      auto store = store::Store::open(db.string());
      const auto listener = store.find_listener(p.path().filename().string());
      if (!listener) continue;
      const auto inputs = loop::read_dataset_inputs(store, listener->id);
      const auto labels = loop::feedback_labels(inputs, cfg, 0);
      std::vector<Item> items;
      std::vector<Embedding> all;  // every track's embedding, rated or not (for the PCA)
      for (const auto& t : inputs.tracks) {
        std::ifstream in(t.path + ".embedding.json");
        if (in) all.push_back(nlohmann::json::parse(in).get<Embedding>());
      }
      std::map<std::string, long> ids;
      for (const auto& t : inputs.tracks) ids[t.path] = t.track_id;
      const std::string who = p.path().filename().string();
      for (const auto& l : labels) {
        std::smatch m;
        std::ifstream in(l.path + ".embedding.json");
        if (!in || !std::regex_search(l.path, m, iter_re)) continue;
        const auto f = key.find({who, ids[l.path]});
        if (f == key.end()) continue;
        Item item{std::stoi(m[1]), nlohmann::json::parse(in).get<Embedding>(), f->second, {}, l};
        if (engine) {
          const auto a = audio::read_audio(l.path);
          for (const auto& h : heard) item.heard.push_back(h.second(a));
        }
        items.push_back(std::move(item));
      }
      if (items.empty()) continue;
      ++listener_runs;
      const int last = std::max_element(items.begin(), items.end(), [](auto& a, auto& b) {
                         return a.iteration < b.iteration;
                       })->iteration;
      for (int k = 1; k <= last + 1; ++k) {
        std::vector<Rep> reps;
        for (const auto& f : fixed) reps.push_back(f.second);
        // The PCA sees the tracks made before iteration k (no labels).
        std::vector<Embedding> seen;
        for (const auto& it : items)
          if (it.iteration < k) seen.push_back(it.embedding);
        for (int size : pca_sizes) {
          auto pca = std::make_shared<Pca>(fit_pca(seen.size() > 2 ? seen : all, size));
          reps.push_back([pca](const Embedding& e) { return pca->project(e); });
        }
        const std::size_t from_sidecar = reps.size();
        if (engine)
          for (std::size_t h = 0; h <= heard.size(); ++h) reps.push_back(nullptr);
        reps.push_back(nullptr);  // the ceiling: the answer key's features
        for (std::size_t r = 0; r < reps.size(); ++r) {
          std::vector<loop::RewardExample> ex;
          std::vector<const Item*> next;
          const auto input = [&](const Item& i) {
            if (reps[r]) return reps[r](i.embedding);
            if (r + 2 == reps.size() && engine) return i.heard[0];  // learnt from audio
            if (r + 1 < reps.size()) return i.heard[r - from_sidecar];
            return i.features;
          };
          for (const auto& it : items) {
            if (it.iteration < k)
              ex.push_back({input(it), it.label.label, it.label.weight, it.label.rated});
            else if (it.iteration == k && it.label.rated)
              next.push_back(&it);
          }
          auto& t = tally[order[r]][k];
          if (const auto a = loop::loo_pairwise_accuracy(ex)) {
            t.loo += *a;
            ++t.loo_n;
          }
          if (ex.size() < 3 || next.size() < 2) continue;
          const auto model = loop::RewardModel::fit(ex);
          // The audio-latent model scores the next tracks as candidates are scored: on previews.
          const bool on_previews = engine && r + 2 == reps.size();
          if (const auto a = pairwise(next, [&](const Item& i) {
                return model.predict(on_previews ? i.embedding : input(i));
              })) {
            t.ahead += *a;
            ++t.ahead_n;
          }
        }
      }
    }
  }
  std::printf("%d listener-runs\n%-26s", listener_runs, "representation");
  for (int k = 1; k <= 3; ++k) std::printf("  LOO before it%d  next it%d", k, k);
  std::printf("\n");
  for (const auto& name : order) {
    std::printf("%-26s", name.c_str());
    for (int k = 1; k <= 3; ++k) {
      const Tally& t = tally[name][k];
      std::printf("  %6.3f (n=%2d)   %6.3f (n=%2d)", t.loo_n ? t.loo / t.loo_n : NAN, t.loo_n,
                  t.ahead_n ? t.ahead / t.ahead_n : NAN, t.ahead_n);
    }
    std::printf("\n");
  }
  return 0;
}

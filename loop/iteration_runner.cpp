#include "loop/iteration_runner.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "audio/audio.hpp"
#include "corpus/tags.hpp"
#include "loop/candidate_selection.hpp"
#include "loop/dataset_builder.hpp"
#include "loop/feedback_reader.hpp"
#include "loop/preference.hpp"
#include "loop/reward_model.hpp"
#include "loop/statistics.hpp"
#include "loop/tag_preferences.hpp"
#include "loop/variation_sources.hpp"

namespace tuneloop::loop {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The share of job progress that training takes; generation takes the rest.
constexpr double kTrainShare = 0.8;

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ",") + w;
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A seed per (iteration, track) that stays the same when a job is resumed; `base` (the
// config's training.seed, 0 by default) sets apart listeners and study runs.
std::uint64_t track_seed(std::uint64_t base, store::Id iteration_id, int index) {
  std::uint64_t x = static_cast<std::uint64_t>(iteration_id) * 0x9E3779B97F4A7C15ull + index + 1 +
                    base * 0xD1B54A32D192ED03ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x & 0x7FFFFFFFFFFFull;  // fits the store's signed 64-bit seed and JSON doubles
}

// The latents of songs and liked tracks are cached by content hash so every iteration does
// not re-encode them.
model::LatentHandle cached_latent(model::Engine& engine, const std::string& path,
                                const std::string& cache_dir) {
  std::string cached;
  if (!cache_dir.empty()) {
    cached = (fs::path(cache_dir) / ("song-" + audio::sha256_file(path) + ".safetensors")).string();
    if (fs::exists(cached)) {
      try {
        return engine.load_latent(cached);
      } catch (const std::exception& e) {
        spdlog::warn("loop: re-encoding {} (cached latent unreadable: {})", path, e.what());
      }
    }
  }
  model::LatentHandle latent = engine.encode(audio::read_audio(path));
  if (!cached.empty()) {
    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    engine.save_latent(latent, cached);
  }
  return latent;
}

// The generated tracks among the fine-tune's examples (what the listener liked most), best
// score first; ties keep the manifest's order.
std::vector<const ManifestItem*> liked_tracks(const Manifest& manifest) {
  std::vector<const ManifestItem*> tracks;
  for (const auto& item : manifest.items)
    if (item.kind == ManifestItem::Kind::track && item.score) tracks.push_back(&item);
  std::stable_sort(tracks.begin(), tracks.end(),
                   [](const ManifestItem* a, const ManifestItem* b) { return *a->score > *b->score; });
  return tracks;
}

// Where a generated track's embedding is kept beside it: the preview of its clean latent,
// the representation its candidates were scored in.
std::string embedding_sidecar(const std::string& track_path) { return track_path + ".embedding.json"; }

// The embedding the reward model learns from: a generated track's preview (its sidecar),
// so it is trained in the space candidates are scored in; else (the listener's songs, tracks
// from before sidecars) the embedding of the audio, cached by content hash and base model.
std::vector<float> embedding_of(model::Engine& engine, const std::string& path,
                                const std::string& cache_dir) {
  if (const std::string side = embedding_sidecar(path); fs::exists(side)) {
    try {
      std::ifstream in(side);
      return json::parse(in).get<std::vector<float>>();
    } catch (const std::exception& e) {
      spdlog::warn("loop: {} unreadable ({}); embedding the audio instead", side, e.what());
    }
  }
  const fs::path cached = fs::path(cache_dir) / ("embedding-" + engine.base_hash().substr(0, 16) +
                                                 "-" + audio::sha256_file(path) + ".json");
  if (!cache_dir.empty() && fs::exists(cached)) {
    try {
      std::ifstream in(cached);
      return json::parse(in).get<std::vector<float>>();
    } catch (const std::exception& e) {
      spdlog::warn("loop: re-embedding {} (cached embedding unreadable: {})", path, e.what());
    }
  }
  std::vector<float> e = engine.embed(audio::read_audio(path));
  if (!cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    std::ofstream(cached, std::ios::trunc) << json(e).dump();
  }
  return e;
}

// Reward-weighted regression: every track with feedback is an example, weighted by
// exp((predicted − best) / β); β defaults to half the spread of the predictions, so a
// track one spread below the best counts e⁻² ≈ 0.14 as much.
std::vector<model::WeightedExample> reward_weighted(const RewardModel& reward,
                                                    const std::vector<FeedbackLabel>& labels,
                                                    const std::vector<std::vector<float>>& embeddings,
                                                    double beta) {
  std::vector<double> predicted;
  for (const auto& e : embeddings) predicted.push_back(reward.predict(e));
  const double best = *std::max_element(predicted.begin(), predicted.end());
  if (!(beta > 0)) beta = predicted.size() > 1 ? std::max(0.5 * sample_sd(predicted), 1e-3) : 1.0;
  std::vector<model::WeightedExample> out;
  for (std::size_t i = 0; i < labels.size(); ++i)
    out.push_back({labels[i].path, std::max(std::exp((predicted[i] - best) / beta), 1e-3)});
  return out;
}

}  // namespace

std::vector<FeedbackLabel> feedback_labels(const DatasetInputs& inputs, const config::Config& config,
                                           std::int64_t now_ms) {
  std::vector<FeedbackLabel> out;
  const auto scores =
      score_tracks(inputs.tracks, config.feedback, config.dataset.min_ratings, now_ms);
  for (std::size_t i = 0; i < inputs.tracks.size(); ++i) {
    const PreferenceScore& s = scores[i];
    if (!s.has_feedback) continue;
    out.push_back({inputs.tracks[i].path, s.score, s.rated ? 1.0 : kListenOnlyWeight, s.rated,
                   inputs.tracks[i].drawn_tags});
  }
  if (config.dataset.include_songs)
    for (const auto& song : inputs.songs) out.push_back({song.path, 1.0, kSongWeight, false, std::nullopt});
  return out;
}

std::string plan_to_json(const IterationPlan& p) {
  json examples = json::array();
  for (const auto& e : p.fine_tune.examples) examples.push_back({{"path", e.audio_path}, {"weight", e.weight}});
  const auto& f = p.fine_tune;
  json feedback = json::array();
  for (const auto& l : p.feedback) {
    json item{{"path", l.path}, {"label", l.label}, {"weight", l.weight}, {"rated", l.rated}};
    if (l.drawn_tags) item["drawn_tags"] = *l.drawn_tags;
    feedback.push_back(std::move(item));
  }
  json liked = json::array();
  for (const auto& l : p.liked) liked.push_back({{"id", l.id}, {"path", l.path}});
  return json{{"plan_version", IterationPlan::kVersion},
              {"listener_id", p.listener_id},
              {"iteration_id", p.iteration_id},
              {"number", p.number},
              {"train", p.train},
              {"fine_tune",
               {{"examples", examples},
                {"previous_adapter", f.previous_adapter},
                {"steps", f.steps},
                {"rank", f.rank},
                {"alpha", f.alpha},
                {"lr", f.lr},
                {"batch", f.batch},
                {"dropout", f.dropout},
                {"low_noise_emphasis", f.low_noise_emphasis},
                {"targets", f.targets},
                {"output_path", f.output_path},
                {"checkpoint_every", f.checkpoint_every},
                {"latent_cache_dir", f.latent_cache_dir},
                {"name", f.name},
                {"seed", f.seed},
                {"calibration_clips", f.calibration_clips},
                {"strength_scales", f.strength_scales},
                {"calibration_seconds", f.calibration_seconds}}},
              {"parent_adapter", p.parent_adapter},
              {"song_paths", p.song_paths},
              {"liked", liked},
              {"generation",
               {{"tracks_per_iteration", p.generation.tracks_per_iteration},
                {"seeded_fraction", p.generation.seeded_fraction},
                {"liked_fraction", p.generation.liked_fraction},
                {"crossover_fraction", p.generation.crossover_fraction},
                {"strength", p.generation.strength},
                {"seconds", p.generation.seconds},
                {"tags", p.generation.tags},
                {"candidates", p.generation.candidates},
                {"preview_steps", p.generation.preview_steps},
                {"diversity", p.generation.diversity},
                {"explore", p.generation.explore},
                {"learn_tags", p.generation.learn_tags}}},
              {"objective", config::to_string(p.objective)},
              {"beta", p.beta},
              {"feedback", feedback},
              {"negatives", p.negatives},
              {"reward_model_path", p.reward_model_path},
              {"seed", p.seed},
              {"sampler_steps", p.sampler_steps},
              {"guidance", p.guidance},
              {"vocoder", p.vocoder},
              {"adapter_strength", p.adapter_strength},
              {"tracks_dir", p.tracks_dir},
              {"latent_dir", p.latent_dir},
              {"dataset_size", p.dataset_size}}
      .dump();
}

IterationPlan plan_from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    IterationPlan p;
    p.listener_id = j.at("listener_id").get<store::Id>();
    p.iteration_id = j.at("iteration_id").get<store::Id>();
    p.number = j.at("number").get<int>();
    p.train = j.at("train").get<bool>();
    const json& f = j.at("fine_tune");
    for (const auto& e : f.at("examples"))
      p.fine_tune.examples.push_back({e.at("path").get<std::string>(), e.at("weight").get<double>()});
    p.fine_tune.previous_adapter = f.at("previous_adapter").get<std::string>();
    p.fine_tune.steps = f.at("steps").get<int>();
    p.fine_tune.rank = f.at("rank").get<int>();
    p.fine_tune.alpha = f.at("alpha").get<double>();
    p.fine_tune.lr = f.at("lr").get<double>();
    p.fine_tune.batch = f.at("batch").get<int>();
    // Version-1 plans may lack the keys added to them over time; their defaults are what
    // those plans were run with: every layer, no dropout, uniform noise levels.
    p.fine_tune.dropout = f.value("dropout", 0.0);
    p.fine_tune.low_noise_emphasis = f.value("low_noise_emphasis", 1.0);
    p.fine_tune.targets = f.value("targets", std::vector<std::string>{"*"});
    p.fine_tune.output_path = f.at("output_path").get<std::string>();
    p.fine_tune.checkpoint_every = f.at("checkpoint_every").get<int>();
    p.fine_tune.latent_cache_dir = f.at("latent_cache_dir").get<std::string>();
    p.fine_tune.name = f.at("name").get<std::string>();
    p.fine_tune.seed = f.at("seed").get<std::uint64_t>();
    p.fine_tune.calibration_clips = f.value("calibration_clips", 0);  // version 1: no calibration
    p.fine_tune.strength_scales = f.value("strength_scales", std::vector<double>{1.0});
    p.fine_tune.calibration_seconds = f.value("calibration_seconds", 8.0);
    p.parent_adapter = j.at("parent_adapter").get<std::string>();
    p.song_paths = j.at("song_paths").get<std::vector<std::string>>();
    const json& g = j.at("generation");
    p.generation.tracks_per_iteration = g.at("tracks_per_iteration").get<int>();
    p.generation.seeded_fraction = g.at("seeded_fraction").get<double>();
    p.generation.strength = g.at("strength").get<double>();
    p.generation.seconds = g.at("seconds").get<double>();
    p.generation.tags = g.at("tags").get<std::vector<std::string>>();
    p.generation.learn_tags = g.value("learn_tags", false);  // absent from older plans
    p.generation.crossover_fraction = g.value("crossover_fraction", 0.0);
    p.sampler_steps = j.at("sampler_steps").get<int>();
    p.guidance = j.at("guidance").get<double>();
    p.vocoder = j.value("vocoder", std::string("auto"));
    p.adapter_strength = j.value("adapter_strength", 1.0);
    p.tracks_dir = j.at("tracks_dir").get<std::string>();
    p.latent_dir = j.at("latent_dir").get<std::string>();
    p.dataset_size = j.at("dataset_size").get<int>();
    const int version = j.value("plan_version", 1);
    if (version > IterationPlan::kVersion)
      throw std::runtime_error("plan_version " + std::to_string(version) +
                               " is newer than this tuneloopd reads (" +
                               std::to_string(IterationPlan::kVersion) + ")");
    // Version-2 plans made no variations of liked tracks.
    p.generation.liked_fraction = version >= 3 ? g.at("liked_fraction").get<double>() : 0.0;
    if (version >= 3) {
      for (const auto& l : j.at("liked"))
        p.liked.push_back({l.at("id").get<store::Id>(), l.at("path").get<std::string>()});
    }
    if (version >= 2) {
      p.generation.candidates = g.at("candidates").get<int>();
      p.generation.preview_steps = g.at("preview_steps").get<int>();
      p.generation.diversity = g.at("diversity").get<double>();
      p.generation.explore = g.at("explore").get<double>();
      const std::string objective = j.at("objective").get<std::string>();
      for (auto o : {config::Objective::sft, config::Objective::kto, config::Objective::dpo,
                     config::Objective::rwr})
        if (objective == config::to_string(o)) p.objective = o;
      p.beta = j.at("beta").get<double>();
      for (const auto& l : j.at("feedback")) {
        p.feedback.push_back({l.at("path").get<std::string>(), l.at("label").get<double>(),
                              l.at("weight").get<double>(), l.at("rated").get<bool>(), std::nullopt});
        if (l.contains("drawn_tags"))
          p.feedback.back().drawn_tags = l.at("drawn_tags").get<std::vector<std::string>>();
      }
      p.negatives = j.at("negatives").get<std::vector<std::string>>();
      p.reward_model_path = j.at("reward_model_path").get<std::string>();
      p.seed = j.at("seed").get<std::uint64_t>();
    } else {
      p.generation.candidates = 1;  // version 1 drew each track blind
    }
    return p;
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("iteration job params: ") + e.what());
  }
}

IterationPlan prepare_iteration(store::Store& store, const config::Config& config,
                                store::Id listener_id, std::int64_t now_ms) {
  const fs::path data = config.paths.data_dir;
  IterationPlan p;
  p.listener_id = listener_id;
  p.generation = config.generation;
  p.sampler_steps = config.model.steps;
  p.guidance = config.model.guidance;
  p.vocoder = std::string(config::to_string(config.model.vocoder));
  p.adapter_strength = config.model.adapter_strength;
  p.seed = static_cast<std::uint64_t>(config.training.seed);
  p.latent_dir = (data / "latents").string();
  for (const auto& s : store.songs(listener_id)) p.song_paths.push_back(s.path);

  const std::optional<store::Iteration> parent = store.active_iteration(listener_id);
  store.transaction([&] {
    const store::Iteration it = store.create_iteration(
        listener_id, parent ? std::optional<store::Id>(parent->id) : std::nullopt, now_ms);
    p.iteration_id = it.id;
    p.number = it.number;
    p.train = it.number > 0 && parent.has_value();
    p.tracks_dir = (data / "tracks" / ("iter-" + std::to_string(it.number))).string();
    p.parent_adapter = parent ? parent->adapter_path : "";
    if (p.train) {
      // kto and dpo learn from the disliked tracks too: the manifest's negatives
      // (dataset.negative_percentile) are theirs.
      config::DatasetConfig dataset = config.dataset;
      const bool contrastive = config.training.objective == config::Objective::kto ||
                               config.training.objective == config::Objective::dpo;
      dataset.use_negatives = dataset.use_negatives || contrastive;
      const DatasetInputs inputs = read_dataset_inputs(store, listener_id);
      const DatasetBuilder builder(config.feedback, dataset);
      const Manifest manifest = builder.build(inputs, it.number, now_ms);
      if (manifest.items.empty())
        throw EmptyDatasetError("nothing to train iteration " + std::to_string(it.number) +
                                " on: no songs and no rated or listened track scores above zero");
      store.set_iteration_manifest(it.id, to_json(manifest));
      for (const auto& item : manifest.items) p.fine_tune.examples.push_back({item.path, item.weight});
      std::vector<LikedSource> liked;
      for (const ManifestItem* t : liked_tracks(manifest)) liked.push_back({t->id, t->path, *t->score});
      std::vector<TrackOrigin> history;
      for (const auto& t : store.tracks(listener_id)) history.push_back({t.id, variation_of(t.params_json)});
      for (const auto& l : order_for_variation(std::move(liked), history)) p.liked.push_back({l.id, l.path});
      if (contrastive)
        for (const auto& item : manifest.negatives) p.negatives.push_back(item.path);
      p.dataset_size = static_cast<int>(manifest.items.size());
      p.feedback = feedback_labels(inputs, config, now_ms);
      p.objective = config.training.objective;
      p.beta = config.training.beta;
      auto& f = p.fine_tune;
      const auto& t = config.training;
      f.previous_adapter = t.init == config::AdapterInit::parent ? p.parent_adapter : "";
      f.steps = t.steps;
      f.rank = t.rank;
      f.alpha = t.alpha;
      f.lr = t.learning_rate;
      f.batch = t.batch_size;
      f.dropout = t.dropout;
      f.low_noise_emphasis = t.low_noise_emphasis;
      f.targets = t.targets;
      f.checkpoint_every = t.checkpoint_every;
      f.calibration_clips = t.calibration_clips;
      f.strength_scales = t.strength_scales;
      f.calibration_seconds = config.generation.seconds;  // the length its tracks will have
      f.latent_cache_dir = p.latent_dir;
      f.name = "iter-" + std::to_string(it.number) + "-" + std::to_string(it.id);
      f.output_path = (data / "adapters" / (f.name + ".safetensors")).string();
      p.reward_model_path = (data / "adapters" / (f.name + ".reward.json")).string();
      f.seed = static_cast<std::uint64_t>(t.seed) + static_cast<std::uint64_t>(it.number);
    }
    store::NewJob nj;
    nj.kind = kIterationJobKind;
    nj.listener_id = listener_id;
    nj.iteration_id = it.id;
    nj.params_json = plan_to_json(p);
    p.job_id = store.create_job(nj);
    p.fine_tune.checkpoint_path =
        p.train ? (data / "jobs" / std::to_string(p.job_id) / "checkpoint.safetensors").string() : "";
    if (p.train) store.set_job_checkpoint(p.job_id, p.fine_tune.checkpoint_path);
    store.start_job(p.job_id);
    store.set_iteration_status(it.id, p.train ? store::IterationStatus::training
                                              : store::IterationStatus::generating);
  });
  return p;
}

namespace {

// The categories free tracks may draw a word of: the corpus's, as far as the weights know
// their words, without the key and scale (a drawn mode gets its key from generation.tags,
// else from the track's seed) and without the categories `fixed` (generation.tags) already
// names (a scale word names the mode).
std::vector<TagChoices> drawable_tags(const model::Engine& engine, const std::vector<std::string>& fixed) {
  const auto vocabulary = engine.tag_vocabulary();
  const auto has = [](const std::vector<std::string>& words, const std::string& w) {
    return std::find(words.begin(), words.end(), w) != words.end();
  };
  std::vector<TagChoices> out;
  const auto& categories = corpus::tag_categories();
  for (std::size_t c = 0; c < categories.size(); ++c) {
    if (c == corpus::kKeyCategory || c == corpus::kScaleCategory) continue;
    TagChoices choice{categories[c].name, {}};
    bool named = false;
    if (c == corpus::kModeCategory)
      for (const auto& w : categories[corpus::kScaleCategory].words) named = named || has(fixed, w);
    for (const auto& w : categories[c].words) {
      named = named || has(fixed, w);
      if (has(vocabulary, w)) choice.words.push_back(w);
    }
    if (!named && !choice.words.empty()) out.push_back(std::move(choice));
  }
  return out;
}

// Loads an adapter file unless the engine already holds it (by its name: the plan's, else
// the file's stem). Returns the name. Throws model::ModelError for a file that does not load.
std::string load_named_adapter(model::Engine& engine, const std::string& path, const std::string& name) {
  const std::string wanted = name.empty() ? fs::path(path).stem().string() : name;
  const auto loaded = engine.adapters();
  if (std::find(loaded.begin(), loaded.end(), wanted) != loaded.end()) return wanted;
  return engine.load_adapter(path);
}

}  // namespace

IterationOutcome run_iteration(model::Engine& engine, const IterationPlan& p,
                               const IterationProgressFn& progress,
                               const std::atomic<bool>& cancel) {
  IterationOutcome out;
  const double gen_start = p.train ? kTrainShare : 0.0;
  std::string adapter;
  if (!p.train && !p.parent_adapter.empty()) adapter = engine.load_adapter(p.parent_adapter);

  // The reward model learns from everything the listener said so far.
  std::optional<RewardModel> reward;
  model::FineTuneRequest request = p.fine_tune;
  if (p.train && p.feedback.size() >= 3) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<RewardExample> examples;
    std::vector<std::vector<float>> embeddings;
    for (const auto& l : p.feedback) {
      if (cancel) throw model::Cancelled("iteration cancelled while fitting the reward model");
      embeddings.push_back(embedding_of(engine, l.path, p.latent_dir));
      examples.push_back({embeddings.back(), l.label, l.weight, l.rated});
    }
    reward = RewardModel::fit(examples);
    out.reward_accuracy = loo_pairwise_accuracy(examples);
    if (!p.reward_model_path.empty()) {
      std::error_code ec;
      fs::create_directories(fs::path(p.reward_model_path).parent_path(), ec);
      std::ofstream(p.reward_model_path, std::ios::trunc) << reward->to_json();
      out.reward_model_path = p.reward_model_path;
    }
    if (p.objective == config::Objective::rwr)
      request.examples = reward_weighted(*reward, p.feedback, embeddings, p.beta);
    out.reward_seconds = seconds_since(t0);
    spdlog::info("loop: iteration {} reward model on {} tracks, leave-one-out pairwise accuracy {}",
                 p.number, examples.size(),
                 out.reward_accuracy ? std::to_string(*out.reward_accuracy) : "n/a");
  }
  const bool contrastive = p.objective == config::Objective::kto || p.objective == config::Objective::dpo;
  if (p.train && contrastive && p.negatives.empty())
    spdlog::warn("loop: iteration {} has no disliked tracks yet; training it with sft, not {}",
                 p.number, config::to_string(p.objective));
  if (contrastive && !p.negatives.empty()) {
    request.objective = std::string(config::to_string(p.objective));
    request.beta = p.beta;
    for (const auto& n : p.negatives) request.undesirable.push_back({n, 1.0});
  }

  if (p.train) {
    if (p.fine_tune.examples.empty())
      throw std::runtime_error("iteration " + std::to_string(p.number) +
                               ": the dataset is empty (no songs and no liked tracks)");
    const auto t0 = std::chrono::steady_clock::now();
    std::error_code ec;
    fs::create_directories(fs::path(p.fine_tune.output_path).parent_path(), ec);
    if (!p.fine_tune.checkpoint_path.empty())
      fs::create_directories(fs::path(p.fine_tune.checkpoint_path).parent_path(), ec);
    fs::create_directories(p.fine_tune.latent_cache_dir, ec);
    auto on_progress = [&](const model::Progress& m) {
      if (m.phase == "train") out.final_loss = m.loss;
      if (!progress) return;
      IterationProgress ip;
      ip.phase = m.phase == "train" ? "train" : m.phase;
      ip.step = m.step;
      ip.total = m.total;
      ip.loss = m.loss;
      ip.eta_seconds = m.eta_seconds;
      // "evaluate" comes before the first step and after the last: keep the bar where it is.
      const bool stepped = m.phase == "train" || m.phase == "evaluate";
      ip.fraction = stepped && m.total > 0 ? kTrainShare * m.step / m.total : 0.0;
      if (m.phase == "save") ip.fraction = kTrainShare;
      progress(ip);
    };
    // The level calibration samples as this iteration's tracks will be sampled.
    request.calibration_steps = p.sampler_steps;
    request.calibration_vocoder = p.vocoder;
    request.calibration_strength = p.adapter_strength;
    // A job stopped after its adapter was written (it is renamed into place whole, after
    // the calibration) resumes at generation instead of training again.
    bool trained = false;
    if (fs::exists(p.fine_tune.output_path)) {
      try {
        out.adapter_path = p.fine_tune.output_path;
        adapter = load_named_adapter(engine, out.adapter_path, p.fine_tune.name);
        trained = true;
        spdlog::info("loop: iteration {} resumes with its adapter already trained: {}", p.number,
                     out.adapter_path);
      } catch (const std::exception& e) {
        spdlog::warn("loop: iteration {}: {} cannot be loaded ({}); training it again", p.number,
                     p.fine_tune.output_path, e.what());
      }
    }
    if (!trained) {
      out.adapter_path = engine.fine_tune(request, on_progress, cancel);
      adapter = load_named_adapter(engine, out.adapter_path, p.fine_tune.name);
    }
    out.train_seconds = seconds_since(t0);
  }

  const auto t1 = std::chrono::steady_clock::now();
  const int n = std::max(0, p.generation.tracks_per_iteration);
  // Tracks seeded from the listener's songs, one per source: the SLERP merge of all songs
  // (with two or more), then the songs one by one, starting at a different song each
  // iteration. Two tracks from one latent sound nearly the same (docs/loop.md), so slots
  // beyond the sources are drawn fresh.
  std::vector<model::LatentHandle> song_sources;
  if (!p.song_paths.empty() && p.generation.seeded_fraction > 0) {
    const auto want = static_cast<std::size_t>(
        std::clamp(static_cast<int>(std::lround(n * p.generation.seeded_fraction)), 0, n));
    if (want > 0) {
      std::vector<model::LatentHandle> latents;
      for (const auto& s : p.song_paths) {
        if (cancel) throw model::Cancelled("iteration cancelled while encoding songs");
        latents.push_back(cached_latent(engine, s, p.latent_dir));
      }
      if (latents.size() >= 2) song_sources.push_back(engine.slerp(latents));
      for (std::size_t k = 0; k < latents.size() && song_sources.size() < want; ++k)
        song_sources.push_back(latents[(k + static_cast<std::size_t>(std::max(0, p.number))) % latents.size()]);
      song_sources.resize(std::min(want, song_sources.size()));
    }
  }
  const int seeded = static_cast<int>(song_sources.size());
  // Variations of the tracks the listener liked most, one per track of the plan (one per
  // lineage, the least varied first: loop/variation_sources.hpp); slots beyond them are
  // drawn fresh.
  // Each liked track's latent, read once for its variation and its crossovers.
  std::vector<std::optional<model::LatentHandle>> liked_read(p.liked.size());
  const auto liked_latent = [&](std::size_t k) -> const model::LatentHandle& {
    if (!liked_read[k]) liked_read[k] = cached_latent(engine, p.liked[k].path, p.latent_dir);
    return *liked_read[k];
  };
  int liked = 0;
  std::vector<model::LatentHandle> liked_latents;
  std::vector<store::Id> liked_sources;
  if (!p.liked.empty() && p.generation.liked_fraction > 0) {
    const auto want = static_cast<std::size_t>(
        std::clamp(static_cast<int>(std::lround(n * p.generation.liked_fraction)), 0, n - seeded));
    for (std::size_t k = 0; k < p.liked.size() && liked_latents.size() < want; ++k) {
      if (cancel) throw model::Cancelled("iteration cancelled while encoding liked tracks");
      try {
        liked_latents.push_back(liked_latent(k));
        liked_sources.push_back(p.liked[k].id);
      } catch (const std::exception& e) {
        spdlog::warn("loop: iteration {}: no variation of {} ({})", p.number, p.liked[k].path, e.what());
      }
    }
    liked = static_cast<int>(liked_latents.size());
  }
  // Crossovers: the SLERP merge of two liked tracks of different lineages (the variation
  // sources, in their order, pairs (1,2), (1,3), (2,3), (1,4), …), each pair once.
  std::vector<model::LatentHandle> crossover_latents;
  std::vector<std::pair<store::Id, store::Id>> crossover_parents;
  if (p.liked.size() >= 2 && p.generation.crossover_fraction > 0) {
    const auto want = static_cast<std::size_t>(std::clamp(
        static_cast<int>(std::lround(n * p.generation.crossover_fraction)), 0, n - seeded - liked));
    for (std::size_t b = 1; b < p.liked.size() && crossover_latents.size() < want; ++b)
      for (std::size_t a = 0; a < b && crossover_latents.size() < want; ++a) {
        if (cancel) throw model::Cancelled("iteration cancelled while merging liked tracks");
        try {
          crossover_latents.push_back(engine.slerp({liked_latent(a), liked_latent(b)}));
          crossover_parents.emplace_back(p.liked[a].id, p.liked[b].id);
        } catch (const std::exception& e) {
          spdlog::warn("loop: iteration {}: no crossover of {} and {} ({})", p.number,
                       p.liked[a].path, p.liked[b].path, e.what());
        }
      }
  }
  const int crossed = static_cast<int>(crossover_latents.size());
  std::error_code ec;
  fs::create_directories(p.tracks_dir, ec);
  if (ec) throw std::runtime_error("cannot create " + p.tracks_dir + ": " + ec.message());
  // Free tracks draw their tags from what the listener thought of earlier drawn tags.
  std::optional<TagPreferences> tag_preferences;
  if (p.train && p.generation.learn_tags) {
    std::vector<TagExample> examples;
    for (const auto& l : p.feedback)
      if (l.drawn_tags) examples.push_back({*l.drawn_tags, l.label, l.weight});
    const auto choices = drawable_tags(engine, p.generation.tags);
    if (choices.empty()) {
      spdlog::warn("loop: iteration {}: generation.learn_tags, but no tag category is left to draw "
                   "(the weights know no tags, or generation.tags fixes every category)", p.number);
    } else {
      tag_preferences = TagPreferences::fit(choices, examples);
      out.tag_preferences = tag_preferences->summary();
      spdlog::info("loop: iteration {} draws tags from {} tracks drawn with tags; best so far: {}",
                   p.number, examples.size(), out.tag_preferences);
    }
  }
  std::vector<std::optional<std::vector<std::string>>> drawn(n);  // per slot: the words it drew
  std::vector<model::GenerateParams> slots(n);
  for (int i = 0; i < n; ++i) {
    model::GenerateParams& g = slots[i];
    g.seconds = p.generation.seconds;
    g.seed = track_seed(p.seed, p.iteration_id, i);
    g.steps = p.sampler_steps;
    g.guidance = p.guidance;
    g.vocoder = p.vocoder;
    g.adapter = adapter;
    g.adapter_strength = p.adapter_strength;
    if (i < seeded) {
      g.seed_latent = song_sources[i];
      g.strength = p.generation.strength;
    } else if (i < seeded + liked) {
      g.seed_latent = liked_latents[i - seeded];
      g.strength = p.generation.strength;
    } else if (i < seeded + liked + crossed) {
      g.seed_latent = crossover_latents[i - seeded - liked];
      g.strength = p.generation.strength;
    } else {
      g.tags = p.generation.tags;
      if (tag_preferences) {
        drawn[i] = tag_preferences->draw(track_seed(p.seed, p.iteration_id, -1000001 - i),
                                         p.generation.explore);
        g.tags.insert(g.tags.end(), drawn[i]->begin(), drawn[i]->end());
      }
    }
  }
  out.predicted.assign(n, std::nullopt);
  std::vector<std::vector<float>> previews(n);  // each kept track's preview embedding
  const int preview = std::clamp(p.generation.preview_steps, 1, std::max(1, p.sampler_steps));
  const int per_slot = std::max(1, p.generation.candidates);
  if (per_slot > 1 && n > 0) {
    // Every candidate is previewed after a few solver steps and scored by a Thompson draw
    // of the reward model (one draw per slot); without a reward model (iteration 0) the
    // selection keeps the most varied batch.
    const auto t2 = std::chrono::steady_clock::now();
    std::vector<Candidate> pool;
    std::vector<std::uint64_t> seeds;
    for (int i = 0; i < n; ++i) {
      const auto weights =
          reward ? reward->sample_weights(track_seed(p.seed, p.iteration_id, -1 - i), p.generation.explore)
                 : std::vector<double>{};
      for (int c = 0; c < per_slot; ++c) {
        if (cancel) throw model::Cancelled("iteration cancelled while previewing candidates");
        if (progress) {
          IterationProgress ip;
          ip.phase = "candidates";
          ip.step = i * per_slot + c;
          ip.total = n * per_slot;
          ip.fraction = gen_start + (1.0 - gen_start) * 0.5 * ip.step / (n * per_slot);
          progress(ip);
        }
        model::GenerateParams g = slots[i];
        g.seed = c == 0 ? g.seed : track_seed(p.seed, p.iteration_id, i + c * 1000003);
        Candidate cand;
        cand.slot = i;
        cand.embedding = engine.preview(g, preview);
        cand.reward = reward ? reward->predict_with(weights, cand.embedding) : 0.0;
        pool.push_back(std::move(cand));
        seeds.push_back(g.seed);
      }
    }
    SelectionOptions so;
    so.diversity = p.generation.diversity;
    const auto chosen = select_varied(pool, n, so);
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      const Candidate& c = pool[chosen[k]];
      slots[c.slot].seed = seeds[chosen[k]];
      previews[c.slot] = c.embedding;
    }
    out.candidates = static_cast<int>(pool.size());
    out.preview_seconds = seconds_since(t2);
  } else {
    const auto t2 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      if (cancel) throw model::Cancelled("iteration cancelled while previewing tracks");
      previews[i] = engine.preview(slots[i], preview);
    }
    out.preview_seconds = seconds_since(t2);
  }
  if (reward)
    for (int i = 0; i < n; ++i) out.predicted[i] = reward->predict(previews[i]);
  const double gen_from = per_slot > 1 ? gen_start + (1.0 - gen_start) * 0.5 : gen_start;
  const auto t3 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    if (cancel) throw model::Cancelled("iteration cancelled while generating");
    if (progress) {
      IterationProgress ip;
      ip.phase = "generate";
      ip.step = i;
      ip.total = n;
      ip.fraction = gen_from + (1.0 - gen_from) * i / std::max(1, n);
      if (i > 0) ip.eta_seconds = seconds_since(t3) / i * (n - i);
      progress(ip);
    }
    const model::GenerateParams& g = slots[i];
    const bool is_seeded = i < seeded + liked + crossed;
    const audio::Audio a = engine.generate(g);
    GeneratedTrack t;
    t.path = (fs::path(p.tracks_dir) / ("track-" + std::to_string(i + 1) + ".wav")).string();
    audio::write_audio(t.path, a);
    std::ofstream(embedding_sidecar(t.path), std::ios::trunc) << json(previews[i]).dump();
    t.seed = static_cast<std::int64_t>(g.seed);
    t.tags = is_seeded ? "" : join(g.tags);
    t.seeded = is_seeded;
    t.duration_s = a.seconds();
    json params{{"seconds", g.seconds}, {"steps", g.steps}, {"solver", g.solver},
                {"adapter", adapter}, {"iteration", p.number}, {"seeded", is_seeded}};
    if (!adapter.empty()) params["adapter_strength"] = g.adapter_strength;
    if (is_seeded) params["strength"] = g.strength;
    if (i >= seeded && i < seeded + liked)
      params["variation_of"] = liked_sources[i - seeded];
    if (i >= seeded + liked && i < seeded + liked + crossed) {
      const auto& [first, second] = crossover_parents[i - seeded - liked];
      params["crossover_of"] = json::array({first, second});
    }
    if (!g.tags.empty()) params["guidance"] = g.guidance;
    if (drawn[i]) params["tags_drawn"] = *drawn[i];
    if (out.predicted[i]) params["predicted_score"] = *out.predicted[i];
    if (per_slot > 1) params["candidates"] = per_slot;
    t.params_json = params.dump();
    out.tracks.push_back(std::move(t));
  }
  out.generate_seconds = seconds_since(t1);
  return out;
}

std::vector<store::Id> finish_iteration(store::Store& store, const IterationPlan& p,
                                        const IterationOutcome& o, double seconds_total) {
  std::vector<store::Id> ids;
  store.transaction([&] {
    for (const auto& t : o.tracks) {
      store::NewTrack nt;
      nt.listener_id = p.listener_id;
      nt.iteration_id = p.iteration_id;
      nt.seed = t.seed;
      nt.params_json = t.params_json;
      nt.tags = t.tags;
      nt.path = t.path;
      nt.duration_s = t.duration_s;
      ids.push_back(store.add_track(nt));
    }
    if (!o.adapter_path.empty()) store.set_iteration_adapter(p.iteration_id, o.adapter_path);
    json metrics{{"dataset_size", p.dataset_size},
                 {"objective", config::to_string(p.objective)},
                 {"init", p.fine_tune.previous_adapter.empty() ? "base" : "parent"},
                 {"feedback_tracks", p.feedback.size()},
                 {"negatives", p.negatives.size()},
                 {"reward_accuracy", o.reward_accuracy ? json(*o.reward_accuracy) : json(nullptr)},
                 {"reward_model", o.reward_model_path},
                 {"candidates", o.candidates},
                 {"tag_preferences", o.tag_preferences.empty() ? json(nullptr) : json(o.tag_preferences)},
                 {"reward_seconds", o.reward_seconds},
                 {"preview_seconds", o.preview_seconds},
                 {"tracks", o.tracks.size()},
                 {"train_seconds", o.train_seconds},
                 {"generate_seconds", o.generate_seconds},
                 {"seconds", seconds_total},
                 {"final_train_loss", o.final_loss ? json(*o.final_loss) : json(nullptr)}};
    store.set_iteration_metrics(p.iteration_id, metrics.dump());
    store.set_iteration_status(p.iteration_id, store::IterationStatus::ready);
    store.activate_iteration(p.iteration_id);
    store.update_job_progress(p.job_id, 1.0, "done");
    store.finish_job(p.job_id, store::JobState::done);
  });
  return ids;
}

void fail_iteration(store::Store& store, const IterationPlan& p, const std::string& error,
                    bool cancelled) noexcept {
  try {
    store.transaction([&] {
      store.set_iteration_status(p.iteration_id, store::IterationStatus::failed);
      store.finish_job(p.job_id, cancelled ? store::JobState::cancelled : store::JobState::failed,
                       error);
      // Iteration 0 is active from creation; fall back to the newest ready one if any.
      const auto active = store.active_iteration(p.listener_id);
      if (!active || active->id == p.iteration_id) {
        const auto all = store.iterations(p.listener_id);
        for (auto it = all.rbegin(); it != all.rend(); ++it)
          if (it->status == store::IterationStatus::ready) {
            store.activate_iteration(it->id);
            break;
          }
      }
    });
  } catch (const std::exception& e) {
    spdlog::error("loop: cannot record the failure of iteration {}: {}", p.number, e.what());
  }
  std::error_code ec;
  if (!p.fine_tune.checkpoint_path.empty())
    fs::remove_all(fs::path(p.fine_tune.checkpoint_path).parent_path(), ec);
  // No row points at what the job wrote before it stopped: its tracks go. When the
  // iteration itself is gone (listener.delete cancelled the job), so does what it learnt.
  if (!p.tracks_dir.empty()) fs::remove_all(p.tracks_dir, ec);
  bool deleted = false;
  try {
    deleted = !store.get_iteration(p.iteration_id).has_value();
  } catch (const std::exception&) {
  }
  if (deleted) {
    if (!p.fine_tune.output_path.empty()) fs::remove(p.fine_tune.output_path, ec);
    if (!p.reward_model_path.empty()) fs::remove(p.reward_model_path, ec);
    spdlog::info("loop: iteration {} was deleted with its listener; removed what its job wrote",
                 p.number);
  }
}

}  // namespace tuneloop::loop

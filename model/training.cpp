#include "model/training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "adapters/lora.hpp"
#include "adapters/tensor_file.hpp"
#include "audio/audio.hpp"
#include "model/diffusion.hpp"
#include "model/frontend.hpp"
#include "model/model_files.hpp"
#include "model/training_util.hpp"

namespace tuneloop::model {
namespace fs = std::filesystem;

std::vector<CorpusClip> read_corpus_index(const std::string& dir) {
  const auto index = (fs::path(dir) / "index.jsonl").string();
  std::ifstream in(index);
  if (!in) throw ModelError(index + ": cannot open the corpus index");
  std::vector<CorpusClip> clips;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = index + ":" + std::to_string(number);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw ModelError(where + ": not a JSON object: " + e.what());
    }
    CorpusClip clip;
    for (const char* key : {"path", "file", "clip", "wav"}) {
      if (j.contains(key) && j[key].is_string()) {
        clip.path = j[key].get<std::string>();
        break;
      }
    }
    if (clip.path.empty()) throw ModelError(where + ": no 'path' (or 'file') of the clip");
    if (fs::path(clip.path).is_relative()) clip.path = (fs::path(dir) / clip.path).string();
    if (j.contains("tags")) {
      if (!j["tags"].is_array()) throw ModelError(where + ": 'tags' is not a list");
      for (const auto& t : j["tags"]) {
        if (t.is_string()) clip.tags.push_back(t.get<std::string>());
      }
    }
    clips.push_back(std::move(clip));
  }
  if (clips.empty()) throw ModelError(index + ": the corpus index lists no clips");
  return clips;
}

std::vector<torch::Tensor> corpus_log_mels(const std::vector<CorpusClip>& clips,
                                           const MelFrontEnd& frontend, bool quiet) {
  std::vector<torch::Tensor> mels;
  mels.reserve(clips.size());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < clips.size(); ++i) {
    auto audio = audio::read_audio(clips[i].path, frontend.config().sample_rate);
    if (audio.samples.size() < static_cast<size_t>(frontend.config().n_fft)) {
      throw ModelError(clips[i].path + ": clip too short for the front end");
    }
    auto wave = torch::from_blob(audio.samples.data(), {static_cast<int64_t>(audio.samples.size())},
                                 torch::kFloat32);
    mels.push_back(frontend.log_mel(wave).clone());
    if (!quiet && (i + 1) % 200 == 0) {
      std::fprintf(stderr, "read %zu/%zu clips\n", i + 1, clips.size());
    }
  }
  return mels;
}

// ---------------------------------------------------------------- progress and logging

TrainLog::TrainLog(std::string name, const std::string& csv_path, bool append, int total,
                   bool quiet)
    : display_(std::move(name), total, progress_style_for(stderr, quiet)),
      losses_(csv_path, append) {}

void TrainLog::step(int step, int first_step, double loss) {
  losses_.add(step, loss, display_.elapsed_seconds());
  display_.update(step, first_step, loss);
}

// ---------------------------------------------------------------- autoencoder

namespace {

torch::Tensor random_crops(const std::vector<torch::Tensor>& items, int batch, int64_t length) {
  std::vector<torch::Tensor> out;
  out.reserve(batch);
  for (int b = 0; b < batch; ++b) {
    const auto& x = items[torch::randint(static_cast<int64_t>(items.size()), {1}).item<int64_t>()];
    const int64_t room = x.size(-1) - length;
    const int64_t start = room > 0 ? torch::randint(room + 1, {1}).item<int64_t>() : 0;
    out.push_back(x.narrow(-1, start, length));
  }
  return torch::stack(out);
}

int64_t shortest(const std::vector<torch::Tensor>& items) {
  int64_t n = items.at(0).size(-1);
  for (const auto& x : items) n = std::min(n, x.size(-1));
  return n;
}

// [B, 1, M, T] → [B, T-2]: the mean over bands of each frame's rise over two frames back.
torch::Tensor band_mean_rise(const torch::Tensor& log_mel) {
  const auto t = log_mel.size(-1);
  return torch::relu(log_mel.narrow(-1, 2, t - 2) - log_mel.narrow(-1, 0, t - 2)).mean({1, 2});
}

struct AutoencoderLoss {
  double latent_penalty = 0.0, flux_weight = 0.0, latent_anchor = 0.0;
  Autoencoder* anchor = nullptr;  // the init, frozen (with latent_anchor > 0)
  // An anchor at another sample rate reads its own mel, stacked under the model's in each
  // example ([B, 1, bands + its bands, T]); 0: the anchor reads the model's.
  int64_t bands = 0;
};

double ae_loss_value(Autoencoder& ae, const torch::Tensor& input, const AutoencoderLoss& w,
                     torch::Tensor* out) {
  const auto x = w.bands > 0 ? input.narrow(2, 0, w.bands) : input;
  const auto anchor_x = w.bands > 0 ? input.narrow(2, w.bands, input.size(2) - w.bands) : input;
  auto z = ae->encode(x);
  const auto y = ae->decode(z);
  auto loss = torch::l1_loss(y, x) + w.latent_penalty * z.pow(2).mean();
  if (w.flux_weight > 0.0)
    loss = loss + w.flux_weight * torch::l1_loss(band_mean_rise(y), band_mean_rise(x));
  if (w.latent_anchor > 0.0 && w.anchor) {
    torch::Tensor z0;
    {
      torch::NoGradGuard ng;
      z0 = (*w.anchor)->encode(anchor_x);
    }
    loss = loss + w.latent_anchor * (z - z0).pow(2).mean() / z0.pow(2).mean().clamp_min(1e-12);
  }
  if (out) *out = loss;
  return loss.item<double>();
}

bool is_decoder_parameter(const std::string& name) {
  return name.rfind("dec_", 0) == 0;
}

}  // namespace

TrainingRun start_training_run(const std::string& out, const std::string& name,
                               const std::string& weights_file, int threads, uint64_t seed, bool resume) {
  torch::set_num_threads(threads);
  torch::manual_seed(seed);
  fs::create_directories(out);
  TrainingRun run;
  run.checkpoint_path = (fs::path(out) / (name + ".ckpt.safetensors")).string();
  run.weights_path = (fs::path(out) / weights_file).string();
  if (resume && fs::exists(run.checkpoint_path)) run.checkpoint = load_checkpoint(run.checkpoint_path);
  return run;
}

TrainResult train_autoencoder(const AutoencoderTrainOptions& o) {
  auto run = start_training_run(o.out, "autoencoder", kAutoencoderFile, o.threads, o.seed, o.resume);
  const auto& ckpt_path = run.checkpoint_path;
  const auto& weights_path = run.weights_path;
  auto& ckpt = run.checkpoint;
  if (o.decoder_only && o.init.empty() && !ckpt) {
    throw ModelError("train-autoencoder: --decoder-only needs --init (the encoder to keep)");
  }
  if (o.latent_anchor > 0.0 && (o.init.empty() || o.decoder_only) && !ckpt) {
    throw ModelError(
        "train-autoencoder: --latent-anchor needs --init (the latents to stay near) "
        "and no --decoder-only (which keeps them exactly)");
  }
  std::optional<Autoencoder> init;
  if (!ckpt && !o.init.empty()) init = load_autoencoder(o.init);
  AutoencoderConfig config =
      ckpt   ? autoencoder_config_from_json(metadata_value(ckpt->metadata, "config", ckpt_path),
                                            ckpt_path)
      : init ? (*init)->config
             : o.config;
  if (!ckpt && o.rate > 0 && o.rate != config.frontend.sample_rate) {
    config.frontend = at_rate(config.frontend, o.rate, "train-autoencoder");
  }
  const bool rerated = init && config.frontend.sample_rate != (*init)->config.frontend.sample_rate;
  check_autoencoder_shape(config, "train-autoencoder");
  // Resumed runs keep what their first sitting chose.
  const bool decoder_only = ckpt ? ckpt->metadata.count("decoder_only") > 0 : o.decoder_only;
  const std::string latent_of =
      ckpt           ? (ckpt->metadata.count("latent_of") ? ckpt->metadata.at("latent_of") : "")
      : decoder_only ? latent_identity(*init)
                     : "";

  auto clips = read_corpus_index(o.corpus);
  if (o.held_out < 0 || static_cast<size_t>(o.held_out) >= clips.size()) {
    throw ModelError(o.corpus + ": held_out leaves no clips to train on");
  }
  clips.resize(clips.size() - static_cast<size_t>(o.held_out));
  MelFrontEnd raw_frontend(config.frontend);
  auto mels = corpus_log_mels(clips, raw_frontend, o.quiet);
  if (!ckpt && (!init || rerated)) {
    auto all = torch::cat(mels, 1);
    config.frontend.mel_offset = all.mean().item<double>();
    config.frontend.mel_scale = std::max(1e-3, all.std().item<double>());
  }
  MelFrontEnd frontend(config.frontend);
  for (auto& m : mels) m = frontend.normalise(m).unsqueeze(0);  // [1, mels, T]

  Autoencoder ae(config);
  if (init) load_state(*ae, adapters::base_state_dict(**init), o.init);
  ae->latent_of = latent_of;
  // The anchor: the init as it was (a resumed run reads it from the file named again by --init).
  std::optional<Autoencoder> anchor;
  const bool anchored = ckpt ? ckpt->metadata.count("anchored_to") > 0 : o.latent_anchor > 0.0;
  if (anchored) {
    if (o.init.empty())
      throw ModelError(ckpt_path + ": an anchored run resumes with --init naming its anchor");
    anchor = init ? *init : load_autoencoder(o.init);
    ae->anchored_to = latent_identity(*anchor);
    if (ckpt && metadata_value(ckpt->metadata, "anchored_to", ckpt_path) != ae->anchored_to) {
      throw ModelError(o.init + " is not the autoencoder " + ckpt_path + " was anchored to");
    }
    for (auto& p : (*anchor)->parameters()) p.set_requires_grad(false);
    (*anchor)->eval();
  }
  int64_t own_bands = 0;
  if (anchor && (*anchor)->config.frontend.sample_rate != config.frontend.sample_rate) {
    // Each clip read again at the anchor's rate, stacked under its own mel so that one crop
    // takes the same frames of both (at_rate keeps the frames; resampling may round one off).
    const MelFrontEnd anchor_frontend((*anchor)->config.frontend);
    auto theirs = corpus_log_mels(clips, anchor_frontend, o.quiet);
    own_bands = config.frontend.mels;
    for (size_t i = 0; i < mels.size(); ++i) {
      const auto other = anchor_frontend.normalise(theirs[i]).unsqueeze(0);
      const int64_t frames = std::min(mels[i].size(-1), other.size(-1));
      mels[i] = torch::cat({mels[i].narrow(-1, 0, frames), other.narrow(-1, 0, frames)}, 1);
    }
  }
  const AutoencoderLoss weights{o.latent_penalty, o.flux_weight, anchored ? o.latent_anchor : 0.0,
                                anchor ? &*anchor : nullptr, own_bands};
  const int64_t multiple = config.factor() * 4;
  const int64_t crop = std::min<int64_t>(o.crop_frames, shortest(mels)) / multiple * multiple;
  if (crop < multiple) throw ModelError(o.corpus + ": clips are too short to train on");
  std::vector<torch::Tensor> trained;
  for (const auto& item : ae->named_parameters()) {
    const bool train = !decoder_only || is_decoder_parameter(item.key());
    item.value().set_requires_grad(train);
    if (train) trained.push_back(item.value());
  }
  torch::optim::AdamW opt(trained, torch::optim::AdamWOptions(o.lr).weight_decay(0.0));
  int step = 0;
  if (ckpt) {
    load_state(*ae, get_tensors(*ckpt, "model."), ckpt_path);
    get_optimizer(*ckpt, opt, ckpt_path);
    step = std::stoi(metadata_value(ckpt->metadata, "step", ckpt_path));
  }
  TrainLog log("train-autoencoder", (fs::path(o.out) / "losses.csv").string(), ckpt.has_value(),
               o.steps, o.quiet);
  log.note(std::to_string(clips.size()) + " clips, crop " + std::to_string(crop) + " frames, " +
           std::to_string(parameter_count(*ae)) + " parameters" +
           (decoder_only ? " (decoder only: " + std::to_string(trained.size()) + " tensors trained)"
                         : "") +
           (o.held_out > 0 ? ", " + std::to_string(o.held_out) + " held out" : "") +
           (ckpt ? ", resuming at step " + std::to_string(step) : ""));

  torch::manual_seed(o.seed + 7);
  const auto eval_batch = random_crops(mels, std::min(o.batch, 16), crop);
  TrainResult result;
  {
    torch::NoGradGuard ng;
    ae->eval();
    result.initial_eval_loss = ae_loss_value(ae, eval_batch, weights, nullptr);
  }
  torch::manual_seed(o.seed + 1000 + step);

  auto checkpoint = [&] {
    Checkpoint c;
    put_tensors(c, "model.", adapters::base_state_dict(*ae));
    put_optimizer(c, opt);
    c.metadata["config"] = to_json(ae->config);
    c.metadata["kind"] = "autoencoder";
    c.metadata["step"] = std::to_string(step);
    if (decoder_only) c.metadata["decoder_only"] = "1";
    if (!latent_of.empty()) c.metadata["latent_of"] = latent_of;
    if (!ae->anchored_to.empty()) c.metadata["anchored_to"] = ae->anchored_to;
    save_checkpoint(c, ckpt_path);
    save_autoencoder(ae, weights_path);
  };

  const int first_step = step;
  const auto t0 = std::chrono::steady_clock::now();
  ae->train();
  while (step < o.steps) {
    if (o.stop && o.stop->load()) {
      result.interrupted = true;
      log.note("interrupted: checkpoint at step " + std::to_string(step));
      break;
    }
    auto x = random_crops(mels, o.batch, crop);
    torch::Tensor loss;
    const double value = ae_loss_value(ae, x, weights, &loss);
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(trained, 1.0);
    opt.step();
    ++step;
    log.step(step, first_step, value);
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) checkpoint();
  }
  checkpoint();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.seconds_per_step = step > first_step ? seconds / (step - first_step) : 0.0;
  {
    torch::NoGradGuard ng;
    ae->eval();
    result.final_eval_loss = ae_loss_value(ae, eval_batch, weights, nullptr);
  }
  result.step = step;
  result.weights = weights_path;
  log.note("done: step " + std::to_string(step) + ", eval loss " +
           std::to_string(result.initial_eval_loss) + " -> " + std::to_string(result.final_eval_loss));
  return result;
}

// ---------------------------------------------------------------- denoiser

namespace {

std::vector<std::string> corpus_vocabulary(const std::vector<CorpusClip>& clips) {
  std::set<std::string> all;
  for (const auto& c : clips) all.insert(c.tags.begin(), c.tags.end());
  return {all.begin(), all.end()};
}

// The tag embedding of `state` (a denoiser made with `from`) with one column per word of
// `vocabulary`: the words it knows keep their columns, new words get zero ones, so the
// widened network computes what the old one did for every tag set the old one knew.
torch::Tensor widened_tag_embedding(const std::map<std::string, torch::Tensor>& state,
                                    const DenoiserConfig& from,
                                    const std::vector<std::string>& vocabulary,
                                    const std::string& where) {
  // The embedding is as wide as the time embedding it is added to.
  auto widened =
      torch::zeros({state.at("time2.weight").size(0), static_cast<int64_t>(vocabulary.size())});
  for (std::size_t j = 0; j < from.tags.size(); ++j) {
    const auto at = std::find(vocabulary.begin(), vocabulary.end(), from.tags[j]);
    if (at == vocabulary.end())
      throw ModelError(where + ": its tag '" + from.tags[j] +
                       "' is not in the vocabulary being trained");
    widened.select(1, at - vocabulary.begin())
        .copy_(state.at("tag_embed.weight").select(1, static_cast<int64_t>(j)));
  }
  return widened;
}

struct LatentSet {
  std::vector<torch::Tensor> latents;  // raw (unscaled) [C, H, L]
  torch::Tensor tags;                  // [N, V]
};

}  // namespace

torch::Tensor multi_hot(const std::vector<std::string>& tags,
                        const std::vector<std::string>& vocabulary, std::vector<std::string>* unknown) {
  auto v = torch::zeros({static_cast<int64_t>(vocabulary.size())}, torch::kFloat32);
  for (const auto& t : tags) {
    auto it = std::find(vocabulary.begin(), vocabulary.end(), t);
    if (it == vocabulary.end()) {
      if (unknown) unknown->push_back(t);
      continue;
    }
    v[it - vocabulary.begin()] = 1.0f;
  }
  return v;
}

torch::Tensor encode_log_mel(Autoencoder& ae, const MelFrontEnd& frontend, const torch::Tensor& log_mel,
                             int64_t multiple) {
  torch::NoGradGuard ng;
  const int64_t frames = log_mel.size(-1) / multiple * multiple;
  if (frames < multiple) throw ModelError("audio too short to encode");
  auto x = frontend.normalise(log_mel.narrow(-1, 0, frames)).unsqueeze(0).unsqueeze(0);
  return ae->encode(x).squeeze(0);
}

TrainResult train_denoiser(const DenoiserTrainOptions& o) {
  auto run = start_training_run(o.out, "denoiser", kDenoiserFile, o.threads, o.seed, o.resume);
  const auto& ckpt_path = run.checkpoint_path;
  const auto& weights_path = run.weights_path;
  auto& ckpt = run.checkpoint;
  const auto cache_path = (fs::path(o.out) / "latents.safetensors").string();

  auto ae = load_autoencoder(o.autoencoder);
  const auto ae_hash = latent_identity(ae);
  {
    const auto copy = fs::path(o.out) / kAutoencoderFile;
    std::error_code ec;
    if (!fs::exists(copy) || !fs::equivalent(copy, o.autoencoder, ec)) {
      fs::copy_file(o.autoencoder, copy, fs::copy_options::overwrite_existing);
    }
  }
  MelFrontEnd frontend(ae->config.frontend);

  DenoiserConfig config = o.config;
  if (ckpt) {
    config = denoiser_config_from_json(metadata_value(ckpt->metadata, "config", ckpt_path), ckpt_path);
    if (metadata_value(ckpt->metadata, "autoencoder_hash", ckpt_path) != ae_hash) {
      throw ModelError(ckpt_path + ": the checkpoint was trained with another autoencoder than " +
                       o.autoencoder);
    }
  }
  std::map<std::string, torch::Tensor> init_state;
  std::string new_tags;  // words of the vocabulary that the init's weights did not know
  if (!ckpt && !o.init.empty()) {
    std::string made_for;
    auto start = load_denoiser(o.init, &made_for);
    if (made_for != ae_hash && made_for != ae->anchored_to) {
      throw ModelError(o.init + ": these denoiser weights were made for another autoencoder than " +
                       o.autoencoder);
    }
    config = start->config;
    init_state = adapters::base_state_dict(*start);
    if (!o.vocabulary.empty() && o.vocabulary != config.tags) {
      init_state["tag_embed.weight"] =
          widened_tag_embedding(init_state, config, o.vocabulary, o.init);
      for (const auto& t : o.vocabulary)
        if (std::find(config.tags.begin(), config.tags.end(), t) == config.tags.end())
          new_tags += " " + t;
      config.tags = o.vocabulary;
    }
  }
  const bool fresh = !ckpt && init_state.empty();
  config.latent_channels = ae->config.latent_channels;
  config.latent_height = ae->config.latent_height();

  // Latents of the whole corpus, computed once and cached next to the weights.
  const auto clips = read_corpus_index(o.corpus);
  const auto index_hash = audio::sha256_file((fs::path(o.corpus) / "index.jsonl").string());
  if (fresh) config.tags = o.vocabulary.empty() ? corpus_vocabulary(clips) : o.vocabulary;
  const auto vocab_json = nlohmann::json(config.tags).dump();
  const int64_t multiple = ae->config.factor() * config.length_multiple();
  LatentSet data;
  {
    std::map<std::string, std::string> meta;
    std::map<std::string, torch::Tensor> cached;
    if (fs::exists(cache_path)) {
      try {
        cached = adapters::load_tensors(cache_path, &meta);
      } catch (const adapters::ModelFileError&) {
        cached.clear();
      }
    }
    if (!cached.empty() && meta["autoencoder_hash"] == ae_hash && meta["corpus_hash"] == index_hash &&
        meta["vocabulary"] == vocab_json && cached.count("tags")) {
      for (size_t i = 0; i < clips.size(); ++i) data.latents.push_back(cached.at("latent." + std::to_string(i)));
      data.tags = cached.at("tags");
      if (!o.quiet) std::fprintf(stderr, "train-denoiser  latents from %s\n", cache_path.c_str());
    } else {
      auto mels = corpus_log_mels(clips, frontend, o.quiet);
      std::map<std::string, torch::Tensor> out;
      std::vector<torch::Tensor> tag_rows;
      std::set<std::string> unknown_all;
      for (size_t i = 0; i < clips.size(); ++i) {
        std::vector<std::string> unknown;
        data.latents.push_back(encode_log_mel(ae, frontend, mels[i], multiple).contiguous());
        tag_rows.push_back(multi_hot(clips[i].tags, config.tags, &unknown));
        unknown_all.insert(unknown.begin(), unknown.end());
        out["latent." + std::to_string(i)] = data.latents.back();
      }
      if (!unknown_all.empty() && !o.quiet) {
        std::string names;
        for (const auto& u : unknown_all) names += " " + u;
        std::fprintf(stderr, "train-denoiser  tags not in the vocabulary, ignored:%s\n", names.c_str());
      }
      data.tags = torch::stack(tag_rows);
      out["tags"] = data.tags;
      adapters::save_tensors(cache_path, out,
                             {{"autoencoder_hash", ae_hash}, {"corpus_hash", index_hash},
                              {"vocabulary", vocab_json}});
    }
  }
  if (fresh) {
    auto all = torch::cat(data.latents, -1);
    config.latent_scale = std::max(1e-3, all.std().item<double>());
  }
  const double scale = config.latent_scale;
  const int64_t jm = config.length_multiple();
  const int64_t crop = std::min<int64_t>(o.crop_latent, shortest(data.latents)) / jm * jm;
  if (crop < jm) throw ModelError(o.corpus + ": clips are too short to train on");

  Denoiser denoiser(config);
  Denoiser ema(config);
  torch::optim::AdamW opt(denoiser->parameters(),
                          torch::optim::AdamWOptions(o.lr).weight_decay(0.01));
  int step = 0;
  if (ckpt) {
    load_state(*denoiser, get_tensors(*ckpt, "model."), ckpt_path);
    load_state(*ema, get_tensors(*ckpt, "ema."), ckpt_path);
    get_optimizer(*ckpt, opt, ckpt_path);
    step = std::stoi(metadata_value(ckpt->metadata, "step", ckpt_path));
  } else if (!init_state.empty()) {
    load_state(*denoiser, init_state, o.init);
    load_state(*ema, init_state, o.init);
  } else {
    load_state(*ema, adapters::base_state_dict(*denoiser), "initial weights");
  }
  for (auto& p : ema->parameters()) p.set_requires_grad(false);

  TrainLog log("train-denoiser", (fs::path(o.out) / "losses.csv").string(), ckpt.has_value(),
               o.steps, o.quiet);
  log.note(std::to_string(clips.size()) + " clips, " + std::to_string(config.tags.size()) +
           " tags, crop " + std::to_string(crop) + " latent frames, latent scale " +
           std::to_string(scale) + ", " + std::to_string(parameter_count(*denoiser)) +
           " parameters" + (ckpt ? ", resuming at step " + std::to_string(step) : "") +
           (ckpt || o.init.empty() ? "" : ", starting from " + o.init));
  if (!new_tags.empty())
    log.note("tags new to " + o.init + " (their embedding starts at zero):" + new_tags);

  // A batch: random crops of random clips, each with its tag row.
  auto make_batch = [&](int batch) {
    std::vector<torch::Tensor> xs, ts;
    for (int b = 0; b < batch; ++b) {
      const auto i = torch::randint(static_cast<int64_t>(data.latents.size()), {1}).item<int64_t>();
      const auto& x = data.latents[i];
      const int64_t room = x.size(-1) - crop;
      const int64_t start = room > 0 ? torch::randint(room + 1, {1}).item<int64_t>() : 0;
      xs.push_back(x.narrow(-1, start, crop) / scale);
      ts.push_back(data.tags[i]);
    }
    return std::make_pair(torch::stack(xs), torch::stack(ts));
  };

  torch::manual_seed(o.seed + 7);
  const auto eval_batch = make_batch(std::min(o.batch, 16));
  auto eval_loss = [&](Denoiser& d) {
    torch::NoGradGuard ng;
    d->eval();
    torch::manual_seed(o.seed + 11);
    return diffusion_loss(d, eval_batch.first, eval_batch.second).item<double>();
  };
  TrainResult result;
  result.initial_eval_loss = eval_loss(denoiser);
  torch::manual_seed(o.seed + 1000 + step);

  auto checkpoint = [&] {
    Checkpoint c;
    put_tensors(c, "model.", adapters::base_state_dict(*denoiser));
    put_tensors(c, "ema.", adapters::base_state_dict(*ema));
    put_optimizer(c, opt);
    c.metadata["config"] = to_json(config);
    c.metadata["kind"] = "denoiser";
    c.metadata["step"] = std::to_string(step);
    c.metadata["autoencoder_hash"] = ae_hash;
    save_checkpoint(c, ckpt_path);
    save_denoiser(ema, weights_path, ae_hash);
  };

  auto params = denoiser->parameters();
  auto ema_params = ema->parameters();
  const int first_step = step;
  const auto t0 = std::chrono::steady_clock::now();
  while (step < o.steps) {
    if (o.stop && o.stop->load()) {
      result.interrupted = true;
      log.note("interrupted: checkpoint at step " + std::to_string(step));
      break;
    }
    denoiser->train();
    auto [x, tags] = make_batch(o.batch);
    auto loss = diffusion_loss(denoiser, x, drop_tags(tags));
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt.step();
    ++step;
    {
      torch::NoGradGuard ng;
      const double d = std::min(o.ema, (1.0 + step) / (10.0 + step));
      for (size_t i = 0; i < params.size(); ++i) ema_params[i].mul_(d).add_(params[i].detach(), 1.0 - d);
    }
    log.step(step, first_step, loss.item<double>());
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) checkpoint();
  }
  checkpoint();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.seconds_per_step = step > first_step ? seconds / (step - first_step) : 0.0;
  result.final_eval_loss = eval_loss(denoiser);
  result.step = step;
  result.weights = weights_path;
  log.note("done: step " + std::to_string(step) + ", eval loss " +
           std::to_string(result.initial_eval_loss) + " -> " + std::to_string(result.final_eval_loss));
  return result;
}

DenoiserEvaluation evaluate_denoiser(const DenoiserEvaluationOptions& o) {
  if (o.levels < 1) throw ModelError("levels must be at least 1");
  if (o.clips < 0) throw ModelError("clips must be 0 (all) or more");
  torch::set_num_threads(std::max(1, o.threads));
  const auto ae_path = weights_file(o.weights_dir, o.autoencoder, kAutoencoderFile);
  const auto dn_path = weights_file(o.weights_dir, o.denoiser, kDenoiserFile);
  auto ae = load_autoencoder(ae_path);
  std::string made_for;
  auto denoiser = load_denoiser(dn_path, &made_for);
  if (made_for != latent_identity(ae)) {
    throw ModelError(dn_path + " was trained with another autoencoder than " + ae_path);
  }
  torch::NoGradGuard ng;
  denoiser->eval();
  const auto& config = denoiser->config;
  auto clips = read_corpus_index(o.corpus);
  if (o.clips > 0 && static_cast<size_t>(o.clips) < clips.size()) {
    clips.erase(clips.begin(), clips.end() - o.clips);
  }
  const auto& [swap_a, swap_b] = o.swap;
  if (swap_a.empty() != swap_b.empty()) throw ModelError("a tag swap needs two tags");
  for (const auto& tag : {swap_a, swap_b}) {
    if (!tag.empty() && std::find(config.tags.begin(), config.tags.end(), tag) == config.tags.end())
      throw ModelError(dn_path + ": the denoiser has no tag '" + tag + "' to swap");
  }
  MelFrontEnd frontend(ae->config.frontend);
  const auto mels = corpus_log_mels(clips, frontend, /*quiet=*/true);
  const int64_t multiple = config.length_multiple();
  // Clip i's tags with the swap applied, or nothing when it carries neither or both.
  auto swapped =
      [&](const std::vector<std::string>& tags) -> std::optional<std::vector<std::string>> {
    if (swap_a.empty()) return std::nullopt;
    const bool a = std::count(tags.begin(), tags.end(), swap_a) > 0;
    const bool b = std::count(tags.begin(), tags.end(), swap_b) > 0;
    if (a == b) return std::nullopt;
    auto out = tags;
    std::replace(out.begin(), out.end(), a ? swap_a : swap_b, a ? swap_b : swap_a);
    return out;
  };

  DenoiserEvaluation e;
  e.clips = static_cast<int>(clips.size());
  e.untagged.assign(o.levels, 0.0);
  e.tagged.assign(o.levels, 0.0);
  e.own_tags.assign(o.levels, 0.0);
  e.swapped_tags.assign(o.levels, 0.0);
  for (int k = 0; k < o.levels; ++k) e.t.push_back((k + 0.5) / o.levels);
  auto t = torch::tensor(e.t, torch::kFloat32);
  torch::manual_seed(o.seed);
  for (size_t i = 0; i < clips.size(); ++i) {
    auto latent = encode_log_mel(ae, frontend, mels[i], multiple);
    const int64_t length = latent.size(-1) / multiple * multiple;
    if (length < multiple) throw ModelError(clips[i].path + ": too short for the denoiser");
    auto x0 = (latent.narrow(-1, 0, length) / config.latent_scale)
                  .unsqueeze(0)
                  .expand({o.levels, latent.size(0), latent.size(1), length});
    const DiffusionDraws draws{t, torch::randn(x0.sizes())};
    auto add = [&](std::vector<double>& sums, const torch::Tensor& tags) {
      auto per_level = diffusion_loss_per_example(denoiser, x0, tags, draws);
      for (int k = 0; k < o.levels; ++k) sums[k] += per_level[k].item<double>();
    };
    auto tags_of = [&](const std::vector<std::string>& names) {
      return multi_hot(names, config.tags).unsqueeze(0).expand({o.levels, -1});
    };
    add(e.untagged, torch::Tensor());
    if (config.tags.empty()) continue;  // no tags: tagged is untagged
    add(e.tagged, tags_of(clips[i].tags));
    if (const auto other = swapped(clips[i].tags)) {
      add(e.own_tags, tags_of(clips[i].tags));
      add(e.swapped_tags, tags_of(*other));
      ++e.swapped_clips;
    }
  }
  if (config.tags.empty()) e.tagged = e.untagged;
  for (int k = 0; k < o.levels; ++k) {
    e.untagged[k] /= e.clips;
    if (!config.tags.empty()) e.tagged[k] /= e.clips;
    e.mean_untagged += e.untagged[k] / o.levels;
    e.mean_tagged += e.tagged[k] / o.levels;
    if (e.swapped_clips > 0) {
      e.own_tags[k] /= e.swapped_clips;
      e.swapped_tags[k] /= e.swapped_clips;
      e.mean_own_tags += e.own_tags[k] / o.levels;
      e.mean_swapped_tags += e.swapped_tags[k] / o.levels;
    }
  }
  return e;
}

}  // namespace tuneloop::model

#include "model/commands.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "config/config.hpp"
#include "corpus/tags.hpp"
#include "model/engine.hpp"
#include "progress/progress.hpp"
#include "model/training.hpp"
#include "model/vocoder_training.hpp"

namespace tuneloop::model {

using progress::LossLog;
using progress::ProgressDisplay;
using progress::ProgressStyle;
using progress::progress_style_for;
namespace {
namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop.store(true); }

// SIGINT/SIGTERM set the stop flag while a trainer runs, so it checkpoints before leaving.
struct StopOnSignal {
  StopOnSignal() {
    g_stop.store(false);
    std::signal(SIGINT, on_sigint);
    std::signal(SIGTERM, on_sigint);
  }
  ~StopOnSignal() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
};

// Runs a command body; failures become a message and exit status 1 instead of a crash.
template <typename F>
void guarded(const char* name, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tuneloop %s: %s\n", name, e.what());
    throw CLI::RuntimeError(1);
  }
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text + " ") {
    if (c == ' ' || c == ',' || c == '\t') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

void add_trainer_options(CLI::App* cmd, TrainerOptions& o) {
  cmd->add_option("--corpus", o.corpus, "corpus folder (clips/ + index.jsonl)")->required();
  cmd->add_option("--out", o.out, "output folder")->required();
  cmd->add_option("--steps", o.steps, "total training steps")->capture_default_str();
  cmd->add_option("--batch", o.batch, "batch size")->capture_default_str();
  cmd->add_option("--lr", o.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--threads", o.threads, "LibTorch threads")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "continue from the checkpoint in --out");
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "checkpoint every N steps")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
}

// --device and --config of the commands that load an Engine (generate, fine-tune).
void add_device_options(CLI::App* cmd, std::string& device, std::string& config_file) {
  cmd->add_option("--device", device,
                  "cpu | cuda | auto (default: model.device of the config tuneloopd reads, "
                  "built-in auto = cuda when this LibTorch has it)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--config", config_file,
                  "config file for the --device default (default: " +
                      config::default_config_path().string() + " if it exists)");
}

// The examples of a fine-tune: files as given, folders' audio files in name order.
std::vector<WeightedExample> collect_examples(const std::vector<std::string>& paths) {
  std::vector<WeightedExample> examples;
  for (const auto& a : paths) {
    if (fs::is_directory(a)) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(a)) {
        const auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".wav" || ext == ".flac" || ext == ".ogg")) {
          files.push_back(e.path().string());
        }
      }
      std::sort(files.begin(), files.end());
      for (auto& f : files) examples.push_back({f, 1.0});
    } else {
      examples.push_back({a, 1.0});
    }
  }
  return examples;
}

// Beside `output_path`, with the adapter's extension replaced by `suffix`.
std::string beside_output(const std::string& output_path, const std::string& suffix) {
  auto p = fs::path(output_path);
  return (p.parent_path() / (p.stem().string() + suffix)).string();
}

// train-vocoder, reconstruct, evaluate-vocoder (model/vocoder_training.hpp).
void add_vocoder_commands(CLI::App& app);

}  // namespace

void add_model_commands(CLI::App& app) {
  // ------------------------------------------------------------ train-autoencoder
  auto ae = std::make_shared<AutoencoderTrainOptions>();
  auto* ae_cmd = app.add_subcommand("train-autoencoder", "train the mel autoencoder on a corpus");
  add_trainer_options(ae_cmd, *ae);
  ae_cmd->add_option("--crop-frames", ae->crop_frames, "mel frames per example")->capture_default_str();
  ae_cmd->add_option("--mels", ae->config.frontend.mels, "mel bins")->capture_default_str();
  ae_cmd
      ->add_option("--rate", ae->rate,
                   "sample rate of the front end (default: the --init file's, or 16000). The "
                   "window, hop and top band scale with it, so a frame lasts as long; with --init "
                   "at another rate and --latent-anchor, the latents stay near the init's")
      ->check(CLI::Range(8000, 96000));
  ae_cmd
      ->add_option("--channels", ae->config.channels,
                   "channels per level (2 levels: 4x fewer frames and rows in the latent)")
      ->capture_default_str()
      ->delimiter(',');
  ae_cmd->add_option("--latent-channels", ae->config.latent_channels, "channels of the latent")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  ae_cmd
      ->add_option("--band-fold", ae->config.band_fold,
                   "neighbouring mel bands folded into channels first (1, 2 or 4): finer bands at "
                   "the same latent height")
      ->check(CLI::IsMember({1, 2, 4}))
      ->capture_default_str();
  ae_cmd
      ->add_option("--flux-weight", ae->flux_weight,
                   "weight of the onset loss: L1 between the band-averaged two-frame rises of the "
                   "decoded and the true log-mel (0: none)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  ae_cmd
      ->add_option("--held-out", ae->held_out,
                   "the corpus index's last N clips are not trained on (evaluate-vocoder's)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  ae_cmd->add_option("--init", ae->init,
                     "autoencoder weights to start from (their configuration and mel normalisation "
                     "are kept; ignored with --resume)");
  ae_cmd->add_flag("--decoder-only", ae->decoder_only,
                   "with --init: train the decoder only; the latents stay the init's, so its "
                   "denoisers fit the result");
  ae_cmd
      ->add_option("--latent-anchor", ae->latent_anchor,
                   "with --init (whole autoencoder): weight of a penalty on how far the latents "
                   "move from the init's; the init's denoisers can then be trained on with the "
                   "result (train-denoiser --init); 0: none")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  ae_cmd->callback([ae] {
    guarded("train-autoencoder", [&] {
      StopOnSignal s;
      ae->stop = &g_stop;
      auto r = train_autoencoder(*ae);
      std::printf("%s  step %d  eval loss %.5f -> %.5f  %.3f s/step%s\n", r.weights.c_str(), r.step,
                  r.initial_eval_loss, r.final_eval_loss, r.seconds_per_step,
                  r.interrupted ? "  (interrupted; --resume continues)" : "");
    });
  });

  // ------------------------------------------------------------ train-denoiser
  auto dn = std::make_shared<DenoiserTrainOptions>();
  auto* dn_cmd = app.add_subcommand("train-denoiser", "train the latent denoiser on a corpus");
  add_trainer_options(dn_cmd, *dn);
  dn_cmd->add_option("--autoencoder", dn->autoencoder, "autoencoder.safetensors")->required();
  dn_cmd->add_option("--crop", dn->crop_latent, "latent frames per example")->capture_default_str();
  dn_cmd->add_option("--ema", dn->ema, "EMA decay of the saved weights")->capture_default_str();
  dn_cmd->add_option("--channels", dn->config.channels, "UNet channels per level")
      ->capture_default_str()->delimiter(',');
  dn_cmd->add_option("--blocks", dn->config.blocks, "residual blocks per level")->capture_default_str();
  dn_cmd->add_option(
      "--init", dn->init,
      "denoiser weights to start from (keeps their channels; tags they lack start with a zero "
      "embedding; not with --resume)");
  dn_cmd->callback([dn] {
    guarded("train-denoiser", [&] {
      StopOnSignal s;
      dn->stop = &g_stop;
      dn->vocabulary = corpus::tag_vocabulary();
      auto r = train_denoiser(*dn);
      std::printf("%s  step %d  eval loss %.5f -> %.5f  %.3f s/step%s\n", r.weights.c_str(), r.step,
                  r.initial_eval_loss, r.final_eval_loss, r.seconds_per_step,
                  r.interrupted ? "  (interrupted; --resume continues)" : "");
    });
  });

  // ------------------------------------------------------------ evaluate-denoiser
  auto ed = std::make_shared<DenoiserEvaluationOptions>();
  auto* ed_cmd = app.add_subcommand(
      "evaluate-denoiser",
      "a denoiser's loss on a corpus it did not train on, at fixed noise levels and noise");
  ed_cmd
      ->add_option("--corpus", ed->corpus,
                   "corpus folder (e.g. `corpus --seed 2`: not the training one)")
      ->required();
  ed_cmd->add_option("--clips", ed->clips, "the index's last N clips (0: all)")
      ->capture_default_str();
  ed_cmd->add_option("--weights", ed->weights_dir, "weights folder (default: shipped)");
  ed_cmd->add_option("--denoiser", ed->denoiser, "denoiser file (default: in --weights)");
  ed_cmd->add_option("--autoencoder", ed->autoencoder, "autoencoder file (default: in --weights)");
  ed_cmd->add_option("--levels", ed->levels, "noise levels t = (k + 1/2)/levels")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  ed_cmd->add_option("--seed", ed->seed, "seed of the noise (the same for every denoiser)")
      ->capture_default_str();
  ed_cmd->add_option("--threads", ed->threads, "LibTorch threads")->capture_default_str();
  ed_cmd->add_option("--swap", ed->swap,
                     "two tags, e.g. --swap major minor: also score the clips carrying one of them "
                     "with it replaced by the other");
  ed_cmd->callback([ed] {
    guarded("evaluate-denoiser", [&] {
      const auto e = evaluate_denoiser(*ed);
      std::printf(
          "%d clips, v-prediction loss (mean squared error)\n| t | untagged | tagged "
          "|\n|---|---|---|\n",
          e.clips);
      for (size_t k = 0; k < e.t.size(); ++k)
        std::printf("| %.4f | %.5f | %.5f |\n", e.t[k], e.untagged[k], e.tagged[k]);
      std::printf("| mean | %.5f | %.5f |\n", e.mean_untagged, e.mean_tagged);
      if (ed->swap.first.empty()) return;
      std::printf(
          "\n%d clips carry '%s' or '%s': their own tags against the two swapped\n"
          "| t | own tags | swapped | swapped - own |\n|---|---|---|---|\n",
          e.swapped_clips, ed->swap.first.c_str(), ed->swap.second.c_str());
      for (size_t k = 0; k < e.t.size(); ++k)
        std::printf("| %.4f | %.5f | %.5f | %+.5f |\n", e.t[k], e.own_tags[k], e.swapped_tags[k],
                    e.swapped_tags[k] - e.own_tags[k]);
      std::printf("| mean | %.5f | %.5f | %+.5f |\n", e.mean_own_tags, e.mean_swapped_tags,
                  e.mean_swapped_tags - e.mean_own_tags);
    });
  });

  // ------------------------------------------------------------ fine-tune
  auto ft = std::make_shared<FineTuneCommand>();
  auto* ft_cmd = app.add_subcommand("fine-tune", "fine-tune a LoRA adapter on a folder of audio");
  ft_cmd->add_option("--audio", ft->audio, "audio files or folders")->required();
  ft_cmd->add_option("--out", ft->request.output_path, "adapter .safetensors to write")->required();
  ft_cmd->add_option("--steps", ft->request.steps, "training steps")->capture_default_str();
  ft_cmd->add_option("--rank", ft->request.rank, "LoRA rank")->capture_default_str();
  ft_cmd->add_option("--alpha", ft->request.alpha, "LoRA alpha")->capture_default_str();
  ft_cmd->add_option("--lr", ft->request.lr, "AdamW learning rate")->capture_default_str();
  ft_cmd->add_option("--batch", ft->request.batch, "batch size")->capture_default_str();
  ft_cmd->add_option("--dropout", ft->request.dropout, "LoRA dropout")->capture_default_str();
  ft_cmd
      ->add_option(
          "--low-noise-emphasis", ft->request.low_noise_emphasis,
          "training noise levels drawn as u^p: 1 = uniform, 0.5 = more at high noise (rhythm), "
          "2 = more at low noise (timbre)")
      ->capture_default_str()
      ->check(CLI::Range(0.25, 8.0));
  ft_cmd->add_option("--targets", ft->request.targets,
                     "layers that get LoRA: shell-style patterns over dotted layer paths, e.g. 'mid*'")
      ->capture_default_str();
  ft_cmd->add_option("--from-adapter", ft->request.previous_adapter, "adapter to continue from");
  auto* checkpoint_opt = ft_cmd->add_option(
      "--checkpoint", ft->request.checkpoint_path,
      "checkpoint file, resumed from when it exists and removed once the adapter is written "
      "(default: OUT_STEM.ckpt.safetensors beside --out)");
  ft_cmd
      ->add_flag("--no-checkpoint", ft->no_checkpoint,
                 "write no checkpoint (an interrupted run starts over)")
      ->excludes(checkpoint_opt);
  ft_cmd
      ->add_option("--checkpoint-every", ft->request.checkpoint_every,
                   "checkpoint every N steps (0 = only when interrupted)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  ft_cmd->add_option("--weights", ft->weights_dir, "weights folder (default: shipped)");
  add_device_options(ft_cmd, ft->device, ft->config_file);
  ft_cmd->add_option("--threads", ft->threads, "threads, each taking a share of every batch")
      ->capture_default_str();
  ft_cmd->add_option("--seed", ft->request.seed, "random seed")->capture_default_str();
  ft_cmd->add_option("--calibration-clips", ft->request.calibration_clips,
                     "clips generated to match the adapter's output level to the examples' (0 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  ft_cmd
      ->add_option("--strength-scales", ft->request.strength_scales,
                   "adapter strengths to try on the calibration clips; the one whose clips come "
                   "nearest the examples' features is kept (1 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 4.0));
  ft_cmd->add_option("--calibration-seconds", ft->request.calibration_seconds,
                     "length of each calibration clip (the length you will generate)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 600.0));
  ft_cmd->add_option("--calibration-steps", ft->request.calibration_steps,
                     "solver steps of the calibration clips (the steps you will generate with)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  ft_cmd->add_option("--calibration-vocoder", ft->request.calibration_vocoder,
                     "way back to audio of the calibration clips: auto | neural | griffin-lim")
      ->capture_default_str();
  ft_cmd
      ->add_option(
          "--calibration-strength", ft->request.calibration_strength,
          "adapter strength of the calibration clips (the --adapter-strength you will generate at)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 4.0));
  ft_cmd->footer(
      "Writes OUT and appends each step's loss to OUT_STEM.losses.csv beside it. "
      "Interrupted (Ctrl-C), it checkpoints; the same command run again resumes.");
  ft_cmd->callback([ft] {
    guarded("fine-tune", [&] {
      StopOnSignal s;
      try {
        std::printf("%s\n", run_fine_tune(*ft, g_stop).c_str());
      } catch (const Cancelled& e) {
        if (ft->no_checkpoint) throw;
        throw Cancelled(std::string(e.what()) + " (the same command resumes)");
      }
    });
  });

  // ------------------------------------------------------------ generate
  struct GenerateArgs {
    GenerateParams params;
    std::string tags, adapter, from, out, weights_dir, device, config_file;
    int threads = 2;
  };
  auto gen = std::make_shared<GenerateArgs>();
  auto* gen_cmd = app.add_subcommand("generate", "generate a clip");
  gen_cmd->add_option("--tags", gen->tags,
                      "style tags, e.g. \"slow minor piano\" (a mode without a key gets one drawn "
                      "from --seed)");
  gen_cmd->add_option("--seconds", gen->params.seconds, "duration")->capture_default_str();
  gen_cmd->add_option("--seed", gen->params.seed, "random seed")->capture_default_str();
  gen_cmd->add_option("--steps", gen->params.steps, "solver steps")->capture_default_str();
  gen_cmd->add_option("--guidance", gen->params.guidance, "guidance scale (with tags)")
      ->capture_default_str();
  gen_cmd->add_option("--solver", gen->params.solver, "dpm++2m or ddim")->capture_default_str();
  gen_cmd
      ->add_option("--schedule", gen->params.schedule,
                   "where the solver steps fall: karras (more at low noise) | uniform")
      ->capture_default_str();
  gen_cmd->add_option("--vocoder", gen->params.vocoder,
                      "auto (the trained vocoder if the weights have one) | neural | griffin-lim")
      ->capture_default_str();
  gen_cmd->add_option("--griffin-lim", gen->params.griffin_lim_iterations, "Griffin-Lim iterations")
      ->capture_default_str();
  gen_cmd
      ->add_option("--pre-roll", gen->params.pre_roll_seconds,
                   "seconds made before the track and cut off (0 = the opening as the model "
                   "draws it, with the corpus's cymbal crash)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 30.0));
  gen_cmd->add_option("--adapter", gen->adapter, "LoRA adapter file");
  gen_cmd
      ->add_option(
          "--adapter-strength", gen->params.adapter_strength,
          "share of the adapter's change applied: 0 = base model, 1 = as trained, >1 = further")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 4.0));
  gen_cmd->add_option("--from", gen->from, "song to start from (img2img)");
  gen_cmd->add_option("--strength", gen->params.strength, "how far to stray from --from (0..1)")
      ->capture_default_str();
  gen_cmd->add_option("--weights", gen->weights_dir, "weights folder (default: shipped)");
  add_device_options(gen_cmd, gen->device, gen->config_file);
  gen_cmd->add_option("--threads", gen->threads, "LibTorch threads")->capture_default_str();
  gen_cmd->add_option("-o,--output", gen->out, "output audio file (.wav/.flac/.ogg)")->required();
  gen_cmd->callback([gen] {
    guarded("generate", [&] {
      auto engine = Engine::load(
          {gen->weights_dir, resolve_device(gen->device, gen->config_file), gen->threads});
      gen->params.tags = split_words(gen->tags);
      if (!gen->adapter.empty()) gen->params.adapter = engine->load_adapter(gen->adapter);
      if (!gen->from.empty()) {
        gen->params.seed_latent = engine->encode(audio::read_audio(gen->from));
      }
      const auto t0 = std::chrono::steady_clock::now();
      auto audio = engine->generate(gen->params);
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      audio::write_audio(gen->out, audio);
      if (const auto used = engine->conditioning_tags(gen->params); used != gen->params.tags) {
        std::string words;
        for (const auto& w : used) words += (words.empty() ? "" : " ") + w;
        std::fprintf(stderr, "conditioned on: %s (the tags completed as corpus clips carry them)\n",
                     words.c_str());
      }
      const auto& t = engine->last_timings();
      std::fprintf(stderr, "%s  %.1f s of audio in %.2f s (denoise %.2f, decode %.2f, vocoder %.2f)\n",
                   gen->out.c_str(), audio.seconds(), wall, t.denoise, t.decode, t.vocoder);
    });
  });
  add_vocoder_commands(app);
}

std::string resolve_device(const std::string& requested, const std::string& config_file) {
  if (!requested.empty()) return requested;
  config::LoadOptions options;
  if (!config_file.empty()) options.config_file = config_file;
  try {
    return std::string(config::to_string(config::load_config(options).model.device));
  } catch (const std::exception& e) {
    if (!config_file.empty()) throw ModelError(e.what());
    std::fprintf(stderr, "tuneloop: ignoring the config (%s)\n", e.what());
    return std::string(config::to_string(config::ModelConfig{}.device));
  }
}

std::string default_fine_tune_checkpoint(const std::string& output_path) {
  return beside_output(output_path, ".ckpt.safetensors");
}

std::string fine_tune_losses_path(const std::string& output_path) {
  return beside_output(output_path, ".losses.csv");
}

std::string run_fine_tune(const FineTuneCommand& command, const std::atomic<bool>& stop,
                          const ProgressFn& observer) {
  FineTuneRequest r = command.request;
  if (r.output_path.empty()) throw ModelError("fine-tune: no output path");
  for (auto& e : collect_examples(command.audio)) r.examples.push_back(std::move(e));
  if (command.no_checkpoint) {
    r.checkpoint_path.clear();
  } else if (r.checkpoint_path.empty()) {
    r.checkpoint_path = default_fine_tune_checkpoint(r.output_path);
  }
  if (!r.checkpoint_path.empty() &&
      fs::weakly_canonical(r.checkpoint_path) == fs::weakly_canonical(r.output_path)) {
    throw ModelError("fine-tune: the checkpoint " + r.checkpoint_path + " is the adapter file");
  }
  if (const auto dir = fs::path(r.output_path).parent_path(); !dir.empty()) {
    fs::create_directories(dir);
  }
  auto engine = Engine::load(
      {command.weights_dir, resolve_device(command.device, command.config_file), command.threads});
  const bool resuming = !r.checkpoint_path.empty() && fs::exists(r.checkpoint_path);
  LossLog losses(fine_tune_losses_path(r.output_path), resuming);

  const auto style = progress_style_for(stderr, false);
  auto note = [&](const std::string& text) {
    if (style != ProgressStyle::none) std::fprintf(stderr, "fine-tune  %s\n", text.c_str());
  };
  note(std::to_string(r.examples.size()) + " examples, device " + engine->device() +
       (resuming ? ", resuming from " + r.checkpoint_path : ""));
  // One display a phase, each started when its phase does: clips encoded, steps trained
  // (from the evaluation before the first step), calibration clips generated.
  std::optional<ProgressDisplay> display;
  display.emplace("fine-tune encode", static_cast<int>(r.examples.size()), style, stderr, "clips");
  std::string phase = "encode";
  int first_step = 0;
  double loss_before = std::nan("");
  char text[96];
  const auto path = engine->fine_tune(
      r,
      [&](const Progress& p) {
        if (p.phase == "encode" || p.phase == "calibrate") {
          if (phase != p.phase) {
            display.reset();
            display.emplace("fine-tune " + p.phase, p.total, style, stderr, "clips");
            phase = p.phase;
          }
          display->update(p.step, 0);
        } else if (p.phase == "evaluate" && std::isnan(loss_before)) {
          display.reset();
          loss_before = p.loss;
          std::snprintf(text, sizeof text, "eval loss %.5f", p.loss);
          note(text + (p.step > 0 ? ", resuming at step " + std::to_string(p.step) : ""));
          display.emplace("fine-tune", p.total, style);
          phase = "train";
          first_step = p.step;
        } else if (p.phase == "train") {
          if (!display) display.emplace("fine-tune", p.total, style);
          losses.add(p.step, p.loss, display->elapsed_seconds());
          display->update(p.step, first_step, p.loss);
        } else {
          display.reset();
          phase = p.phase;
          if (p.phase == "evaluate") {
            std::snprintf(text, sizeof text, "eval loss %.5f -> %.5f", loss_before, p.loss);
            note(text);
            if (r.calibration_clips > 0) {
              display.emplace("fine-tune calibrate",
                              r.calibration_clips * static_cast<int>(r.strength_scales.size()),
                              style, stderr, "clips");
              phase = "calibrate";
            }
          }
        }
        if (observer) observer(p);
      },
      stop);
  return path;
}

namespace {

void add_refine_option(CLI::App* cmd, int& refine) {
  cmd->add_option("--refine", refine,
                  "rounds of fitting the neural vocoder's output to the mel (-1: as the vocoder "
                  "file says)")
      ->check(CLI::Range(-1, kMaxRefine))
      ->capture_default_str();
}

void add_vocoder_commands(CLI::App& app) {
  // ------------------------------------------------------------ train-vocoder
  auto voc = std::make_shared<VocoderTrainOptions>();
  auto* voc_cmd = app.add_subcommand("train-vocoder", "train the neural vocoder (mel -> waveform) on a corpus");
  add_trainer_options(voc_cmd, *voc);
  auto* voc_ae = voc_cmd->add_option("--autoencoder", voc->autoencoder,
                                     "autoencoder.safetensors: its front end is used and a share "
                                     "of the inputs goes through it");
  auto* voc_mels =
      voc_cmd
          ->add_option("--mels", voc->config.frontend.mels,
                       "mel bands of the input, for a vocoder trained without --autoencoder (whose "
                       "front end it otherwise takes); with --init, bands other than the file's are "
                       "read through a map to its own, fitted on the corpus")
          ->check(CLI::Range(8, 512))
          ->excludes(voc_ae)
          ->capture_default_str();
  voc_cmd->add_option("--ae-mix", voc->autoencoder_mix, "share of inputs through the autoencoder")
      ->capture_default_str();
  voc_cmd->add_option("--crop-samples", voc->crop_samples, "samples per example (multiple of the hop)")
      ->capture_default_str();
  voc_cmd->add_option("--held-out", voc->held_out, "last N clips of the index not trained on")
      ->capture_default_str();
  voc_cmd->add_option("--mel-weight", voc->mel_weight, "weight of the log-mel L1 loss")
      ->capture_default_str();
  voc_cmd
      ->add_option("--sc-weight", voc->sc_weight,
                   "weight of spectral convergence in the multi-resolution STFT loss")
      ->capture_default_str();
  voc_cmd
      ->add_option("--phase-weight", voc->phase_weight,
                   "weight of the phase-derivative loss (instantaneous frequency and group delay "
                   "against the target's at the front end's STFT; 0: off)")
      ->capture_default_str();
  voc_cmd
      ->add_option("--spectrum-weight", voc->spectrum_weight,
                   "weight of the log-magnitude L1 between the predicted spectrum (before the "
                   "inverse STFT) and the target's STFT (0: off)")
      ->capture_default_str();
  voc_cmd
      ->add_option("--refine", voc->config.refine,
                   "rounds of fitting the output to the mel after synthesis, written to the file "
                   "(not trained through; 0: none)")
      ->check(CLI::Range(0, kMaxRefine))
      ->capture_default_str();
  voc_cmd->add_option("--dim", voc->config.dim, "ConvNeXt channels")->capture_default_str();
  voc_cmd->add_option("--intermediate", voc->config.intermediate, "ConvNeXt MLP width")
      ->capture_default_str();
  voc_cmd->add_option("--layers", voc->config.layers, "ConvNeXt blocks")->capture_default_str();
  voc_cmd
      ->add_option("--head-hidden", voc->config.head_hidden,
                   "width of the head's non-linear branch (0: a linear head only); with --init "
                   "from a file without one, it is added and starts silent")
      ->check(CLI::Range(0, 8192))
      ->capture_default_str();
  voc_cmd
      ->add_option("--phase", voc->config.phase,
                   "direct (per frame) | integrated (per-bin clock + predicted deviation) | "
                   "locked (integrated, each bin locked to itself or a neighbour) | "
                   "hybrid (locked, or no clock)")
      ->check(CLI::IsMember({"direct", "integrated", "locked", "hybrid"}))
      ->capture_default_str();
  voc_cmd
      ->add_option("--warmup", voc->warmup,
                   "steps of linear learning-rate warm-up at the start of a run (use with --init; "
                   "--resume carries on with it)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  voc_cmd
      ->add_option("--init", voc->init,
                   "vocoder file to start from (its sizes and tensors; fresh optimizer; "
                   "ignored with --resume)");
  voc_cmd
      ->add_option("--widen", voc->widen,
                   "with --init: a trunk this many times as wide as the file's, starting as the "
                   "file's function (channels copied)")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  voc_cmd->callback([voc, voc_mels] {
    guarded("train-vocoder", [&] {
      StopOnSignal s;
      voc->stop = &g_stop;
      if (!voc->init.empty() && voc_mels->count() > 0) voc->init_mels = voc->config.frontend.mels;
      auto r = train_vocoder(*voc);
      std::printf("%s  step %d  eval loss %.5f -> %.5f  %.3f s/step%s\n", r.weights.c_str(), r.step,
                  r.initial_eval_loss, r.final_eval_loss, r.seconds_per_step,
                  r.interrupted ? "  (interrupted; --resume continues)" : "");
    });
  });

  // ------------------------------------------------------------ reconstruct
  struct ReconstructArgs {
    ReconstructOptions options;
    std::string in, out;
    bool no_autoencoder = false;
  };
  auto rc = std::make_shared<ReconstructArgs>();
  auto* rc_cmd = app.add_subcommand(
      "reconstruct", "audio -> features -> (autoencoder) -> vocoder -> audio, to hear the round trip");
  rc_cmd->add_option("input", rc->in, "audio file")->required();
  rc_cmd->add_option("-o,--output", rc->out, "output audio file (.wav/.flac/.ogg)")->required();
  rc_cmd->add_flag("--no-autoencoder", rc->no_autoencoder, "vocode the true features");
  rc_cmd->add_flag("--griffin-lim", rc->options.griffin_lim, "Griffin-Lim instead of the neural vocoder");
  rc_cmd->add_option("--iterations", rc->options.griffin_lim_iterations, "Griffin-Lim iterations")
      ->capture_default_str();
  rc_cmd->add_option("--weights", rc->options.weights_dir, "weights folder (default: shipped)");
  rc_cmd->add_option("--autoencoder", rc->options.autoencoder, "autoencoder file (default: in --weights)");
  rc_cmd->add_option("--vocoder", rc->options.vocoder, "vocoder file (default: in --weights)");
  rc_cmd->add_option("--threads", rc->options.threads, "LibTorch threads")->capture_default_str();
  add_refine_option(rc_cmd, rc->options.refine);
  rc_cmd->callback([rc] {
    guarded("reconstruct", [&] {
      rc->options.through_autoencoder = !rc->no_autoencoder;
      const auto t0 = std::chrono::steady_clock::now();
      auto out = reconstruct(audio::read_audio(rc->in), rc->options);
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      audio::write_audio(rc->out, out);
      std::fprintf(stderr, "%s  %.2f s of audio in %.2f s (%s%s)\n", rc->out.c_str(), out.seconds(), wall,
                   rc->options.through_autoencoder ? "autoencoder, " : "",
                   rc->options.griffin_lim ? "Griffin-Lim" : "neural vocoder");
    });
  });

  // ------------------------------------------------------------ evaluate-vocoder
  struct EvaluateArgs {
    ReconstructOptions options;
    std::string corpus;
    int clips = 20;
    bool no_autoencoder = false;
  };
  auto ev = std::make_shared<EvaluateArgs>();
  auto* ev_cmd = app.add_subcommand(
      "evaluate-vocoder", "score the neural vocoder and Griffin-Lim on the corpus's last clips");
  ev_cmd->add_option("--corpus", ev->corpus, "corpus folder")->required();
  ev_cmd->add_option("--clips", ev->clips, "the index's last N clips (held out in training)")
      ->capture_default_str();
  ev_cmd->add_option("--iterations", ev->options.griffin_lim_iterations, "Griffin-Lim iterations")
      ->capture_default_str();
  ev_cmd->add_option("--weights", ev->options.weights_dir, "weights folder (default: shipped)");
  ev_cmd->add_option("--autoencoder", ev->options.autoencoder, "autoencoder file (default: in --weights)");
  ev_cmd->add_option("--vocoder", ev->options.vocoder, "vocoder file (default: in --weights)");
  add_refine_option(ev_cmd, ev->options.refine);
  ev_cmd->add_option("--threads", ev->options.threads, "LibTorch threads")->capture_default_str();
  ev_cmd->add_flag("--no-autoencoder", ev->no_autoencoder,
                   "score from true features only (no autoencoder is loaded: the vocoder's own "
                   "front end)");
  ev_cmd->callback([ev] {
    guarded("evaluate-vocoder", [&] {
      ev->options.through_autoencoder = !ev->no_autoencoder;
      const auto e = evaluate_vocoder(ev->corpus, ev->clips, ev->options);
      std::printf("%d held-out clips\n", e.clips);
      std::printf("| way back to audio | features | spectral conv. | LSD dB | onsets/s in -> out (err) "
                  "| flatness in -> out (err) | synthesis s per audio s |\n|---|---|---|---|---|---|---|\n");
      auto row = [](const char* way, const char* from, const VocoderScores& s) {
        std::printf("| %s | %s | %.3f | %.2f | %.2f -> %.2f (%.1f %%) | %.3f -> %.3f (%.3f) | %.4f |\n", way,
                    from, s.spectral_convergence, s.log_spectral_distance, s.onset_rate_in,
                    s.onset_rate_out, 100.0 * s.onset_rate_error, s.flatness_in, s.flatness_out,
                    s.flatness_error, s.seconds_per_audio_second);
      };
      row("neural vocoder", "true", e.neural_true);
      if (e.through_autoencoder) row("neural vocoder", "autoencoder", e.neural_autoencoder);
      row("Griffin-Lim", "true", e.griffin_lim_true);
      if (e.through_autoencoder) row("Griffin-Lim", "autoencoder", e.griffin_lim_autoencoder);
    });
  });
}

}  // namespace
}  // namespace tuneloop::model

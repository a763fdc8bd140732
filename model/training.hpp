#pragma once
// Base-model training: the autoencoder on a corpus's log-mels, then the denoiser on the
// corpus's latents. No LibTorch types here, so the command-line code stays light.
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/hparams.hpp"

namespace tuneloop::model {

// One clip of a training corpus (DIR/clips/*.wav listed in DIR/index.jsonl).
struct CorpusClip {
  std::string path;               // absolute or relative to the working folder
  std::vector<std::string> tags;
};

// Reads DIR/index.jsonl: one JSON object a line with the clip's file ("path", "file",
// "clip" or "wav"; relative to DIR) and its "tags" list.
// Throws ModelError naming the file and line when it is missing or malformed.
std::vector<CorpusClip> read_corpus_index(const std::string& dir);

struct TrainerOptions {
  std::string corpus;           // corpus folder
  std::string out;              // output folder (created)
  int steps = 1000;             // total steps (a resumed run continues up to this)
  int batch = 16;
  double lr = 1e-3;
  int threads = 2;
  bool resume = false;          // continue from out/<part>.ckpt.safetensors if present
  int checkpoint_every = 200;
  uint64_t seed = 1;
  bool quiet = false;           // no progress lines on stderr
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to checkpoint and stop
};

struct AutoencoderTrainOptions : TrainerOptions {
  AutoencoderConfig config;      // mel_offset/mel_scale are measured on the corpus
  int crop_frames = 128;         // mel frames per example
  double latent_penalty = 1e-4;  // weight of mean(z²) next to the L1 reconstruction loss
  // Weight of an onset loss next to the L1: the L1 between the band-averaged rises (over two
  // frames, as the onset detector of audio/features.cpp sees them) of the decoded and
  // the true log-mel. An L1 alone lets the decoder soften attacks.
  double flux_weight = 0.0;
  int held_out = 0;  // the index's last N clips are not trained on (evaluate-vocoder's)
  // Autoencoder weights to start a fresh run from; their configuration and mel normalisation
  // are kept (the corpus is not measured again). Ignored when a checkpoint is resumed.
  std::string init;
  // With init: train the decoder only. The encoder, and so every latent, stays the init's,
  // and the file written says so (latent_of), so denoisers made for init still fit it.
  bool decoder_only = false;
  // With init (not decoder_only): weight of a penalty on how far the latents move from the
  // init's, mean((z - z_init)²) / mean(z_init²). The file written records the init
  // (anchored_to), and train-denoiser --init accepts the init's denoisers with it, to adapt
  // them to the moved latents. 0 = none.
  double latent_anchor = 0.0;
  // Sample rate of the front end (0: the init's, or config's). With init at another rate the
  // front end is the init's at this rate (at_rate: the same frames, wider bands) and its mel
  // normalisation is measured again; an anchor then reads each clip at its own rate, so the
  // new autoencoder's latents stay near the init's for the same music.
  int rate = 0;
};

struct DenoiserTrainOptions : TrainerOptions {
  DenoiserTrainOptions() { lr = 5e-4; }
  std::string autoencoder;         // autoencoder.safetensors
  DenoiserConfig config;           // tags and latent_scale are filled in by the trainer
  std::vector<std::string> vocabulary;  // "" = the sorted union of the corpus's tags
  int crop_latent = 64;            // latent frames per example (64 ≈ 4.1 s)
  double ema = 0.999;
  // Denoiser weights to start a fresh run from (e.g. the shipped ones, to train them further
  // when their checkpoint is gone). Their configuration, tags and latent scale are kept; the
  // optimizer starts afresh. Ignored when a checkpoint is resumed. They must be made for
  // `autoencoder`, or for the one it was anchored to (train-autoencoder --latent-anchor).
  std::string init;
};

struct TrainResult {
  int step = 0;                 // steps done in total
  bool interrupted = false;     // stopped by the stop flag (a checkpoint was written)
  double initial_eval_loss = 0; // loss on a fixed batch before this run's first step
  double final_eval_loss = 0;   // the same batch after the last step
  double seconds_per_step = 0;
  std::string weights;          // the weight file written
};

// Writes out/autoencoder.safetensors, out/autoencoder.ckpt.safetensors, out/losses.csv.
// Throws ModelError (bad corpus, unreadable checkpoint) or audio::AudioError.
TrainResult train_autoencoder(const AutoencoderTrainOptions& options);

// Encodes the corpus once (cached in out/latents.safetensors), then trains with EMA.
// Writes out/denoiser.safetensors (EMA weights), a copy of the autoencoder next to it
// (so out/ is a complete weights folder), out/denoiser.ckpt.safetensors, out/losses.csv.
// Throws ModelError or audio::AudioError.
TrainResult train_denoiser(const DenoiserTrainOptions& options);

// A denoiser's v-prediction loss on a corpus it was not trained on, with fixed draws, so two
// denoisers (two checkpoints, or a run and the shipped weights) can be compared without
// the noise of a training batch: each clip's whole latent at `levels` evenly spaced noise
// levels t = (k + ½)/levels, the same noise for every denoiser (from `seed`), untagged (as
// untagged generation and the listener's adapters use it) and with the clip's own tags.
struct DenoiserEvaluationOptions {
  std::string corpus;       // a corpus folder (render one with another --seed than training's)
  int clips = 0;            // the index's last N clips; 0 = all
  std::string weights_dir;  // "" = the shipped model/weights
  std::string denoiser;     // "" = weights_dir/denoiser.safetensors
  std::string autoencoder;  // the one it was trained with; "" = weights_dir/autoencoder.safetensors
  int levels = 8;
  uint64_t seed = 1;
  int threads = 2;
  // Two tags of the vocabulary ("major", "minor"), or none: the clips that carry exactly one
  // of them are scored again with it replaced by the other. If the denoiser uses what the tag
  // says, the wrong tag scores worse than the right one.
  std::pair<std::string, std::string> swap;
};
struct DenoiserEvaluation {
  int clips = 0;
  std::vector<double> t;                      // the noise levels
  std::vector<double> untagged;               // mean loss at each level, no tags
  std::vector<double> tagged;                 // the same with each clip's tags
  double mean_untagged = 0, mean_tagged = 0;  // over the levels
  // With a swap: over the clips that carry one of the two tags, the mean loss at each level
  // with their own tags and with the tag swapped.
  int swapped_clips = 0;
  std::vector<double> own_tags, swapped_tags;
  double mean_own_tags = 0, mean_swapped_tags = 0;
};
// Throws ModelError (unreadable files, a denoiser made for another autoencoder, clips too
// short for the denoiser) or audio::AudioError.
DenoiserEvaluation evaluate_denoiser(const DenoiserEvaluationOptions& options);

}  // namespace tuneloop::model

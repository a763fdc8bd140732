#pragma once
// Pieces shared by the trainers and the engine's fine-tune (LibTorch inside model/ only).
#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/frontend.hpp"
#include "model/model_files.hpp"
#include "model/networks.hpp"
#include "progress/progress.hpp"
#include "model/training.hpp"

namespace tuneloop::model {

using progress::format_duration;
using progress::LossLog;
using progress::ProgressDisplay;
using progress::ProgressFigures;
using progress::ProgressStyle;
using progress::progress_style_for;

// Log-mels [mels, T] of the corpus clips, read at the front end's rate and left at their level
// (the corpus encodes "soft" as 6 dB quieter).
// Throws audio::AudioError or ModelError naming the clip.
std::vector<torch::Tensor> corpus_log_mels(const std::vector<CorpusClip>& clips,
                                           const MelFrontEnd& frontend, bool quiet);

// Multi-hot [V] of tags over a vocabulary; tags not in it go to `unknown` if given.
torch::Tensor multi_hot(const std::vector<std::string>& tags,
                        const std::vector<std::string>& vocabulary,
                        std::vector<std::string>* unknown = nullptr);

// Latent [C, H, L] of a log-mel [mels, T], cropped to a multiple of `multiple` frames.
// Throws ModelError when it is shorter than `multiple` frames.
torch::Tensor encode_log_mel(Autoencoder& ae, const MelFrontEnd& frontend,
                             const torch::Tensor& log_mel, int64_t multiple);

// Where a trainer writes and what it resumes from. start_training_run sets LibTorch's
// threads and seed, creates `out`, and loads `<out>/<name>.ckpt.safetensors` when `resume`
// is set and the file is there. Throws ModelError for an unreadable checkpoint.
struct TrainingRun {
  std::string checkpoint_path;  // <out>/<name>.ckpt.safetensors
  std::string weights_path;     // <out>/<weights_file>
  std::optional<Checkpoint> checkpoint;
};
TrainingRun start_training_run(const std::string& out, const std::string& name,
                               const std::string& weights_file, int threads, uint64_t seed, bool resume);

// Progress on stderr (a redrawn bar when it is a terminal, else a line every 2 s: step/total,
// smoothed loss, steps/s, ETA; progress/progress.hpp) and a CSV row per step.
// Throws ModelError if the CSV can't be written.
class TrainLog {
 public:
  TrainLog(std::string name, const std::string& csv_path, bool append, int total, bool quiet);
  void step(int step, int first_step, double loss);
  void note(const std::string& text) { display_.note(text); }
  double rate() const noexcept { return display_.rate(); }

 private:
  ProgressDisplay display_;
  LossLog losses_;
};

}  // namespace tuneloop::model

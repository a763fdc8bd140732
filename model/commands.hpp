#pragma once
#include <CLI/CLI.hpp>
#include <atomic>
#include <string>
#include <vector>

#include "model/engine.hpp"

namespace tuneloop::model {
// Adds the model's subcommands (train-autoencoder, train-denoiser, fine-tune, generate, …)
// to the `tuneloop` command-line tool.
void add_model_commands(CLI::App& app);

// The device `generate` and `fine-tune` run on: `requested` when given, else model.device
// of the config tuneloopd reads (`config_file` when given, else the XDG default file if it
// exists, else the built-in default, auto). A default file that does not load is named on
// stderr and skipped. Throws ModelError if `config_file` is given and does not load.
std::string resolve_device(const std::string& requested, const std::string& config_file);

// `tuneloop fine-tune`, its options parsed.
struct FineTuneCommand {
  FineTuneRequest request;         // examples are added from `audio`; see checkpoint below
  std::vector<std::string> audio;  // files, or folders whose .wav/.flac/.ogg files are taken
  std::string weights_dir;         // "" = the shipped weights
  std::string device;              // "" = resolve_device's default
  std::string config_file;         // for the device default
  int threads = 2;
  bool no_checkpoint = false;  // else request.checkpoint_path, "" = the default one
};

// <dir>/<stem>.ckpt.safetensors and <dir>/<stem>.losses.csv beside the adapter
// <dir>/<stem>.safetensors that a fine-tune writes.
std::string default_fine_tune_checkpoint(const std::string& output_path);
std::string fine_tune_losses_path(const std::string& output_path);

// Runs the fine-tune of `tuneloop fine-tune`: progress on stderr (a bar on a terminal),
// every step's loss appended to fine_tune_losses_path (continued when a checkpoint is
// resumed), checkpoints beside the output unless no_checkpoint (resumed when there;
// removed once the adapter is written). `observer` sees every report too. Returns the
// adapter's path. Throws Cancelled when `stop` is set (after checkpointing), ModelError
// or audio::AudioError.
std::string run_fine_tune(const FineTuneCommand& command, const std::atomic<bool>& stop,
                          const ProgressFn& observer = {});
}  // namespace tuneloop::model

#pragma once
#include <CLI/CLI.hpp>

namespace tuneloop::model {
// Adds the model's subcommands (train-autoencoder, train-denoiser, fine-tune, generate, …)
// to the `tuneloop` command-line tool.
void add_model_commands(CLI::App& app);
}  // namespace tuneloop::model

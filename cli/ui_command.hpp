#pragma once
// `tuneloop ui`: prints the web player's address with its access token and opens it.
#include <CLI/CLI.hpp>

namespace tuneloop::cli {
/// Adds the `ui` subcommand (reads DATA/ui-url, written by a running tuneloopd).
void add_ui_command(CLI::App& app);
}  // namespace tuneloop::cli

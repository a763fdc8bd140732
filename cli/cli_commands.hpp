#pragma once
// The `tuneloop` subcommands that talk to a running daemon: status, play, pause, resume,
// stop, next, prev, seek, volume, rate, unrate, songs, tracks, export, forget-me, watch.
#include <CLI/CLI.hpp>

namespace tuneloop::cli {
/// Adds the daemon-control subcommands (and the global --json and --socket options).
void add_client_commands(CLI::App& app);
}  // namespace tuneloop::cli

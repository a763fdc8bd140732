#pragma once
// The `tuneloop` subcommands for the loop: iterate, iterations [list|show|activate|delete],
// job [status|cancel]. They talk to a running daemon over its socket.
#include <CLI/CLI.hpp>

namespace tuneloop::cli {
/// Adds the loop subcommands. They read the global --socket and --json options that
/// add_client_commands defines, if present.
void add_loop_cli_commands(CLI::App& app);
}  // namespace tuneloop::cli

#pragma once
// How every `tuneloop` subcommand that talks to the daemon finds it, and whether it was
// asked for JSON: one place, so `status`, `iterations`, `study` … agree.

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace tuneloop::cli {

/// The daemon's socket: `explicit_path` when not empty, else $TUNELOOP_SOCKET, else
/// paths.socket from the config, else the XDG default. A config that does not load is
/// named on stderr and skipped (the CLI should still reach a daemon on the default path).
std::filesystem::path resolve_socket(const std::string& explicit_path);

/// resolve_socket() with the value of the root command's global --socket option.
std::filesystem::path cli_socket_path(const CLI::App& root);

/// Whether the root command's global --json flag was given.
bool cli_json_output(const CLI::App& root);

}  // namespace tuneloop::cli

#pragma once
// `tuneloop study …`: drive a human study on the running daemon (the study.* methods):
// start a blinded playlist, play and rate its tracks one by one, finish and export it —
// or do all of that in one interactive `tuneloop study session`.

namespace CLI {
class App;
}

namespace tuneloop::cli {

/// Adds the `study` subcommand (start, next, play, rate, skip, status, list, finish,
/// export, session). Uses the root app's --socket and --json options when it has them.
void add_study_commands(CLI::App& app);

}  // namespace tuneloop::cli

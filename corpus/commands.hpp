#pragma once
#include <CLI/CLI.hpp>

namespace tuneloop::corpus {
// Adds `tuneloop corpus` (and `tuneloop features`) to the command-line tool.
void add_corpus_commands(CLI::App& app);
}  // namespace tuneloop::corpus

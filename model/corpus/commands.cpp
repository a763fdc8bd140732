#include "model/corpus/commands.hpp"

namespace tuneloop::corpus {
void add_corpus_commands(CLI::App&) {}
}  // namespace tuneloop::corpus

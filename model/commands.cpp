#include "model/commands.hpp"

namespace tuneloop::model {
void add_model_commands(CLI::App&) {}
}  // namespace tuneloop::model

#include <CLI/CLI.hpp>

#include "daemon/cli_commands.hpp"
#include "daemon/loop_cli.hpp"
#include "daemon/ui_command.hpp"
#include "loop/pilot/commands.hpp"
#include "model/commands.hpp"
#include "corpus/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tuneloop: control the tuneloop daemon, build the corpus, train and generate"};
  app.require_subcommand(1);
  tuneloop::daemon::add_client_commands(app);
  tuneloop::daemon::add_loop_cli_commands(app);
  tuneloop::daemon::add_ui_command(app);
  tuneloop::corpus::add_corpus_commands(app);
  tuneloop::model::add_model_commands(app);
  tuneloop::pilot::add_pilot_commands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

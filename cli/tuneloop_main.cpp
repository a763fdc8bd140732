#include <CLI/CLI.hpp>

#include <set>
#include <string>

#include "corpus/commands.hpp"
#include "cli/cli_commands.hpp"
#include "cli/loop_cli.hpp"
#include "cli/study_commands.hpp"
#include "cli/ui_command.hpp"
#include "pilot/commands.hpp"
#include "model/commands.hpp"

namespace {

// The offline model tools (no daemon needed) on `app`.
void add_model_tools(CLI::App& app) {
  tuneloop::corpus::add_corpus_commands(app);
  tuneloop::model::add_model_commands(app);
}

std::set<std::string> subcommand_names(CLI::App& app) {
  std::set<std::string> names;
  for (const auto* s : app.get_subcommands({})) names.insert(s->get_name());
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tuneloop: control the tuneloop daemon, run studies, and (tuneloop model …) build the\n"
               "corpus, train and sample the model"};
  app.require_subcommand(1);
  tuneloop::cli::add_client_commands(app);
  tuneloop::cli::add_loop_cli_commands(app);
  tuneloop::cli::add_ui_command(app);
  tuneloop::pilot::add_pilot_commands(app);
  tuneloop::cli::add_study_commands(app);
  auto* model = app.add_subcommand("model", "the model tools, no daemon needed: corpus, features, "
                                            "train-*, evaluate-*, fine-tune, generate, reconstruct");
  model->require_subcommand(1);
  add_model_tools(*model);
  // The tools' old top-level names still work for one version (NEWS), hidden from --help.
  const auto before = subcommand_names(app);
  add_model_tools(app);
  for (auto* s : app.get_subcommands({}))
    if (!before.count(s->get_name())) s->group("");
  CLI11_PARSE(app, argc, argv);
  return 0;
}

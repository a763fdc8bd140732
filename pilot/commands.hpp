#pragma once
// `tuneloop pilot …`: run a study file, check one, rebuild a report from recorded events,
// and run a blinded rating session for a human participant.

namespace CLI {
class App;
}

namespace tuneloop::pilot {

/// Adds the `pilot` subcommand (run, pool, check, report).
void add_pilot_commands(CLI::App& app);

}  // namespace tuneloop::pilot

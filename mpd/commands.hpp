#pragma once
// The MPD command table: every command is one row (name, permission, argument bounds,
// handler), as in MPD's src/command/AllCommands.cxx. Argument counts and permissions are
// checked in one place (ClientState) before a handler runs; handlers throw MpdError and
// call the daemon only through the JSON-RPC command table (DaemonView).

#include "mpd/context.hpp"

#include <string_view>
#include <vector>

namespace tuneloop::mpd {

using Handler = Result (*)(Context&, const Args&);

struct CommandRow {
  std::string_view name;
  unsigned permission = permission::read;
  int min_args = 0;   // -1: not checked
  int max_args = 0;   // -1: no upper bound
  Handler handler = nullptr;
  /// After it runs, look at the daemon for changes to announce (player, volume, queue).
  bool changes_player = false;
};

/// Every row, sorted by name.
const std::vector<CommandRow>& command_rows();
/// nullptr if there is no such command.
const CommandRow* find_command(std::string_view name);

}  // namespace tuneloop::mpd

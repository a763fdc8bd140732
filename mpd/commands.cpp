#include "mpd/commands.hpp"

#include "mpd/handlers.hpp"

#include <algorithm>

namespace tuneloop::mpd {

namespace {

namespace p = permission;

std::vector<CommandRow> make_rows() {
  // name, permission, min args, max args, handler, changes the player
  std::vector<CommandRow> rows = {
      {"albumart", p::read, 2, 2, handle_albumart, false},
      {"binarylimit", p::none, 1, 1, handle_binarylimit, false},
      {"channels", p::read, 0, 0, handle_channels, false},
      {"clearerror", p::player, 0, 0, handle_clearerror, false},
      {"close", p::none, -1, -1, handle_close, false},
      {"commands", p::none, 0, 0, handle_commands, false},
      {"config", p::admin, 0, 0, handle_config, false},
      {"consume", p::player, 1, 1, handle_consume, false},
      {"count", p::read, 1, -1, handle_count, false},
      {"currentsong", p::read, 0, 0, handle_currentsong, false},
      {"decoders", p::read, 0, 0, handle_decoders, false},
      {"find", p::read, 1, -1, handle_find, false},
      {"getvol", p::read, 0, 0, handle_getvol, false},
      {"idle", p::read, 0, -1, handle_idle, false},
      {"list", p::read, 1, -1, handle_list, false},
      {"listall", p::read, 0, 1, handle_listall, false},
      {"listpartitions", p::read, 0, 0, handle_listpartitions, false},
      {"listallinfo", p::read, 0, 1, handle_listallinfo, false},
      {"listplaylists", p::read, 0, 0, handle_listplaylists, false},
      {"lsinfo", p::read, 0, 1, handle_lsinfo, false},
      {"next", p::player, 0, 0, handle_next, true},
      {"notcommands", p::none, 0, 0, handle_notcommands, false},
      {"outputs", p::read, 0, 0, handle_outputs, false},
      {"password", p::none, 1, 1, handle_password, false},
      {"pause", p::player, 0, 1, handle_pause, true},
      {"ping", p::none, 0, 0, handle_ping, false},
      {"play", p::player, 0, 1, handle_play, true},
      {"playid", p::player, 0, 1, handle_playid, true},
      {"playlistid", p::read, 0, 1, handle_playlistid, false},
      {"playlistinfo", p::read, 0, 1, handle_playlistinfo, false},
      {"plchanges", p::read, 1, 2, handle_plchanges, false},
      {"plchangesposid", p::read, 1, 2, handle_plchangesposid, false},
      {"previous", p::player, 0, 0, handle_previous, true},
      {"random", p::player, 1, 1, handle_random, false},
      {"readcomments", p::read, 1, 1, handle_readcomments, false},
      {"readpicture", p::read, 2, 2, handle_readpicture, false},
      {"repeat", p::player, 1, 1, handle_repeat, false},
      {"replay_gain_status", p::read, 0, 0, handle_replay_gain_status, false},
      {"rescan", p::control, 0, 1, handle_update, false},
      {"search", p::read, 1, -1, handle_search, false},
      {"seek", p::player, 2, 2, handle_seek, true},
      {"seekcur", p::player, 1, 1, handle_seekcur, true},
      {"seekid", p::player, 2, 2, handle_seekid, true},
      {"setvol", p::player, 1, 1, handle_setvol, true},
      {"single", p::player, 1, 1, handle_single, false},
      {"stats", p::read, 0, 0, handle_stats, false},
      {"status", p::read, 0, 0, handle_status, false},
      {"sticker", p::admin, 3, -1, handle_sticker, false},
      {"stop", p::player, 0, 0, handle_stop, true},
      {"tagtypes", p::none, 0, -1, handle_tagtypes, false},
      {"update", p::control, 0, 1, handle_update, false},
      {"urlhandlers", p::read, 0, 0, handle_urlhandlers, false},
      {"volume", p::player, 1, 1, handle_volume, true},
  };
  std::sort(rows.begin(), rows.end(),
            [](const CommandRow& a, const CommandRow& b) { return a.name < b.name; });
  return rows;
}

bool permitted(const CommandRow& row, unsigned granted) noexcept {
  return (row.permission & granted) == row.permission;
}

}  // namespace

const std::vector<CommandRow>& command_rows() {
  static const std::vector<CommandRow> rows = make_rows();
  return rows;
}

const CommandRow* find_command(std::string_view name) {
  const auto& rows = command_rows();
  auto it = std::lower_bound(rows.begin(), rows.end(), name,
                             [](const CommandRow& r, std::string_view n) { return r.name < n; });
  return it != rows.end() && it->name == name ? &*it : nullptr;
}

Result handle_commands(Context& ctx, const Args&) {
  for (const auto& row : command_rows())
    if (permitted(row, ctx.client.permission)) ctx.pair("command", row.name);
  return Result::ok;
}

Result handle_notcommands(Context& ctx, const Args&) {
  for (const auto& row : command_rows())
    if (!permitted(row, ctx.client.permission)) ctx.pair("command", row.name);
  return Result::ok;
}

}  // namespace tuneloop::mpd

#pragma once
// The command handlers, by area (one file each); mpd/commands.cpp lists them in rows.
// Each answers `Result` or throws MpdError; `args` has been counted against the row.

#include "mpd/context.hpp"

namespace tuneloop::mpd {

// connection_commands.cpp: the connection itself and what the server offers.
Result handle_ping(Context&, const Args&);
Result handle_close(Context&, const Args&);
Result handle_password(Context&, const Args&);
Result handle_binarylimit(Context&, const Args&);
Result handle_tagtypes(Context&, const Args&);
Result handle_idle(Context&, const Args&);
Result handle_urlhandlers(Context&, const Args&);
Result handle_decoders(Context&, const Args&);
Result handle_listpartitions(Context&, const Args&);
Result handle_channels(Context&, const Args&);
Result handle_config(Context&, const Args&);
Result handle_outputs(Context&, const Args&);

// player_commands.cpp: status and playback, through the player.* methods.
Result handle_status(Context&, const Args&);
Result handle_currentsong(Context&, const Args&);
Result handle_play(Context&, const Args&);
Result handle_playid(Context&, const Args&);
Result handle_pause(Context&, const Args&);
Result handle_stop(Context&, const Args&);
Result handle_next(Context&, const Args&);
Result handle_previous(Context&, const Args&);
Result handle_seek(Context&, const Args&);
Result handle_seekid(Context&, const Args&);
Result handle_seekcur(Context&, const Args&);
Result handle_setvol(Context&, const Args&);
Result handle_volume(Context&, const Args&);
Result handle_getvol(Context&, const Args&);
Result handle_clearerror(Context&, const Args&);

// option_commands.cpp: MPD's playback options, kept and reported.
Result handle_consume(Context&, const Args&);
Result handle_random(Context&, const Args&);
Result handle_repeat(Context&, const Args&);
Result handle_single(Context&, const Args&);
Result handle_replay_gain_status(Context&, const Args&);

// queue_commands.cpp: the play queue as MPD's queue.
Result handle_playlistinfo(Context&, const Args&);
Result handle_playlistid(Context&, const Args&);
Result handle_plchanges(Context&, const Args&);
Result handle_plchangesposid(Context&, const Args&);
Result handle_listplaylists(Context&, const Args&);

// database_commands.cpp: the tracks as MPD's database.
Result handle_lsinfo(Context&, const Args&);
Result handle_listall(Context&, const Args&);
Result handle_listallinfo(Context&, const Args&);
Result handle_find(Context&, const Args&);
Result handle_search(Context&, const Args&);
Result handle_list(Context&, const Args&);
Result handle_count(Context&, const Args&);
Result handle_stats(Context&, const Args&);
Result handle_update(Context&, const Args&);
Result handle_readcomments(Context&, const Args&);
Result handle_albumart(Context&, const Args&);
Result handle_readpicture(Context&, const Args&);

// sticker_commands.cpp: stickers as ratings and the listening log.
Result handle_sticker(Context&, const Args&);

// commands.cpp: what this connection may and may not run.
Result handle_commands(Context&, const Args&);
Result handle_notcommands(Context&, const Args&);

}  // namespace tuneloop::mpd

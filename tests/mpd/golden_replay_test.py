#!/usr/bin/env python3
"""Replays the connect bursts of ncmpcpp, Cantata and myMPD (tests/mpd/golden/*.txt, recorded
from a real MPD by scripts/record_mpd_transcripts.py) against tuneloopd's MPD door, and
checks the answers for what each client needs from them.

    python3 tests/mpd/golden_replay_test.py HOST PORT [--golden DIR] [--client NAME]

The daemon should have a track or two and no audio device. Songs, times and counts
legitimately differ from MPD's, so answers are compared by structure, not byte for byte:
  - every answer ends in OK or ACK; where MPD answered OK we must too, unless the client
    copes with an ACK there (TOLERATED_ACKS, printed as a note); where MPD answered ACK we
    must answer the same error code, or OK where the error only says MPD's songs lack
    something ours have (CONTENT_ACKS: a sticker);
  - the keys MPD's answer had are in ours, but for song tags, Format, and keys that depend
    on the player's state or on what a real MPD has and tuneloop has not (OPTIONAL_KEYS);
  - numbers are numbers;
  - and each client's own requirements (CHECKS below), with where its source needs them.
Exits 0 and prints "ok" when all hold; else prints each failure and exits 1.
Run by tests/mpd/mpd_daemon_test.cpp, which starts the daemon. Standard library only.
"""

import argparse
import pathlib
import re
import select
import socket
import sys

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
TIMEOUT_S = 10

# Where the client goes on without the command, and why (client source, function).
TOLERATED_ACKS = {
    ("cantata", "listplaylists"): "mpd-interface/mpdconnection.cpp "
        "MPDConnection::listPlaylists: errors are not reported",
}

# Keys of MPD's answer that ours may lack: they depend on the player's state, or name
# what a real MPD has and tuneloop has not.
OPTIONAL_KEYS = {
    "status": {"song", "songid", "nextsong", "nextsongid", "time", "elapsed", "duration",
               "bitrate", "audio", "error", "updating_db", "xfade", "mixrampdelay"},
    "urlhandlers": {"handler"},    # no streams are played
    "outputs": {"attribute"},
    "listpartitions": {"partition"},
    "channels": {"channel"},
}
# Song tags and the audio format are content: a tuneloop track has the tags it has.
CONTENT_KEYS = {
    "Artist", "ArtistSort", "Album", "AlbumSort", "AlbumArtist", "AlbumArtistSort", "Title",
    "Track", "Name", "Genre", "Date", "OriginalDate", "Composer", "ComposerSort", "Performer",
    "Conductor", "Work", "Movement", "MovementNumber", "Ensemble", "Location", "Grouping",
    "Comment", "Disc", "Label", "MUSICBRAINZ_ARTISTID", "MUSICBRAINZ_ALBUMID",
    "MUSICBRAINZ_ALBUMARTISTID", "MUSICBRAINZ_TRACKID", "MUSICBRAINZ_RELEASETRACKID",
    "MUSICBRAINZ_WORKID", "Format",
}
# MPD's errors that only say the content differs: its songs have no stickers, ours may.
CONTENT_ACKS = {("sticker", "50")}
INT_KEYS = {"volume", "repeat", "random", "consume", "playlist", "playlistlength", "song",
            "songid", "nextsong", "nextsongid", "uptime", "playtime", "artists", "albums",
            "songs", "db_playtime", "db_update", "Pos", "Id", "Time", "outputid",
            "outputenabled"}
IDLE_SUBSYSTEMS = {"database", "update", "stored_playlist", "playlist", "player", "mixer",
                   "output", "options", "partition", "sticker", "subscription", "message",
                   "neighbor", "mount"}
ACK = re.compile(r"^ACK \[(\d+)@(\d+)\] \{([^}]*)\} ?(.*)$")


# ---- the golden transcripts ----------------------------------------------------------

class Exchange:
    def __init__(self, conn, source):
        self.conn, self.source = conn, source
        self.requests, self.answer = [], []

    @property
    def command(self):
        return self.requests[0].split(" ", 1)[0] if self.requests else ""


class Open:
    """A connection opened where the transcript first names it."""

    def __init__(self, conn, greeting):
        self.conn, self.greeting = conn, greeting


def parse_golden(path):
    """Returns the transcript's Open and Exchange steps in order."""
    steps, exchanges = [], []
    conn, source, current = None, "", None
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            if not line.startswith("# sent: "):
                source, current = line[2:], None  # the next request starts a new step
        elif line.startswith("@ "):
            conn, current = line[2:], None
        elif line.startswith("< "):
            steps.append(Open(conn, line[2:]))
        elif line.startswith("> "):
            if current is None or current.answer or current.command == "idle":
                current = Exchange(conn, source)
                exchanges.append(current)
                steps.append(current)
            current.requests.append(line[2:])
        elif current is not None:
            current.answer.append(line)
    for e in exchanges:
        if e.command == "idle":
            continue
        if not e.answer or not (e.answer[-1] == "OK" or e.answer[-1].startswith("ACK ")):
            raise ValueError(f"{path}: the answer to {e.requests} does not end in OK or ACK")
    return steps


def pairs(answer):
    out = []
    for line in answer:
        if line == "OK" or line.startswith("ACK "):
            break
        key, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):
            key, value = line[:-1], ""
        out.append((key, value))
    return out


def entities(answer, starts):
    """Splits an answer into blocks, each opening at a key in `starts`."""
    blocks = []
    for key, value in pairs(answer):
        if key in starts or not blocks:
            blocks.append([])
        blocks[-1].append((key, value))
    return blocks


def as_dict(answer):
    return dict(pairs(answer))


def version_of(greeting):
    m = re.match(r"^OK MPD (\d+)\.(\d+)\.(\d+)$", greeting)
    return tuple(int(x) for x in m.groups()) if m else None


# ---- a connection to the door --------------------------------------------------------

class Failure(Exception):
    pass


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.buffer = b""
        self.greeting = self.read_line()

    def read_line(self):
        while b"\n" not in self.buffer:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Failure(f"no answer within {TIMEOUT_S} s")
            if not data:
                raise Failure("the door closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def has_data(self, seconds):
        if self.buffer:
            return True
        return bool(select.select([self.sock], [], [], seconds)[0])

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def read_answer(self):
        lines = []
        while True:
            lines.append(self.read_line())
            if lines[-1] == "OK" or lines[-1].startswith("ACK "):
                return lines

    def command(self, line):
        self.send(line)
        return self.read_answer()

    def close(self):
        self.sock.close()


# ---- what each client needs ----------------------------------------------------------

class Context:
    """What a check may use: the client's connections and earlier answers."""

    def __init__(self, client):
        self.client = client
        self.conns = {}
        self.status = {}
        self.queue = []      # songs of the latest playlistinfo / plchanges answer
        self.song = ""       # {song}: first file of the latest playlistinfo answer
        self.dir = ""        # {dir}: first directory of the latest root lsinfo answer
        self.notes = []


def require(condition, message):
    if not condition:
        raise Failure(message)


def check_greeting_libmpdclient(ctx, greeting, minimum):
    """libmpdclient src/connection.c mpd_parse_welcome: "OK MPD " then a version."""
    v = version_of(greeting)
    require(v is not None, f"greeting {greeting!r} is not 'OK MPD x.y.z'")
    require(v >= minimum, f"protocol {v} is older than {minimum}")


def check_ncmpcpp_greeting(ctx, greeting):
    # ncmpcpp src/ncmpcpp.cpp main: a server whose protocol is older than 0.16 is dropped.
    check_greeting_libmpdclient(ctx, greeting, (0, 16, 0))


def check_cantata_greeting(ctx, greeting):
    # mpd-interface/mpdconnection.cpp MPDConnection::connectToMPD: "OK MPD" then
    # sscanf("%3d.%3d.%3d") from the 8th character for the version.
    require(greeting.startswith("OK MPD ") and version_of(greeting) is not None,
            f"greeting {greeting!r} is not 'OK MPD x.y.z'")


def check_mympd_greeting(ctx, greeting):
    # myMPD src/compile_time.h.in MPD_VERSION_MIN_*: 0.23.5; src/mympd_client/partitions.c
    # partitions_connect shuts myMPD down below it, src/mympd_client/stickerdb.c
    # stickerdb_connect turns stickers off.
    check_greeting_libmpdclient(ctx, greeting, (0, 23, 5))


GREETING_CHECKS = {"ncmpcpp": check_ncmpcpp_greeting, "cantata": check_cantata_greeting,
                   "mympd": check_mympd_greeting}


def check_status(ctx, answer):
    # libmpdclient src/status.c mpd_status_feed, read by ncmpcpp src/status.cpp
    # Status::update, Cantata mpd-interface/mpdparseutils.cpp MPDParseUtils::parseStatus and
    # myMPD src/mympd_api/status.c mympd_api_status_get: state, the queue's version and
    # length, the volume.
    s = as_dict(answer)
    require(s.get("state") in ("play", "pause", "stop"), f"status state {s.get('state')!r}")
    for key in ("playlist", "playlistlength", "volume"):
        require(key in s, f"status has no {key}")
    require(-1 <= int(s["volume"]) <= 100, f"volume {s['volume']}")
    ctx.status = s


def check_queue_songs(ctx, answer):
    # The queue as songs: each opens with file and has Pos and Id (libmpdclient
    # src/song.c mpd_song_begin; Cantata mpd-interface/mpdparseutils.cpp
    # MPDParseUtils::parseSongs splits at "file: " and parseSong reads Id).
    songs = [dict(b) for b in entities(answer, {"file"})]
    for song in songs:
        require("file" in song and "Pos" in song and "Id" in song, f"queue entry {song} "
                "lacks file, Pos or Id")
    ctx.queue = songs
    if songs:
        ctx.song = songs[0]["file"]
    return songs


def check_ncmpcpp_plchanges(ctx, answer):
    # ncmpcpp src/status.cpp Status::Changes::playlist: the list is cut to status's
    # playlistlength and each song put at its Pos, so from version 0 the songs must be
    # exactly positions 0 .. playlistlength-1.
    songs = check_queue_songs(ctx, answer)
    n = int(ctx.status.get("playlistlength", -1))
    require(len(songs) == n, f"plchanges 0 gave {len(songs)} songs, status says {n}")
    require([int(s["Pos"]) for s in songs] == list(range(n)), "Pos values are not 0..n-1")
    require(n >= 1, "the queue is empty: the test daemon should have tracks")


def check_outputs(ctx, answer):
    # libmpdclient src/output.c mpd_output_begin: an output opens at outputid; ncmpcpp
    # src/screens/outputs.cpp Outputs::fetchList lists name and enabled state; Cantata
    # mpd-interface/mpdparseutils.cpp MPDParseUtils::parseOuputs likewise.
    blocks = entities(answer, {"outputid"})
    require(blocks, "no output listed")
    for b in blocks:
        keys = [k for k, _ in b]
        require(keys[0] == "outputid" and "outputname" in keys and "outputenabled" in keys,
                f"output {b} lacks outputid first, outputname or outputenabled")


def check_ncmpcpp_decoders(ctx, answer):
    # ncmpcpp src/screens/browser.cpp Browser::fetchSupportedExtensions: the suffixes the
    # local browser shows.
    require(any(k == "suffix" for k, _ in pairs(answer)), "decoders lists no suffix")


def check_idle_answer(ctx, answer):
    # libmpdclient src/idle.c mpd_recv_idle: "changed: NAME" lines, then OK.
    for key, value in pairs(answer):
        require(key == "changed" and value in IDLE_SUBSYSTEMS, f"idle answered {key}: {value}")


def check_cantata_stats(ctx, answer):
    # mpd-interface/mpdconnection.cpp MPDServerInfo::detect: all seven counters zero means
    # Mopidy (then the library is read from lsinfo "Local media"); db/mpdlibrarydb.cpp
    # MpdLibraryDb::statsUpdated loads the library only when db_update is above the
    # cached version, 0 when nothing is cached.
    s = as_dict(answer)
    counters = ("artists", "albums", "songs", "uptime", "playtime", "db_playtime", "db_update")
    for key in counters:
        require(key in s, f"stats has no {key}")
    require(any(int(s[k]) for k in counters), "every stats counter is 0: Cantata takes it for Mopidy")
    require(int(s["db_update"]) > 0, "db_update is 0: Cantata never loads the library")


def check_cantata_root_lsinfo(ctx, answer):
    # mpd-interface/mpdconnection.cpp MPDServerInfo::detect: a root lsinfo whose first line
    # is a bare OK, or "Directory info not found for virtual-path '/", is forked-daapd.
    require(answer[0] != "OK", "root lsinfo is a bare OK: Cantata takes it for forked-daapd")
    require("directory info not found for virtual-path '/" not in answer[0].lower(),
            "root lsinfo answers like forked-daapd")
    remember_root_dirs(ctx, answer)


def remember_root_dirs(ctx, answer):
    dirs = [v for k, v in pairs(answer) if k == "directory"]
    if dirs:
        ctx.dir = dirs[0]


def check_cantata_status(ctx, answer):
    # mpd-interface/mpdconnection.cpp MPDConnection::getStatus: whenever playlistlength
    # differs from the number of ids the last playlistinfo gave, the whole queue is fetched
    # again, on every status.
    check_status(ctx, answer)
    if ctx.queue:
        n = int(ctx.status["playlistlength"])
        require(n == len(ctx.queue), f"playlistlength {n} but playlistinfo gave {len(ctx.queue)} songs")


def check_cantata_playlistinfo(ctx, answer):
    songs = check_queue_songs(ctx, answer)
    require(songs, "playlistinfo is empty: the test daemon should have tracks")


def check_sticker_in_commands(ctx, answer):
    # Cantata mpd-interface/mpdconnection.cpp MPDConnection::getStickerSupport and myMPD
    # src/mympd_client/stickerdb.c check_sticker_support: no "command: sticker", no ratings.
    commands = {v for k, v in pairs(answer) if k == "command"}
    require("sticker" in commands, "commands does not list sticker")


def check_cantata_rating(ctx, answer):
    # mpd-interface/mpdconnection.cpp MPDConnection::getRating: "sticker: rating=N" with
    # N 0..10 (above 10 reads as 0), or an error, which is ignored (no such sticker).
    if answer[-1].startswith("ACK "):
        m = ACK.match(answer[-1])
        require(m and m.group(1) == "50", f"sticker get answered {answer[-1]!r}, not 'no such sticker'")
        return
    values = [v for k, v in pairs(answer) if k == "sticker"]
    require(len(values) == 1 and values[0].startswith("rating="), f"sticker get answered {answer}")
    require(0 <= int(values[0][7:]) <= 10, f"rating {values[0]} outside 0..10")


def check_cantata_list_genre(ctx, answer):
    # mpd-interface/mpdconnection.cpp MPDConnection::recursivelyListDir: when `list genre`
    # and then `list artist` hold no line but OK, the server is taken for a UPnP back end
    # and no library is loaded. Cantata sends `list artist` only after an empty genre list.
    if len(answer) >= 2:
        return
    artists = ctx.conns["command"].command("list artist")
    require(artists[-1] == "OK" and len(artists) >= 2,
            f"list genre and list artist are both empty ({artists}): Cantata loads no library")


def check_cantata_folder(ctx, answer):
    # MPDConnection::recursivelyListDir -> MPDParseUtils::parseDirItems: songs open at "file".
    files = [v for k, v in pairs(answer) if k == "file"]
    require(files, f"lsinfo of folder {ctx.dir!r} lists no song")


def check_mympd_tagtypes(ctx, answer):
    # src/mympd_client/features.c features_mpd_tags: with no tag listed, tags are off
    # (no album cache, no browsing by tag); without AlbumArtist, Artist stands in.
    tags = [v for k, v in pairs(answer) if k == "tagtype"]
    require(tags, "tagtypes lists no tag after `tagtypes all`: myMPD turns tags off")
    if "AlbumArtist" not in tags:
        ctx.notes.append("tagtypes lacks AlbumArtist: myMPD groups albums by Artist")


def check_mympd_stats(ctx, answer):
    # src/mympd_client/partitions.c partitions_connect: the album cache is built only when
    # db_update (mympd_client_get_db_mtime) is newer than the cache, 0 when there is none.
    s = as_dict(answer)
    require(int(s.get("db_update", 0)) > 0, "db_update is 0: myMPD never builds its album cache")


def check_mympd_status(ctx, answer):
    # src/mympd_api/status.c mympd_api_status_get: when status names a song other than the
    # one known (none at first), myMPD sends currentsong and keeps that song.
    check_status(ctx, answer)
    if "songid" in ctx.status:
        song = dict(pairs(ctx.conns["partition"].command("currentsong")))
        require(song.get("Id") == ctx.status["songid"],
                f"currentsong {song} is not status's songid {ctx.status['songid']}")


def check_mympd_album_search(ctx, answer):
    # src/mympd_worker/album_cache.c album_cache_create: the songs of the filter
    # expression, each opening at "file".
    for block in entities(answer, {"file"}):
        require(block[0][0] == "file", f"search result {block} does not open with file")


# Checks that also judge an ACK (the others run on OK answers only).
CHECKS_OF_ACKS = {check_cantata_rating}

# Checks that also judge an ACK (the others run on OK answers only).
CHECKS_OF_ACKS = {check_cantata_rating}

# By request as in the transcript ("CONNECTION: request" for one connection only).
CHECKS = {
    "ncmpcpp": {
        "status": check_status,
        'plchanges "0"': check_ncmpcpp_plchanges,
        "outputs": check_outputs,
        "decoders": check_ncmpcpp_decoders,
    },
    "cantata": {
        "stats": check_cantata_stats,
        "lsinfo": check_cantata_root_lsinfo,
        "status": check_cantata_status,
        "playlistinfo": check_cantata_playlistinfo,
        "commands": check_sticker_in_commands,
        "outputs": check_outputs,
        'sticker get song "{song}" rating': check_cantata_rating,
        "list genre": check_cantata_list_genre,
        'lsinfo "{dir}"': check_cantata_folder,
    },
    "mympd": {
        "stickerdb: commands": check_sticker_in_commands,
        "tagtypes": check_mympd_tagtypes,
        "stats": check_mympd_stats,
        "status": check_mympd_status,
        'search "((Album != \'\') AND (AlbumArtist != \'\'))" window 0:10000':
            check_mympd_album_search,
    },
}


# ---- the generic comparison with MPD's answer ----------------------------------------

def compare(client, exchange, ours):
    """Raises Failure where our answer's structure differs from MPD's; returns a note
    when a tolerated ACK was given."""
    theirs, cmd = exchange.answer, exchange.command
    if cmd == "noidle":
        return None
    mpd_ack, our_ack = ACK.match(theirs[-1]), ACK.match(ours[-1])
    if mpd_ack:
        if our_ack is None and (cmd, mpd_ack.group(1)) in CONTENT_ACKS:
            return None
        require(our_ack is not None, f"MPD answered {theirs[-1]!r}, we answered OK")
        require(our_ack.group(1) == mpd_ack.group(1),
                f"MPD answered {theirs[-1]!r}, we answered {ours[-1]!r}")
        return None
    if our_ack:
        why = TOLERATED_ACKS.get((client, cmd))
        require(why is not None, f"MPD answered OK, we answered {ours[-1]!r}")
        return f"{cmd}: {ours[-1]} (tolerated: {why})"
    missing = ({k for k, _ in pairs(theirs)} - {k for k, _ in pairs(ours)}
               - CONTENT_KEYS - OPTIONAL_KEYS.get(cmd, set()))
    require(not missing, f"keys MPD gave and we did not: {sorted(missing)}")
    for key, value in pairs(ours):
        if key in INT_KEYS:
            require(re.fullmatch(r"-?\d+", value) is not None, f"{key}: {value!r} is not a number")
        if key == "duration":
            require(re.fullmatch(r"\d+(\.\d+)?", value) is not None, f"duration: {value!r}")
    return None


def substitute(line, ctx):
    return line.replace("{song}", ctx.song).replace("{dir}", ctx.dir)


def replay(host, port, client, path):
    ctx = Context(client)
    failures = []
    idle_answers = {}  # connection -> the answer its idle gave at once

    def fail(step, message):
        if isinstance(step, Open):
            failures.append(f"{client} [{step.conn}] greeting: {message}")
            return
        failures.append(f"{client} [{step.conn}] > {' / '.join(step.requests)}: {message}\n"
                        f"    (sent by {step.source})")

    try:
        for step in parse_golden(path):
            try:
                if isinstance(step, Open):
                    ctx.conns[step.conn] = Connection(host, port)
                    GREETING_CHECKS[client](ctx, ctx.conns[step.conn].greeting)
                else:
                    run_exchange(ctx, step, idle_answers)
            except Failure as err:
                fail(step, str(err))
                if "closed" in str(err) or "no answer" in str(err) or isinstance(step, Open):
                    break
    finally:
        for conn in ctx.conns.values():
            conn.close()
    return failures, ctx.notes


def run_exchange(ctx, e, idle_answers):
    conn = ctx.conns[e.conn]
    if e.command == "noidle" and e.conn in idle_answers:
        ours = idle_answers.pop(e.conn)  # idle was answered at once: nothing to end
        if ours[-1].startswith("ACK "):
            return  # already failed at the idle
    else:
        for line in e.requests:
            conn.send(substitute(line, ctx))
        if e.command == "idle":
            # MPD answers idle only when something changes; an answer at once is an
            # error or a change already pending: read it now.
            if conn.has_data(0.3):
                idle_answers[e.conn] = conn.read_answer()
                require(not idle_answers[e.conn][-1].startswith("ACK "),
                        f"idle answered {idle_answers[e.conn][-1]!r}; MPD waits")
            return
        ours = conn.read_answer()
    problems = []
    for judge in (lambda: check_idle_answer(ctx, ours) if e.command == "noidle" else None,
                  lambda: compare(ctx.client, e, ours),
                  lambda: client_check(ctx, e, ours)):
        try:
            note = judge()
            if note:
                ctx.notes.append(note)
        except Failure as err:
            problems.append(str(err))
    require(not problems, "; ".join(problems))


def client_check(ctx, e, ours):
    if len(e.requests) != 1:
        return
    checks = CHECKS[ctx.client]
    check = checks.get(f"{e.conn}: {e.requests[0]}", checks.get(e.requests[0]))
    if ours[-1].startswith("ACK ") and check not in CHECKS_OF_ACKS:
        return
    if check:
        check(ctx, ours)
    elif e.command == "playlistinfo":
        check_queue_songs(ctx, ours)
    elif e.requests[0] == "lsinfo":
        remember_root_dirs(ctx, ours)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--golden", default=str(GOLDEN))
    parser.add_argument("--client", action="append", help="ncmpcpp, cantata or mympd (default: all)")
    args = parser.parse_args()
    clients = args.client or ["ncmpcpp", "cantata", "mympd"]
    all_failures = []
    for client in clients:
        failures, notes = replay(args.host, args.port, client, pathlib.Path(args.golden) / f"{client}.txt")
        for note in notes:
            print(f"note: {client}: {note}")
        for failure in failures:
            print(f"FAIL: {failure}")
        print(f"{client}: {'ok' if not failures else f'{len(failures)} failure(s)'}")
        all_failures += failures
    if all_failures:
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

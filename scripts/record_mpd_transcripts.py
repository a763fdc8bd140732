#!/usr/bin/env python3
"""Records what a real MPD answers to the connect bursts of ncmpcpp, Cantata and myMPD,
as golden transcripts for tests/mpd/golden_replay_test.py.

    python3 scripts/record_mpd_transcripts.py [--mpd /usr/bin/mpd] [--out tests/mpd/golden]

Starts `mpd --no-daemon` (Debian's 0.23; `apt-get install mpd` to record, the tests never
need it) on a free loopback port with a temporary configuration: a music folder of two
short tagged WAVs laid out as tuneloopd shows its tracks (other/track-1.wav,
other/track-2.wav), its own database, state and sticker files, and a null audio output.
Before recording, both tracks are queued and nothing is played, as in tuneloopd without
an audio device. Then each client's burst is sent line by line and
tests/mpd/golden/<client>.txt is written.

Transcript format (one file per client):
  # ...           a comment; above each request, where in the client's source it is sent
  @ NAME          the lines below belong to connection NAME; a new name opens a connection,
                  and its greeting follows as "< OK MPD x.y.z"
  > LINE          a request line, as the client sends it; consecutive "> " lines are sent
                  one after another before the answer is read (command lists)
  anything else   the answer, up to and including its "OK" or "ACK ..." line
`idle` answers nothing until `noidle` is sent: its answer is written under "> noidle".
In a request, {song} stands for the first `file:` of the latest playlistinfo answer and
{dir} for the first `directory:` of the latest root lsinfo answer; the line actually sent
follows as "# sent: ...".
Standard library only.
"""

import argparse
import math
import os
import pathlib
import socket
import struct
import subprocess
import sys
import tempfile
import time

# myMPD's default tag list (src/compile_time.h.in MYMPD_MPD_TAG_LIST), as it enables it
# after checking the server's tagtypes (src/mympd_client/tags.c check_tags, which keeps
# the list's order and its repeated Name).
MYMPD_TAGS = ("Album AlbumArtist Artist Disc Genre Name Title Track Name Date OriginalDate "
              "MUSICBRAINZ_ALBUMID MUSICBRAINZ_ALBUMARTISTID MUSICBRAINZ_ARTISTID "
              "MUSICBRAINZ_RELEASETRACKID MUSICBRAINZ_TRACKID")
# The album cache's tags: MYMPD_TAGS less the per-song ones (src/mympd_client/features.c
# set_album_tags), then Disc added back (src/mympd_worker/album_cache.c album_cache_create).
MYMPD_ALBUM_TAGS = ("Album AlbumArtist Artist Genre Date OriginalDate MUSICBRAINZ_ALBUMID "
                    "MUSICBRAINZ_ALBUMARTISTID MUSICBRAINZ_ARTISTID Disc")
# libmpdclient's mpd_send_idle_mask names the bits in its own order (src/idle.c idle_names).
MYMPD_IDLE_MASK = ("idle database stored_playlist playlist player mixer output options update "
                   "subscription message partition neighbor mount")

# Each step: (connection, request lines, where the client sends them[, condition]).
# "if_previous_empty": sent only when the previous answer held nothing but its OK;
# "if_previous_songid": sent only when the previous answer (a status) has a songid.
# ncmpcpp talks through libmpdclient, which quotes every argument (src/quote.c quote).
NCMPCPP = [
    ("main", ["status"], "src/status.cpp initialize_status -> Status::update -> "
     "Connection::getStatus (src/mpdpp.cpp, mpd_run_status)"),
    ("main", ['plchanges "0"'], "src/status.cpp Status::Changes::playlist -> "
     "Connection::GetPlaylistChanges (mpd_send_queue_changes_meta)"),
    ("main", ["outputs"], "src/status.cpp Status::Changes::outputs -> Outputs::fetchList "
     "(src/screens/outputs.cpp)"),
    ("main", ["decoders"], "src/status.cpp initialize_status -> "
     "Browser::fetchSupportedExtensions (src/screens/browser.cpp)"),
    ("main", ["outputs"], "src/status.cpp initialize_status -> Outputs::fetchList"),
    ("main", ["idle"], "src/status.cpp Status::trace -> Connection::idle (src/mpdpp.cpp)"),
    ("main", ["noidle"], "src/mpdpp.cpp Connection::noidle, before the next command"),
]

# Cantata writes its own protocol lines (mpd-interface/mpdconnection.cpp): names quoted by
# MPDConnection::encodeName, numbers bare. It keeps two connections: one for commands and
# one that only idles.
CANTATA = [
    ("command", [], "MPDConnection::connectToMPD(sock): greeting, then `password` if one is set"),
    ("idle", ["channels"], "MPDConnection::connectToMPD(idleSocket, true) -> "
     "setupRemoteDynamic -> checkRemoteDynamicSupport"),
    ("idle", ["idle"], "MPDConnection::connectToMPD(idleSocket, true)"),
    ("command", ["stats"], "MPDConnection::setDetails -> MPDServerInfo::detect"),
    ("command", ["lsinfo"], "MPDServerInfo::detect (lsinfoCommand)"),
    ("command", ["listpartitions"], "MPDConnection::setDetails -> listPartitions"),
    ("command", ["status"], "MPDConnection::setDetails -> getStatus"),
    ("command", ["playlistinfo"], "MPDConnection::getStatus -> playListInfo (the queue length "
     "differs from the ids it knows)"),
    ("command", ["status"], "MPDConnection::playListInfo"),
    ("command", ["stats"], "MPDConnection::setDetails -> getStats"),
    ("command", ["urlhandlers"], "MPDConnection::setDetails -> getUrlHandlers"),
    ("command", ["tagtypes"], "MPDConnection::setDetails -> getTagTypes"),
    ("command", ["commands"], "MPDConnection::setDetails -> getStickerSupport"),
    ("command", ["playlistinfo"], "MPDConnection::setDetails -> playListInfo"),
    ("command", ["status"], "MPDConnection::playListInfo"),
    ("command", ["outputs"], "MPDConnection::setDetails -> outputs"),
    ("command", ["currentsong"], "gui/mainwindow.cpp MainWindow::updateStatus (first status) -> "
     "MPDConnection::currentSong"),
    ("command", ["playlistinfo"], "gui/mainwindow.cpp MainWindow::mpdConnectionStateChanged -> "
     "MPDConnection::playListInfo"),
    ("command", ["status"], "MPDConnection::playListInfo"),
    ("command", ["outputs"], "gui/mainwindow.cpp MainWindow::mpdConnectionStateChanged -> "
     "MPDConnection::outputs"),
    ("command", ["listplaylists"], "models/playlistsmodel.cpp "
     "PlaylistsModel::mpdConnectionStateChanged -> MPDConnection::listPlaylists"),
    ("command", ['sticker get song "{song}" rating'], "models/playqueuemodel.cpp "
     "PlayQueueModel::data (Role_SongWithRating) -> MPDConnection::getRating"),
    ("command", ["list genre"], "db/mpdlibrarydb.cpp MpdLibraryDb::statsUpdated -> "
     "MPDConnection::loadLibrary -> recursivelyListDir"),
    ("command", ["list artist"], "MPDConnection::recursivelyListDir (sent only when the "
     "genre list is empty: tests/mpd/golden_replay_test.py sends it then)", "if_previous_empty"),
    ("command", ["lsinfo"], "MPDConnection::recursivelyListDir (top level)"),
    ("command", ['lsinfo "{dir}"'], "MPDConnection::recursivelyListDir (each folder)"),
    ("idle", ["noidle"], "the idle connection's answer, read when something changes"),
]

# myMPD (through libmpdclient) opens a sticker connection, the default partition's
# connection, and, two seconds later, a worker connection that builds its album cache.
MYMPD = [
    ("stickerdb", ["commands"], "src/mympd_client/stickerdb.c stickerdb_connect -> "
     "check_sticker_support (after the version check)"),
    ("stickerdb", ["idle sticker"], "src/mympd_client/stickerdb.c stickerdb_enter_idle"),
    ("partition", ["command_list_begin", 'binarylimit "524288"', "command_list_end"],
     "src/mympd_client/connection.c mympd_client_set_protocol_options"),
    ("partition", ["commands"], "src/mympd_client/partitions.c partitions_connect -> "
     "mympd_client_mpd_features -> features_commands (src/mympd_client/features.c)"),
    ("partition", ['tagtypes "all"'], "src/mympd_client/features.c features_mpd_tags -> "
     "enable_all_mpd_tags (src/mympd_client/tags.c)"),
    ("partition", ["tagtypes"], "src/mympd_client/features.c features_mpd_tags"),
    ("partition", ["command_list_begin", 'tagtypes "clear"', "tagtypes enable " + MYMPD_TAGS,
                   "command_list_end"],
     "src/mympd_client/features.c features_tags -> enable_mpd_tags (src/mympd_client/tags.c)"),
    ("partition", ["stats"], "src/mympd_client/partitions.c partitions_connect -> "
     "mympd_client_get_db_mtime (src/mympd_client/database.c)"),
    ("partition", ["listpartitions"], "src/mympd_client/partitions.c partitions_populate"),
    ("partition", ["status"], "src/mympd_api/status.c mympd_api_status_get"),
    ("partition", ["currentsong"], "src/mympd_api/status.c mympd_api_status_get (sent only when "
     "status names a song: tests/mpd/golden_replay_test.py sends it then)", "if_previous_songid"),
    ("partition", [MYMPD_IDLE_MASK], "src/mympd_client/partitions.c partitions_connect "
     "(mpd_send_idle_mask)"),
    ("worker", ["command_list_begin", 'binarylimit "524288"', "command_list_end"],
     "src/mympd_worker/mympd_worker.c mympd_worker_run -> mympd_client_connect -> "
     "mympd_client_set_protocol_options"),
    ("worker", ["command_list_begin", 'tagtypes "clear"', "tagtypes enable " + MYMPD_TAGS,
                "command_list_end"],
     "src/mympd_client/connection.c mympd_client_set_connection_options -> enable_mpd_tags"),
    ("worker", ["stats"], "src/mympd_worker/album_cache.c mympd_worker_album_cache_create "
     "(mympd_client_get_db_mtime)"),
    ("worker", ["command_list_begin", 'tagtypes "clear"', "tagtypes enable " + MYMPD_ALBUM_TAGS,
                "command_list_end"],
     "src/mympd_worker/album_cache.c album_cache_create -> enable_mpd_tags"),
    ("worker", ['search "((Album != \'\') AND (AlbumArtist != \'\'))" window 0:10000'],
     "src/mympd_worker/album_cache.c album_cache_create (mpd_search_db_songs, "
     "mpd_search_add_expression, mympd_client_add_search_window)"),
    ("partition", ["noidle"], "the partition connection's answer, read when something changes"),
    ("stickerdb", ["noidle"], "src/mympd_client/stickerdb.c stickerdb_exit_idle"),
]

BURSTS = {
    "ncmpcpp": ("ncmpcpp (github.com/ncmpcpp/ncmpcpp) through libmpdclient "
                "(github.com/MusicPlayerDaemon/libmpdclient)", NCMPCPP),
    "cantata": ("Cantata (github.com/CDrummond/cantata), paths under its mpd-interface/ "
                "unless named", CANTATA),
    "mympd": ("myMPD (github.com/jcorporation/myMPD) through libmpdclient", MYMPD),
}

FILE_TIME = 1704067200  # 2024-01-01T00:00:00Z
TRACKS = [("other/track-1.wav", "Track 1", 1, 440.0), ("other/track-2.wav", "Track 2", 2, 660.0)]


def id3_frame(frame_id, text):
    body = b"\x03" + text.encode("utf-8")  # UTF-8
    return frame_id.encode() + syncsafe(len(body)) + b"\x00\x00" + body


def syncsafe(n):
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def write_wav(path, title, track, hz, seconds=1.0, rate=16000):
    """A mono 16-bit sine with an ID3v2.4 tag in an "id3 " chunk (no Genre, as
    tuneloopd's tracks added without generation tags have none)."""
    n = int(seconds * rate)
    samples = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * hz * i / rate)))
                       for i in range(n))
    frames = b"".join([id3_frame("TIT2", title), id3_frame("TPE1", "tuneloop"),
                       id3_frame("TPE2", "tuneloop"), id3_frame("TALB", "Other tracks"),
                       id3_frame("TRCK", str(track)), id3_frame("TDRC", "2024")])
    id3 = b"ID3\x04\x00\x00" + syncsafe(len(frames)) + frames
    if len(id3) % 2:
        id3 += b"\x00"
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt +
              b"data" + struct.pack("<I", len(samples)) + samples +
              b"id3 " + struct.pack("<I", len(id3)) + id3)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.greeting = self.read_line()

    def read_line(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def read_answer(self):
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line == "OK" or line.startswith("ACK "):
                return lines

    def command(self, line):
        self.send(line)
        return self.read_answer()

    def close(self):
        self.sock.close()


def start_mpd(mpd, tmp):
    music = tmp / "music"
    for uri, title, track, hz in TRACKS:
        write_wav(music / uri, title, track, hz)
    for path in [music / uri for uri, *_ in TRACKS] + [music / "other", music]:
        os.utime(path, (FILE_TIME, FILE_TIME))  # a fixed Last-Modified
    (tmp / "playlists").mkdir()
    port = free_port()
    conf = tmp / "mpd.conf"
    conf.write_text(f"""music_directory "{music}"
playlist_directory "{tmp / 'playlists'}"
db_file "{tmp / 'database'}"
state_file "{tmp / 'state'}"
sticker_file "{tmp / 'sticker.sql'}"
log_file "{tmp / 'mpd.log'}"
bind_to_address "127.0.0.1"
port "{port}"
zeroconf_enabled "no"
auto_update "no"
audio_output {{
  type "null"
  name "null"
  mixer_type "software"
}}
""")
    with open(tmp / "mpd.stderr", "w") as err:
        proc = subprocess.Popen([mpd, "--no-daemon", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=err)
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            log = (tmp / "mpd.log").read_text() if (tmp / "mpd.log").exists() else ""
            raise RuntimeError("mpd exited: " + (tmp / "mpd.stderr").read_text() + log)
        try:
            return proc, port, Connection(port)
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError("mpd did not listen within 30 s")
            time.sleep(0.1)


def prepare(conn):
    """Waits for the database and queues both tracks (nothing played yet, as in tuneloopd
    without an audio device: status names no current song)."""
    deadline = time.time() + 30
    asked = False
    while True:
        stats = dict(line.split(": ", 1) for line in conn.command("stats")[:-1])
        if int(stats.get("songs", 0)) == len(TRACKS):
            break
        if not asked:
            conn.command("update")
            asked = True
        if time.time() > deadline:
            raise RuntimeError("mpd did not scan the music folder: " + repr(stats))
        time.sleep(0.2)
    for uri, *_ in TRACKS:
        answer = conn.command(f'add "{uri}"')
        if answer != ["OK"]:
            raise RuntimeError(f"add {uri}: {answer}")


def substitute(line, state):
    if "{song}" in line:
        line = line.replace("{song}", state["song"])
    if "{dir}" in line:
        line = line.replace("{dir}", state["dir"])
    return line


def remember(request, answer, state):
    first = request.split(" ", 1)[0]
    if first == "playlistinfo":
        files = [l[6:] for l in answer if l.startswith("file: ")]
        if files:
            state["song"] = files[0]
    if request == "lsinfo":
        dirs = [l[11:] for l in answer if l.startswith("directory: ")]
        if dirs:
            state["dir"] = dirs[0]


def record(port, client, description, steps, version):
    out = [f"# Connect burst of {description},",
           f"# as answered by {version}.",
           "# Written by scripts/record_mpd_transcripts.py; format in its docstring and in docs/mpd.md.",
           "# Replayed against tuneloopd by tests/mpd/golden_replay_test.py."]
    conns, state, current = {}, {"song": "", "dir": ""}, None
    previous = []
    for name, lines, source, *condition in steps:
        if condition == ["if_previous_empty"] and previous != ["OK"]:
            continue
        if condition == ["if_previous_songid"] and not any(l.startswith("songid: ") for l in previous):
            continue
        if name not in conns:
            conns[name] = Connection(port)
            out += [f"# {source}" if not lines else f"# open {name}", f"@ {name}",
                    f"< {conns[name].greeting}"]
            current = name
            if not lines:
                continue
        out.append(f"# {source}")
        if name != current:
            out.append(f"@ {name}")
            current = name
        conn = conns[name]
        sent = [substitute(l, state) for l in lines]
        out += [f"> {l}" for l in lines]
        if sent != lines:
            out += [f"# sent: {l}" for l in sent]
        for l in sent:
            conn.send(l)
        if sent[0].split(" ", 1)[0] == "idle":
            continue  # answered under the noidle that ends it
        answer = conn.read_answer()
        previous = answer
        remember(sent[0], answer, state)
        out += answer
    for conn in conns.values():
        conn.close()
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mpd", default="/usr/bin/mpd")
    root = pathlib.Path(__file__).resolve().parent.parent
    parser.add_argument("--out", default=str(root / "tests" / "mpd" / "golden"))
    args = parser.parse_args()
    if not os.access(args.mpd, os.X_OK):
        print(f"{args.mpd} not found: install MPD to record (Debian: apt-get install mpd)",
              file=sys.stderr)
        return 2
    version = subprocess.run([args.mpd, "--version"], capture_output=True, text=True).stdout
    version = version.splitlines()[0].strip() if version else "mpd"
    version = version.replace("Music Player Daemon", "MPD")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mpd-golden-") as tmp:
        proc, port, setup = start_mpd(args.mpd, pathlib.Path(tmp))
        try:
            prepare(setup)
            setup.close()
            for client, (description, steps) in BURSTS.items():
                (out / f"{client}.txt").write_text(record(port, client, description, steps, version))
                print(f"wrote {out / (client + '.txt')}")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""python3-mpd (python-mpd2), an MPD client written apart from libmpdclient, against
tuneloopd's MPD door: status, stats, command lists, stickers, errors, idle.

    python3 tests/mpd/mpd_client_test.py HOST PORT URI

URI names a track the daemon has (e.g. other/track-1.wav) and no audio device is open.
Exits 0 and prints "ok" when every check holds; raises (exit 1) at the first that fails.
Run by tests/mpd/mpd_daemon_test.cpp, which starts the daemon.
"""

import sys
import threading
import time

from mpd import CommandError, MPDClient


def connect(host, port):
    client = MPDClient()
    client.timeout = 10
    client.idletimeout = 10
    client.connect(host, port)
    return client


def expect_ack(call, fragment):
    try:
        call()
    except CommandError as e:
        assert fragment in str(e), "ACK %r does not mention %r" % (str(e), fragment)
        return
    raise AssertionError("expected an ACK mentioning %r" % fragment)


def main():
    host, port, uri = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    c = connect(host, port)
    assert c.mpd_version.startswith("0.23."), c.mpd_version

    status = c.status()
    assert status["state"] == "stop", status
    assert "volume" in status and "playlist" in status, status
    stats = c.stats()
    assert int(stats["songs"]) >= 1 and int(stats["uptime"]) >= 1, stats
    assert int(stats["artists"]) >= 1 and int(stats["albums"]) >= 1, stats

    # A command list answers each command in order.
    c.command_list_ok_begin()
    c.ping()
    c.status()
    c.currentsong()
    results = c.command_list_end()
    assert len(results) == 3, results

    # The root lists folders, never a bare OK.
    assert any("directory" in entry for entry in c.lsinfo()), c.lsinfo()
    assert "sticker" in c.commands()

    # Stickers are ratings: 7 is 3.5 stars, read back as 7; like follows the stars.
    c.sticker_set("song", uri, "rating", "7")
    assert c.sticker_get("song", uri, "rating") == "7"
    assert c.sticker_list("song", uri)["like"] == "1", c.sticker_list("song", uri)
    found = c.sticker_find("song", "", "rating")
    assert any(entry.get("file") == uri for entry in found), found
    c.sticker_delete("song", uri, "rating")
    expect_ack(lambda: c.sticker_get("song", uri, "rating"), "no such sticker")
    expect_ack(lambda: c.sticker_set("song", uri, "rating", "eleven"), "rating must be")

    # Errors leave the connection usable.
    expect_ack(lambda: c.playlistinfo(999), "Bad song index")
    expect_ack(lambda: c.sticker_get("song", "iteration-0/track-999999.wav", "rating"), "No such song")
    expect_ack(lambda: c.play(), "no audio device")
    c.ping()

    # idle: another client's volume change wakes this one.
    # (python-mpd2 3 has no send_idle: the blocking idle runs in a thread.)
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("changed", c.idle("mixer")))
    waiter.start()
    time.sleep(0.3)
    other = connect(host, port)
    other.setvol(30)
    waiter.join(10)
    assert not waiter.is_alive(), "idle mixer never woke"
    assert result["changed"] == ["mixer"], result
    assert c.status()["volume"] == "30"
    other.close()
    other.disconnect()

    c.close()
    c.disconnect()
    print("ok")


if __name__ == "__main__":
    main()

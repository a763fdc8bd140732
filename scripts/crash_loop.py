#!/usr/bin/env python3
"""Crash injection: kills a real tuneloopd with SIGKILL at random points and checks what survived.

    python3 scripts/crash_loop.py                       # 1000 kills on build/daemon/tuneloopd
    python3 scripts/crash_loop.py --kills 50            # the test suite's short run
    python3 scripts/crash_loop.py --daemon PATH --keep  # another binary; keep the folder on failure

Each life of the daemon starts on the same temporary data folder and config (the shipped
weights with a tiny loop: a few sampler and training steps, four one-second tracks an
iteration), is driven over its Unix socket (JSON-RPC 2.0, one object a line) with ratings,
cleared ratings, listen reports, songs.add and tracks.add of small WAVs written here, and
forced iterations, and is killed after a random delay: while it starts or resumes a job,
between requests, in the middle of one, during training, generation or the commit of an
iteration. After every kill, before the restart, a read-only connection checks:

  - PRAGMA integrity_check and PRAGMA foreign_key_check are clean;
  - every rating, listen, song, track and iteration the daemon acknowledged (a reply came
    back) is in the database as acknowledged;
  - no row points at a missing or partial file: tracks' and songs' audio is a readable WAV
    whose frames are all there, ready iterations' adapters and unfinished jobs' checkpoints
    are whole safetensors files, reward models and track embeddings are whole JSON;
  - iterations and their jobs agree (a done job has a ready iteration, a live iteration an
    unfinished job) and no job has failed.

A job found unfinished after a kill must finish in a later life; after the last kill the
daemon runs undisturbed until every job is done, stops on SIGTERM, and is checked once more.
The run fails if no iteration completed. Exit status 0 when every check passed, 1 otherwise
(each failure names the kill, the delay, what the daemon was doing and what was wrong).
The seed fixes the workload's choices and the delays; where a kill lands also depends on
timing. Standard library only.
"""

import argparse
import array
import json
import math
import os
import pathlib
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave

ROOT = pathlib.Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 30.0
REPLY_TIMEOUT_S = 30.0
FINAL_JOB_TIMEOUT_S = 180.0
UNFINISHED = ("queued", "running")
TRACKS_PER_ITERATION = 4
LIVE_ITERATION = ("pending", "training", "generating")

# A loop small enough that an iteration takes about a second on one core, so kills land in
# every phase of it; the scheduler's own trigger stays on (an iteration after 100 new ratings).
CONFIG = """\
paths:
  data_dir: {data}
  socket: {socket}
  weights_dir: {weights}
daemon:
  log_level: info
http:
  enabled: false
mpd:
  port: 0
audio:
  output: none
  checkpoint_seconds: 0.5
model: {{steps: 8, threads: 1, device: cpu}}
generation: {{seconds: 1.0, tracks_per_iteration: {tracks}, candidates: 1, preview_steps: 1}}
training: {{steps: 40, batch_size: 2, rank: 2, alpha: 2, threads: 1, checkpoint_every: 5, calibration_clips: 0}}
schedule: {{min_feedback: 1, after_new_ratings: 100}}
dataset: {{min_ratings: 2}}
"""


class Lost(Exception):
    """The connection ended before a whole reply line came back: nothing was acknowledged."""


class Rpc:
    """One JSON-RPC 2.0 connection over the daemon's Unix socket, one request at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.sock.connect(str(path))
        self.buf = b""
        self.next_id = 1

    def close(self):
        self.sock.close()

    def call(self, method, params=None):
        """Returns ("result", value) or ("error", error object). Raises Lost, or
        TimeoutError when a live daemon does not answer."""
        rid = self.next_id
        self.next_id += 1
        line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        try:
            self.sock.sendall(line.encode() + b"\n")
            while True:
                while b"\n" not in self.buf:
                    chunk = self.sock.recv(1 << 16)
                    if not chunk:
                        raise Lost(method)
                    self.buf += chunk
                reply, self.buf = self.buf.split(b"\n", 1)
                msg = json.loads(reply)
                if msg.get("id") != rid:
                    continue  # a notification
                if "error" in msg:
                    return "error", msg["error"]
                return "result", msg.get("result")
        except socket.timeout:
            raise TimeoutError(f"no reply to {method} in {REPLY_TIMEOUT_S:.0f} s")
        except OSError as e:
            raise Lost(f"{method}: {e}")


def write_wav(path, seconds, hz, rng):
    """A 16-bit mono 16 kHz tone with a little noise, so each file's content is its own."""
    rate = 16000
    n = int(seconds * rate)
    samples = array.array("h", (int(9000 * math.sin(2 * math.pi * hz * i / rate) + rng.randint(-300, 300))
                                for i in range(n)))
    tmp = str(path) + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    os.replace(tmp, path)
    return path


def check_wav(path):
    """None when path is a readable WAV with every frame its header promises, else why not."""
    try:
        with wave.open(str(path), "rb") as w:
            frames, width, channels = w.getnframes(), w.getsampwidth(), w.getnchannels()
            if frames <= 0:
                return "has no audio frames"
            data = w.readframes(frames)
            if len(data) != frames * width * channels:
                return f"is partial: {len(data)} of {frames * width * channels} bytes of audio"
    except FileNotFoundError:
        return "is missing"
    except (wave.Error, EOFError, OSError) as e:
        return f"is not a readable WAV ({e or type(e).__name__})"
    return None


def check_safetensors(path):
    """None when path is a whole safetensors file (its size is what its header says)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return "is shorter than a safetensors header"
            n = struct.unpack("<Q", head)[0]
            size = os.fstat(f.fileno()).st_size
            if n > size - 8:
                return f"is partial: header of {n} bytes in a file of {size}"
            header = json.loads(f.read(n))
        end = max([t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"] or [0])
        if size != 8 + n + end:
            return f"is partial: {size} bytes where its header needs {8 + n + end}"
    except FileNotFoundError:
        return "is missing"
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        return f"is not a readable safetensors file ({e})"
    return None


def check_json(path):
    try:
        with open(path, "rb") as f:
            json.loads(f.read())
    except FileNotFoundError:
        return "is missing"
    except (OSError, ValueError) as e:
        return f"is not whole JSON ({e})"
    return None


class Daemon:
    """One life of tuneloopd: started, optionally killed by a timer, waited for."""

    def __init__(self, binary, config, log):
        self.binary, self.config, self.log = binary, config, log
        self.proc = None
        self.killed = threading.Event()
        self.timer = None

    def start(self, kill_after=None):
        self.killed.clear()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.started_at = time.monotonic()
        if kill_after is not None:
            self.timer = threading.Timer(kill_after, self.kill)
            self.timer.start()

    def kill(self):
        self.killed.set()
        if self.proc.poll() is None:  # not reaped yet, so the pid is still ours
            self.proc.send_signal(signal.SIGKILL)

    def wait_killed(self):
        if self.timer:
            self.timer.join()
            self.timer = None
        return self.proc.wait()

    def alive(self):
        return self.proc.poll() is None


class Ledger:
    """What the daemon acknowledged, and what the checks have seen."""

    def __init__(self):
        self.ratings = {}      # rating_id -> (track_id, stars or None, life)
        self.plays = {}        # play_id -> (track_id, seconds_heard, reason, life)
        self.songs = {}        # song_id -> (path, life)
        self.tracks = {}       # track_id -> (path, life), from tracks.add
        self.jobs = {}         # job_id -> (iteration_id, life), from iterate
        self.interrupted = {}  # job_id -> kills it was found unfinished after
        self.verified_files = {}  # path -> (size, mtime_ns, inode) already found whole
        self.file_checks = 0
        self.file_verifications = 0
        self.row_checks = 0
        self.db_checks = 0
        self.in_flight = 0            # kills that came while a rating or listen was unanswered
        self.in_flight_committed = 0  # of those, the ones committed without a reply


def verify(db_path, ledger, where):
    """Checks the database and the files its rows name; returns (failures, facts)."""
    failures, facts = [], {"unfinished": [], "tracks": [], "songs": []}
    if not db_path.exists():
        if ledger.ratings or ledger.plays or ledger.songs or ledger.tracks or ledger.jobs:
            failures.append(f"{where}: the database is gone but replies were acknowledged")
        return failures, facts
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return [f"{where}: cannot open the database read-only: {e}"], facts
    try:
        ledger.db_checks += 1
        rows = con.execute("PRAGMA integrity_check").fetchall()
        if rows != [("ok",)]:
            failures.append(f"{where}: integrity_check: {rows[:10]}")
        rows = con.execute("PRAGMA foreign_key_check").fetchall()
        if rows:
            failures.append(f"{where}: foreign_key_check: {rows[:10]}")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "ratings" not in tables or "jobs" not in tables:
            if ledger.ratings or ledger.plays or ledger.jobs:
                failures.append(f"{where}: the schema is missing but replies were acknowledged")
            return failures, facts

        ratings = {r[0]: (r[1], r[2]) for r in con.execute("SELECT id, track_id, stars FROM ratings")}
        for rid, (tid, stars, life) in ledger.ratings.items():
            ledger.row_checks += 1
            got = ratings.get(rid)
            if got is None:
                failures.append(f"{where}: rating {rid} (track {tid}, {stars} stars), acknowledged in "
                                f"life {life}, is missing")
            elif got != (tid, stars):
                failures.append(f"{where}: rating {rid} acknowledged as track {tid}, {stars} stars, "
                                f"is track {got[0]}, {got[1]} stars")
        plays = {r[0]: r[1:] for r in con.execute(
            "SELECT id, track_id, seconds_heard, end_reason FROM plays")}
        for pid, (tid, heard, reason, life) in ledger.plays.items():
            ledger.row_checks += 1
            got = plays.get(pid)
            if got is None:
                failures.append(f"{where}: listen {pid} (track {tid}, {heard:.3f} s, {reason}), "
                                f"acknowledged in life {life}, is missing")
            elif got[0] != tid or abs(got[1] - heard) > 1e-6 or got[2] != reason:
                failures.append(f"{where}: listen {pid} acknowledged as {(tid, heard, reason)} is {got}")
        songs = {r[0]: r[1] for r in con.execute("SELECT id, path FROM songs")}
        for sid, (path, life) in ledger.songs.items():
            ledger.row_checks += 1
            if songs.get(sid) != path:
                failures.append(f"{where}: song {sid} ({path}), acknowledged in life {life}, is "
                                f"{'missing' if sid not in songs else 'at ' + songs[sid]}")
        tracks = {r[0]: r[1] for r in con.execute("SELECT id, path FROM tracks")}
        for tid, (path, life) in ledger.tracks.items():
            ledger.row_checks += 1
            if tracks.get(tid) != path:
                failures.append(f"{where}: track {tid} ({path}), acknowledged in life {life}, is "
                                f"{'missing' if tid not in tracks else 'at ' + tracks[tid]}")
        iterations = {r[0]: r[1:] for r in con.execute(
            "SELECT id, number, status, adapter_path, metrics_json FROM iterations")}
        jobs = {r[0]: r[1:] for r in con.execute(
            "SELECT id, kind, iteration_id, state, progress, message, error, checkpoint_path FROM jobs")}
        for jid, (iid, life) in ledger.jobs.items():
            ledger.row_checks += 1
            if jid not in jobs or iid not in iterations:
                failures.append(f"{where}: job {jid} / iteration {iid}, acknowledged by iterate in "
                                f"life {life}, is missing")

        # Iterations and their jobs agree; no job failed.
        for jid, (kind, iid, state, progress, message, error, checkpoint) in sorted(jobs.items()):
            it = iterations.get(iid)
            if kind != "iteration" or it is None:
                continue
            number, status = it[0], it[1]
            if state in ("failed", "cancelled"):
                failures.append(f"{where}: job {jid} (iteration {number}) {state}: {error}")
            elif state == "done" and status != "ready":
                failures.append(f"{where}: job {jid} is done but iteration {number} is {status}")
            elif state in UNFINISHED:
                if status not in LIVE_ITERATION:
                    failures.append(f"{where}: job {jid} is {state} but iteration {number} is {status}")
                facts["unfinished"].append((jid, number, progress, message))
                if checkpoint and os.path.exists(checkpoint):
                    check_file(ledger, failures, where, f"job {jid}'s checkpoint", checkpoint,
                               check_safetensors)
            if status in LIVE_ITERATION and state not in UNFINISHED:
                failures.append(f"{where}: iteration {number} is {status} but its job {jid} is {state}")

        # No row points at a missing or partial file.
        for tid, path in tracks.items():
            check_file(ledger, failures, where, f"track {tid}", path, check_wav)
            side = path + ".embedding.json"
            if os.path.exists(side):
                check_file(ledger, failures, where, f"track {tid}'s embedding", side, check_json)
        for sid, path in songs.items():
            check_file(ledger, failures, where, f"song {sid}", path, check_wav)
        for iid, (number, status, adapter, metrics) in iterations.items():
            if status != "ready":
                continue
            if adapter:
                check_file(ledger, failures, where, f"iteration {number}'s adapter", adapter,
                           check_safetensors)
            try:
                reward = json.loads(metrics or "{}").get("reward_model", "")
            except ValueError:
                failures.append(f"{where}: iteration {number}'s metrics are not JSON")
                reward = ""
            if reward:
                check_file(ledger, failures, where, f"iteration {number}'s reward model", reward,
                           check_json)
        # An iteration's tracks commit with its "ready" in one transaction: all or none.
        per_iteration = dict(con.execute(
            "SELECT iteration_id, COUNT(*) FROM tracks WHERE iteration_id IS NOT NULL GROUP BY iteration_id"))
        for iid, (number, status, *_) in iterations.items():
            count = per_iteration.get(iid, 0)
            expected = TRACKS_PER_ITERATION if status == "ready" else 0
            if count != expected:
                failures.append(f"{where}: iteration {number} is {status} with {count} tracks "
                                f"(expected {expected})")
        if "study_items" in tables:
            copies = con.execute("SELECT id, blinded_path FROM study_items WHERE blinded_path <> ''")
            for item, path in copies:
                check_file(ledger, failures, where, f"study item {item}", path, check_wav)
        facts["tracks"] = sorted(tracks)
        facts["songs"] = sorted(songs)
        facts["ratings"], facts["plays"] = ratings, plays
        facts["ready"] = sorted(number for number, status, *_ in iterations.values() if status == "ready")
        facts["seconds"] = [json.loads(m or "{}").get("seconds", 0.0) for _, (n, status, _a, m)
                            in sorted(iterations.items()) if status == "ready"]
        facts["jobs"] = {jid: j[2] for jid, j in jobs.items()}
    except sqlite3.Error as e:
        failures.append(f"{where}: reading the database: {e}")
    finally:
        con.close()
    return failures, facts


def check_file(ledger, failures, where, what, path, checker):
    ledger.file_checks += 1
    try:
        st = os.stat(path)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    except FileNotFoundError:
        failures.append(f"{where}: {what} points at {path}, which is missing")
        return
    if ledger.verified_files.get(path) == stamp:
        return
    ledger.file_verifications += 1
    why = checker(path)
    if why:
        failures.append(f"{where}: {what} points at {path}, which {why}")
    else:
        ledger.verified_files[path] = stamp


class Workload:
    """The scripted client: a random mix of the feedback and library methods."""

    def __init__(self, rng, inbox, ledger):
        self.rng, self.inbox, self.ledger = rng, inbox, ledger
        self.track_ids = []
        self.song_files = []
        self.files = 0
        self.unexpected = []

    def new_wav(self, kind):
        self.files += 1
        path = self.inbox / f"{kind}-{self.files}.wav"
        return str(write_wav(path, self.rng.uniform(0.5, 1.0), self.rng.uniform(110, 1760), self.rng))

    def next_call(self):
        """(method, params, what to record on a reply)."""
        rng = self.rng
        r = rng.random()
        # Fewer tracks.add once there are plenty, so an iteration's work stays about the same.
        if not self.track_ids or r < (0.04 if len(self.ledger.tracks) < 150 else 0.005):
            return "tracks.add", {"path": self.new_wav("track")}, "track"
        if r < 0.07:
            if len(self.song_files) >= 40 or (self.song_files and rng.random() < 0.2):
                path = rng.choice(self.song_files)  # the same content again: de-duplicated
            else:
                path = self.new_wav("song")
                self.song_files.append(path)
            return "songs.add", {"path": path}, "song"
        if r < 0.10:
            return "iterate", {"force": True}, "iterate"
        if r < 0.12:
            return "rating.clear", {"track_id": rng.choice(self.track_ids)}, "rating"
        if r < 0.14:
            return rng.choice(["job.status", "ratings.list", "iterations.list"]), {}, None
        tid = rng.choice(self.track_ids)
        if r < 0.60:
            return "rate", {"track_id": tid, "stars": rng.randint(2, 10) / 2}, "rating"
        heard = round(rng.uniform(0, 1.2), 3)
        ended = rng.choice(["completed", "skipped", "stopped"])
        return "listen.report", {"track_id": tid, "seconds_heard": heard, "ended": ended,
                                 "duration": 1.0}, "listen"

    def record(self, kind, params, result, life):
        led = self.ledger
        if kind == "rating":
            led.ratings[result["rating_id"]] = (result["track_id"], result["stars"], life)
        elif kind == "listen":
            led.plays[result["play_id"]] = (result["track_id"], result["seconds_heard"],
                                            result["reason"], life)
        elif kind == "song":
            led.songs[result["id"]] = (result["path"], life)
        elif kind == "track":
            led.tracks[result["id"]] = (result["path"], life)
            self.track_ids.append(result["id"])
        elif kind == "iterate" and result.get("started"):
            led.jobs[result["job_id"]] = (result["iteration_id"], life)


def run_life(daemon, sock_path, workload, life, rng, first_iterate):
    """Drives the daemon until it is killed; returns (failures, ready, calls, in-flight call)."""
    failures = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    rpc = None
    while rpc is None:
        if daemon.killed.is_set():
            return failures, False, 0, None
        if not daemon.alive():
            failures.append(f"life {life}: tuneloopd exited on its own at start (status "
                            f"{daemon.proc.returncode})")
            return failures, False, 0, None
        try:
            rpc = Rpc(sock_path)
            if rpc.call("ping")[1] != "pong":
                raise Lost("ping")
        except (OSError, Lost):
            if rpc:
                rpc.close()
            rpc = None
            if time.monotonic() > deadline:
                failures.append(f"life {life}: tuneloopd did not answer within {READY_TIMEOUT_S:.0f} s")
                return failures, False, 0, None
            time.sleep(0.01)
    calls, pending = 0, None
    try:
        first = first_iterate
        while not daemon.killed.is_set():
            if first:
                method, params, kind = "iterate", {"force": True}, "iterate"
                first = False
            else:
                method, params, kind = workload.next_call()
            pending = (method, params, kind)
            status, value = rpc.call(method, params)
            pending = None
            calls += 1
            if status == "result":
                workload.record(kind, params, value, life)
            elif not (method == "iterate" and value.get("code") == -32004):  # busy
                workload.unexpected.append(f"life {life}: {method} {json.dumps(params)}: {value}")
            time.sleep(rng.uniform(0, 0.01))
    except Lost:
        if not daemon.killed.is_set():  # set before the signal is sent
            state = "alive" if daemon.alive() else f"exited with status {daemon.proc.returncode}"
            failures.append(f"life {life}: the connection ended during {pending[0] if pending else '?'} "
                            f"before any kill (tuneloopd {state})")
    except TimeoutError as e:
        failures.append(f"life {life}: {e}")
    finally:
        rpc.close()
    return failures, True, calls, pending


def describe_kill(delay, ready, in_flight, unfinished):
    parts = [f"{delay:.3f} s after start"]
    if not ready:
        parts.append("before it answered")
    elif in_flight:
        parts.append(f"during {in_flight[0]}")
    else:
        parts.append("between requests")
    for jid, number, progress, message in unfinished:
        parts.append(f"job {jid} (iteration {number}) at {progress:.0%}: {message or 'starting'}")
    return "; ".join(parts)


def kill_phase(ready, unfinished):
    if not ready:
        return "before the daemon answered"
    if not unfinished:
        return "no job running"
    message = unfinished[0][3]
    for word in ("training", "generating", "loading", "reward"):
        if word in message:
            return f"iteration: {word}"
    return "iteration: " + (message.split(":")[0] if message else "starting")  # loading, reward model


def final_run(daemon, sock_path, db, ledger):
    """After the last kill: the daemon runs undisturbed until no job is unfinished and an
    iteration past the first is ready, then stops on SIGTERM. Returns failures."""
    found = []
    daemon.start()
    rpc = None
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while rpc is None and time.monotonic() < deadline and daemon.alive():
            try:
                rpc = Rpc(sock_path)
                rpc.call("ping")
            except (OSError, Lost):
                rpc = None
                time.sleep(0.05)
        if rpc is None:
            return ["final start: tuneloopd did not answer"]
        deadline = time.monotonic() + FINAL_JOB_TIMEOUT_S
        while True:
            states, ready = job_states(db)
            open_jobs = sorted(j for j, st in states.items() if st in UNFINISHED)
            if not open_jobs and any(n > 0 for n in ready):
                break
            if time.monotonic() > deadline:
                found.append(f"final: jobs {open_jobs} unfinished and iterations {sorted(ready)} ready "
                             f"{FINAL_JOB_TIMEOUT_S:.0f} s after the last restart")
                break
            if not open_jobs:
                # No iteration past the first has completed: run one to the end.
                st, v = rpc.call("iterate", {"force": True})
                if st == "result" and v.get("started"):
                    ledger.jobs[v["job_id"]] = (v["iteration_id"], "final")
            time.sleep(0.2)
    except (Lost, TimeoutError) as e:
        found.append(f"final: {e}")
    finally:
        if rpc:
            rpc.close()
        if daemon.alive():
            daemon.proc.send_signal(signal.SIGTERM)
        try:
            status = daemon.proc.wait(timeout=30)
            if status != 0:
                found.append(f"final: tuneloopd exited with status {status} after SIGTERM")
        except subprocess.TimeoutExpired:
            daemon.proc.kill()
            daemon.proc.wait()
            found.append("final: tuneloopd did not stop within 30 s of SIGTERM")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=1000, help="SIGKILLs to inject (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the workload and delays (default 1)")
    ap.add_argument("--daemon", default=str(ROOT / "build" / "daemon" / "tuneloopd"),
                    help="tuneloopd binary (default build/daemon/tuneloopd)")
    ap.add_argument("--weights", default=str(ROOT / "model" / "weights"),
                    help="base-model weights folder (default model/weights)")
    ap.add_argument("--max-delay", type=float, default=2.5,
                    help="longest life before the kill, in seconds (default 2.5)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder on failure")
    ap.add_argument("--progress-every", type=int, default=0,
                    help="print a progress line every N kills (default: about 20 lines a run)")
    args = ap.parse_args()

    binary = pathlib.Path(args.daemon).resolve()
    if not os.access(binary, os.X_OK):
        print(f"crash_loop: no tuneloopd at {binary}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    work = pathlib.Path(tempfile.mkdtemp(prefix="tuneloop-crash-"))
    data, inbox = work / "data", work / "inbox"
    inbox.mkdir()
    sock_path = work / "run" / "tuneloop.sock"
    config = work / "config.yaml"
    config.write_text(CONFIG.format(data=data, socket=sock_path, weights=pathlib.Path(args.weights).resolve(),
                                    tracks=TRACKS_PER_ITERATION))
    log = work / "daemon.log"
    db = data / "tuneloop.db"
    ledger = Ledger()
    workload = Workload(rng, inbox, ledger)
    daemon = Daemon(binary, config, log)
    every = args.progress_every or max(1, args.kills // 20)
    phases = {}
    failures = []
    t0 = time.monotonic()
    print(f"crash loop: {args.kills} kills, seed {args.seed}, {binary}, folder {work}", flush=True)

    def fail_out(found, where):
        failures.extend(found)
        print(f"FAILED at {where}:", file=sys.stderr)
        for f in found:
            print("  " + f, file=sys.stderr)
        try:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("daemon log, last lines:\n    " + "\n    ".join(tail), file=sys.stderr)
        except OSError:
            pass

    kills = rows_before = acks_before = resumed = completed = 0
    seconds = []
    try:
        for kill in range(1, args.kills + 1):
            delay = rng.uniform(0, 0.15) if rng.random() < 0.1 else rng.uniform(0.15, args.max_delay)
            daemon.start(kill_after=delay)
            found, ready, calls, pending = run_life(daemon, sock_path, workload, kill, rng,
                                                    first_iterate=rng.random() < 0.5)
            if not daemon.killed.is_set():
                # The life ended early (a failure): kill it now so the folder can be read.
                daemon.timer.cancel()
                daemon.kill()
            status = daemon.wait_killed()
            kills = kill
            if status != -signal.SIGKILL and not found:
                found.append(f"life {kill}: tuneloopd ended with status {status}, not by the kill")
            where = f"kill {kill}"
            checked, facts = verify(db, ledger, where)
            found += checked
            unfinished = facts.get("unfinished", [])
            point = describe_kill(delay, ready, pending, unfinished)
            phase = kill_phase(ready, unfinished)
            phases[phase] = phases.get(phase, 0) + 1
            for jid, *_ in unfinished:
                ledger.interrupted[jid] = ledger.interrupted.get(jid, 0) + 1
            if "ratings" in facts:
                rows = len(facts["ratings"]) + len(facts["plays"])
                acks = len(ledger.ratings) + len(ledger.plays)
                if pending and pending[2] in ("rating", "listen"):
                    # Not acknowledged, so either outcome is right; counted for the summary only.
                    ledger.in_flight += 1
                    ledger.in_flight_committed += rows - rows_before > acks - acks_before
                rows_before, acks_before = rows, acks
            if found:
                fail_out(found, f"{where} ({point})")
                break
            workload.track_ids = facts.get("tracks") or workload.track_ids
            if kill % every == 0 or kill == args.kills:
                print(f"  kill {kill}/{args.kills} ({point}): ok; {calls} calls this life; "
                      f"{len(ledger.ratings)} ratings, {len(ledger.plays)} listens acknowledged; "
                      f"{len(facts.get('ready', []))} iterations ready; {time.monotonic() - t0:.0f} s",
                      flush=True)

        if not failures:
            found = final_run(daemon, sock_path, db, ledger)
            checked, facts = verify(db, ledger, "after the final stop")
            found += checked
            jobs = facts.get("jobs", {})
            for jid, times in sorted(ledger.interrupted.items()):
                if jobs.get(jid) == "done":
                    resumed += 1
                else:
                    found.append(f"after the final stop: job {jid}, interrupted by {times} kill(s), "
                                 f"is {jobs.get(jid, 'missing')}")
            completed = len(facts.get("ready", []))
            seconds = facts.get("seconds", [])
            if found:
                fail_out(found, "the final run")
        if workload.unexpected:
            fail_out(workload.unexpected[:20], "requests answered with an unexpected error")
    finally:
        if daemon.proc and daemon.alive():
            daemon.proc.kill()
            daemon.proc.wait()

    print(f"crash loop: {kills} kills in {time.monotonic() - t0:.0f} s (seed {args.seed})")
    print("  kill points, by the job's last recorded progress: " +
          ", ".join(f"{n} {p}" for p, n in sorted(phases.items(), key=lambda x: -x[1])))
    print(f"  acknowledged and verified after every kill: {len(ledger.ratings)} ratings, "
          f"{len(ledger.plays)} listens, {len(ledger.songs)} songs, {len(ledger.tracks)} tracks.add, "
          f"{len(ledger.jobs)} iterate ({ledger.row_checks} row checks)")
    print(f"  database checks (integrity_check + foreign_key_check): {ledger.db_checks}")
    print(f"  kills while a rating or listen was unanswered: {ledger.in_flight} "
          f"({ledger.in_flight_committed} committed without a reply, which is allowed)")
    print(f"  files: {len(ledger.verified_files)} distinct files read whole ({ledger.file_verifications} "
          f"reads, {ledger.file_checks} row-to-file checks)")
    print(f"  iterations: {completed} completed; {len(ledger.interrupted)} jobs interrupted by a kill, "
          f"{resumed} of them resumed to completion")
    if len(seconds) > 2:
        tenth = max(1, len(seconds) // 10)
        print(f"  an iteration's own time (its last life): {sum(seconds[1:1 + tenth]) / tenth:.1f} s "
              f"among the first, {sum(seconds[-tenth:]) / tenth:.1f} s among the last")
    print(f"  failures: {len(failures)}")
    if failures and args.keep:
        print(f"  kept {work} (daemon.log, data/, config.yaml)")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def job_states(db):
    """The iteration jobs' states and the numbers of the ready iterations, read while the daemon runs."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        states = {r[0]: r[1] for r in con.execute("SELECT id, state FROM jobs WHERE kind = 'iteration'")}
        ready = [r[0] for r in con.execute("SELECT number FROM iterations WHERE status = 'ready'")]
        return states, ready
    finally:
        con.close()


if __name__ == "__main__":
    sys.exit(main())

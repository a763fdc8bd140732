#!/usr/bin/env python3
"""A stand-in tuneloopd for the pilot runner's tests: the same command line and JSON-RPC
methods the runner uses (tracks.list, listen.report, rate, iterate, iterations.list,
job.status, methods, ping, shutdown), with "generation" that writes sine-tone WAV files.
Each new iteration's tones move towards the pitch of the best-rated earlier tracks, so a
listener who likes bright tracks sees brighter ones. Every call is logged to
DATA_DIR/calls.jsonl so a test can check what the runner sent."""

import argparse
import json
import math
import os
import random
import socketserver
import struct
import threading
import wave

ap = argparse.ArgumentParser()
ap.add_argument("--config")
ap.add_argument("--data-dir", required=True)
ap.add_argument("--socket", required=True)
args = ap.parse_args()

TRACKS = 4
for line in open(args.config):
    if "tracks_per_iteration" in line:
        TRACKS = int(line.split(":")[1])

os.makedirs(args.data_dir, exist_ok=True)
lock = threading.Lock()
iterations = []  # {id, number, status, polls}
tracks = {}      # id -> {id, iteration_id, path, duration, freq}
ratings = {}     # track id -> stars
rng = random.Random(7)
calls = open(os.path.join(args.data_dir, "calls.jsonl"), "a")


def write_tone(path, freq):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        frames = bytearray()
        for i in range(16000):
            v = 0.3 * math.sin(2 * math.pi * freq * i / 16000)
            frames += struct.pack("<h", int(v * 32767))
        w.writeframes(bytes(frames))


def generate(it):
    rated = sorted(((s, tracks[t]["freq"]) for t, s in ratings.items()), reverse=True)
    centre = None
    if rated:
        best = rated[: max(1, len(rated) // 4)]
        centre = sum(f for _, f in best) / len(best)
    for _ in range(TRACKS):
        if centre is None:
            freq = rng.uniform(200, 3000)
        else:
            freq = max(100.0, rng.gauss(centre, 300))
        tid = len(tracks) + 1
        path = os.path.join(args.data_dir, "track-%d.wav" % tid)
        write_tone(path, freq)
        tracks[tid] = {"id": tid, "iteration_id": it["id"], "path": path, "duration": 1.0, "freq": freq}


class Fail(Exception):
    def __init__(self, code, message):
        self.code, self.message = code, message


def handle(method, p):
    if method == "ping":
        return "pong"
    if method == "methods":
        names = ["ping", "methods", "tracks.list", "listen.report", "rate", "iterate", "iterations.list",
                 "job.status", "shutdown"]
        return [{"name": n, "params": [{"name": "force"}] if n == "iterate" else []} for n in names]
    if method == "iterations.list":
        out = []
        for it in iterations:
            # Ready on the second look, so the runner has to wait and poll.
            it["polls"] += 1
            if it["status"] == "training" and it["polls"] >= 2:
                generate(it)
                it["status"] = "ready"
            out.append({"id": it["id"], "number": it["number"], "status": it["status"]})
        return out
    if method == "iterate":
        it = {"id": 100 + len(iterations), "number": len(iterations), "status": "training", "polls": 0}
        iterations.append(it)
        return {"job_id": it["id"], "iteration_id": it["id"]}
    if method == "job.status":
        return {"state": "training", "step": 1, "steps": 2}
    if method == "tracks.list":
        return [{k: t[k] for k in ("id", "iteration_id", "path", "duration")}
                for t in tracks.values() if t["iteration_id"] == p.get("iteration")]
    if method == "listen.report":
        if p["track_id"] not in tracks or p["ended"] not in ("completed", "skipped", "stopped"):
            raise Fail(-32602, "bad listen.report")
        return {"play_id": 1}
    if method == "rate":
        s = p["stars"]
        if p["track_id"] not in tracks or not (1 <= s <= 5) or abs(s * 2 - round(s * 2)) > 1e-9:
            raise Fail(-32602, "bad rate")
        ratings[p["track_id"]] = s
        return {"track_id": p["track_id"], "stars": s}
    if method == "shutdown":
        threading.Thread(target=server.shutdown).start()
        return {"shutting_down": True}
    raise Fail(-32601, "method not found: " + method)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            req = json.loads(line)
            with lock:
                calls.write(json.dumps({"method": req["method"], "params": req.get("params")}) + "\n")
                calls.flush()
                try:
                    reply = {"jsonrpc": "2.0", "id": req["id"], "result": handle(req["method"], req.get("params") or {})}
                except Fail as f:
                    reply = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": f.code, "message": f.message}}
            self.wfile.write((json.dumps(reply) + "\n").encode())
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(args.socket):
    os.remove(args.socket)
server = Server(args.socket, Handler)
server.serve_forever()
os.remove(args.socket)

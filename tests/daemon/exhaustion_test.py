#!/usr/bin/env python3
"""Exhaustion tests: a real tuneloopd under floods of connections, a maximal batch, a
subscriber that stops reading and slow HTTP clients. The time limits are generous liveness
bounds (does it answer, does it exit), not speed claims.

    python3 tests/daemon/exhaustion_test.py --daemon build/daemon/tuneloopd [--only NAME]

Each check starts its own daemon (no model, no audio device) in a temporary folder. Exit
status 0 when every check passed; each failure says what was measured. Standard library only.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

IDLE_SECONDS = 2
MAX_CONNECTIONS = 256  # daemon/ipc_server.hpp kMaxConnections
MAX_BATCH = 256        # rpc/dispatcher.hpp kMaxBatchCalls


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Daemon:
    """tuneloopd on a private folder: socket, HTTP on a free port, no MPD door, no model."""

    def __init__(self, binary):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tuneloop-exhaust-"))
        self.data = self.dir / "data"
        self.socket = self.dir / "run" / "tuneloop.sock"
        (self.dir / "weights").mkdir()
        (self.dir / "config.yaml").write_text(
            f"paths:\n  data_dir: {self.data}\n  socket: {self.socket}\n"
            f"  weights_dir: {self.dir / 'weights'}\n"
            f"daemon:\n  idle_seconds: {IDLE_SECONDS}\n"
            "http:\n  port: 0\nmpd:\n  port: 0\naudio:\n  output: none\n")
        self.log = open(self.dir / "daemon.log", "wb")
        self.process = subprocess.Popen(
            [binary, "--config", str(self.dir / "config.yaml")],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (self.data / "ui-url").exists():
            check(self.process.poll() is None, f"tuneloopd exited at start: {self.log_text()}")
            check(time.monotonic() < deadline, "tuneloopd did not start in 30 s")
            time.sleep(0.05)
        url = (self.data / "ui-url").read_text().strip()
        self.http_port = int(url.split(":")[2].split("/")[0])

    def connect(self, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(str(self.socket))
        return s

    def cpu_seconds(self):
        fields = (pathlib.Path(f"/proc/{self.process.pid}/stat").read_text()
                  .rsplit(")", 1)[1].split())
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self, key="VmRSS"):
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise Failure(f"no {key} in /proc/{self.process.pid}/status")

    def terminate_and_time(self, limit):
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=limit + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise Failure(f"tuneloopd did not exit within {limit + 5} s of SIGTERM")
        return time.monotonic() - start

    def log_text(self):
        self.log.flush()
        return (self.dir / "daemon.log").read_text(errors="replace")[-2000:]

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def call(sock, method, params=None, ident=1, timeout=5.0):
    request = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        request["params"] = params
    sock.settimeout(timeout)
    sock.sendall((json.dumps(request) + "\n").encode())
    return read_reply(sock, ident)


def read_reply(sock, ident):
    buffer = b""
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise Failure("the daemon closed the connection instead of answering")
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            message = json.loads(line)
            if isinstance(message, list) or message.get("id") == ident:
                return message


def is_closed(sock, wait=0.5):
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def two_thousand_idle_connections(binary):
    """2,000 idle connections: the cap holds, the quietest give way to a fresh ping, the
    daemon does not spin, idle ones close after idle_seconds and subscribers stay."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    d = Daemon(binary)
    held = []
    try:
        subscribers = [d.connect() for _ in range(8)]
        for s in subscribers:
            check(call(s, "subscribe").get("result") is not None, "subscribe failed")
        wanted = min(2000, min(hard, 8192) - 64)  # this process's descriptors allow so many
        for _ in range(wanted):
            try:
                held.append(d.connect())
            except OSError as e:  # the listen backlog may refuse some outright: a clean refusal
                check(e.errno in (11, 111), f"connect failed unexpectedly: {e}")
        time.sleep(1.0)
        open_now = sum(1 for s in held if not is_closed(s, 0.01))
        check(open_now <= MAX_CONNECTIONS, f"{open_now} idle connections still open past the cap")
        cpu_before = d.cpu_seconds()
        time.sleep(1.0)
        spent = d.cpu_seconds() - cpu_before
        check(spent < 0.3, f"the daemon used {spent:.2f} s of CPU in 1 s while flooded (spinning)")
        fresh = d.connect()
        start = time.monotonic()
        reply = call(fresh, "ping", timeout=1.0)
        took = time.monotonic() - start
        check(reply.get("result") == "pong" and took < 1.0, f"fresh ping: {reply} after {took:.2f} s")
        time.sleep(IDLE_SECONDS + 1.5)
        still_open = sum(1 for s in held if not is_closed(s, 0.01))
        check(still_open == 0, f"{still_open} idle connections open after idle_seconds")
        for s in subscribers:
            check(call(s, "ping", ident=2).get("result") == "pong", "a subscriber was closed")
        check(d.process.poll() is None, "tuneloopd died")
        return (f"{len(held)} connections: the cap held ({open_now} open), a fresh ping answered "
                f"in {took * 1000:.0f} ms, CPU {spent:.2f} s in 1 s, idle ones closed, subscribers kept")
    finally:
        for s in held:
            s.close()
        d.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def maximal_batch_memory(binary):
    """The largest batch a line may carry, sent again and again: RSS grows by < 256 MiB."""
    d = Daemon(binary)
    try:
        s = d.connect(timeout=60)
        idle_rss = d.rss_kib()
        batch = [{"jsonrpc": "2.0", "id": i, "method": "methods"} for i in range(MAX_BATCH)]
        for _ in range(5):
            s.sendall((json.dumps(batch) + "\n").encode())
            replies = read_reply(s, None)
            check(isinstance(replies, list) and len(replies) == MAX_BATCH,
                  f"a batch of {MAX_BATCH} got {type(replies).__name__}")
        grown_mib = (d.rss_kib("VmHWM") - idle_rss) / 1024
        # Under a sanitiser (scripts/sanitize.sh) freed memory sits in quarantine and every
        # block carries red zones, so RSS says nothing about the daemon's own use.
        sanitiser = os.environ.get("TUNELOOP_SANITIZER")
        if not sanitiser:
            check(grown_mib < 256, f"a maximal batch grew the daemon's peak RSS by {grown_mib:.0f} MiB")
        over = batch + [{"jsonrpc": "2.0", "id": MAX_BATCH, "method": "ping"}]
        s.sendall((json.dumps(over) + "\n").encode())
        reply = read_reply(s, None)
        check(reply.get("error", {}).get("code") == -32600, f"an over-cap batch: {reply}")
        bound = f" (not bounded under the {sanitiser} sanitiser)" if sanitiser else ""
        return f"peak RSS +{grown_mib:.0f} MiB over idle for 5 batches of {MAX_BATCH} `methods`{bound}"
    finally:
        d.close()


def stopped_subscriber_then_sigterm(binary):
    """A subscriber process stopped with SIGSTOP (its socket never read again) while events
    pile up: SIGTERM still ends the daemon within 5 s."""
    d = Daemon(binary)
    child = None
    try:
        code = ("import json,os,signal,socket,sys\n"
                "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
                "s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}\\n')\n"
                "s.recv(4096);print('subscribed',flush=True);os.kill(os.getpid(),signal.SIGSTOP)\n")
        child = subprocess.Popen([sys.executable, "-c", code, str(d.socket)], stdout=subprocess.PIPE)
        check(child.stdout.readline().strip() == b"subscribed", "the subscriber did not subscribe")
        s = d.connect()
        for i in range(3000):  # volume changes raise events the stopped subscriber never reads
            call(s, "player.volume", {"level": (i % 100) / 100}, ident=i)
        took = d.terminate_and_time(5)
        check(took <= 5.0, f"exit took {took:.1f} s after SIGTERM")
        return f"exit {took:.2f} s after SIGTERM with a stopped subscriber and 3000 events"
    finally:
        if child:
            child.send_signal(signal.SIGKILL)
            child.wait()
        d.close()


def slowloris_then_sigterm(binary):
    """16 HTTP connections sending a header line now and then, never finishing, hold every
    web worker: the socket still answers a ping within 1 s, and SIGTERM still ends the
    daemon within 5 s."""
    d = Daemon(binary)
    slow = []
    try:
        for _ in range(16):
            c = socket.create_connection(("127.0.0.1", d.http_port), timeout=5)
            c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(c)
        for i in range(3):
            time.sleep(0.5)
            for c in slow:
                try:
                    c.sendall(b"X-Slow-%d: 1\r\n" % i)
                except OSError:
                    pass
        fresh = d.connect()
        start = time.monotonic()
        reply = call(fresh, "ping", timeout=1.0)
        answered = time.monotonic() - start
        check(reply.get("result") == "pong" and answered < 1.0,
              f"ping beside the slowloris connections: {reply} after {answered:.2f} s")
        fresh.close()
        took = d.terminate_and_time(5)
        check(took <= 5.0, f"exit took {took:.1f} s after SIGTERM")
        return (f"ping answered in {answered * 1000:.0f} ms and exit {took:.2f} s after SIGTERM "
                f"with 16 slowloris connections")
    finally:
        for c in slow:
            c.close()
        d.close()


CHECKS = [two_thousand_idle_connections, maximal_batch_memory, stopped_subscriber_then_sigterm,
          slowloris_then_sigterm]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", default="build/daemon/tuneloopd")
    parser.add_argument("--only", help="run one check by name")
    args = parser.parse_args()
    failed = 0
    for check_fn in CHECKS:
        if args.only and check_fn.__name__ != args.only:
            continue
        try:
            print(f"ok   {check_fn.__name__}: {check_fn(args.daemon)}", flush=True)
        except Failure as e:
            failed += 1
            print(f"FAIL {check_fn.__name__}: {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

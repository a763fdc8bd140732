#!/usr/bin/env python3
"""A minimal tuneloopd client (Python standard library only).

    python3 docs/examples/client.py status
    python3 docs/examples/client.py rate '{"track_id": 3, "stars": 4.5}'
    python3 docs/examples/client.py watch        # print events until Ctrl-C
"""
import json
import os
import socket
import sys


def default_socket():
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "tuneloop.sock")
    return "/tmp/tuneloop-%d/tuneloop.sock" % os.getuid()


class TuneloopError(Exception):
    def __init__(self, error):
        super().__init__("%s (error %s)" % (error.get("message"), error.get("code")))
        self.code, self.data = error.get("code"), error.get("data")


class Client:
    def __init__(self, path=None):
        path = path or os.environ.get("TUNELOOP_SOCKET") or default_socket()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.next_id = 1
        self.events = []  # notifications that arrived while waiting for a reply

    def call(self, method, params=None):
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        self.next_id += 1
        if params is not None:
            request["params"] = params
        self.file.write((json.dumps(request) + "\n").encode())
        self.file.flush()
        while True:
            message = self.read()
            if message.get("id") == request["id"]:
                if "error" in message:
                    raise TuneloopError(message["error"])
                return message["result"]
            if "id" not in message:
                self.events.append(message)

    def read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("tuneloopd closed the connection")
        return json.loads(line)

    def events_forever(self, names=None):
        self.call("subscribe", {"events": names} if names else None)
        while True:
            yield self.events.pop(0) if self.events else self.read()


if __name__ == "__main__":
    method = sys.argv[1] if len(sys.argv) > 1 else "status"
    client = Client()
    if method == "watch":
        for event in client.events_forever():
            print(event["method"], json.dumps(event["params"]))
    else:
        params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
        try:
            print(json.dumps(client.call(method, params), indent=2))
        except TuneloopError as error:
            sys.exit("tuneloopd: %s" % error)

"""A small strict ESL client for tests: raw frames kept, headers parsed per line, bounded waits."""
from __future__ import annotations

import json
import socket
import time
import urllib.parse
from dataclasses import dataclass

import gevent
import gevent.event


@dataclass
class Frame:
    raw: bytes
    headers: dict
    header_order: list
    body: str

    @property
    def ctype(self):
        return self.headers.get("Content-Type")

    def event(self):
        if self.ctype == "text/event-json":
            return json.loads(self.body)
        if self.ctype == "text/event-plain":
            head, _, rest = self.body.partition("\n\n")
            ev = {}
            for line in head.split("\n"):
                if ": " in line:
                    k, v = line.split(": ", 1)
                    ev[k] = urllib.parse.unquote(v)
            if rest:
                ev["_body"] = rest
            return ev
        return None


class EslClient:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.frames: list[Frame] = []
        self.closed = False
        self.changed = gevent.event.Event()
        self.reader = gevent.spawn(self._read)

    @classmethod
    def connect(cls, host, port):
        return cls(socket.create_connection((host, port), timeout=5))

    @classmethod
    def accept(cls, srv):
        sock, _ = srv.accept()
        return cls(sock)

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _read(self):
        self.sock.settimeout(None)
        try:
            while True:
                while b"\n\n" not in self.buf:
                    self._more()
                head, rest = self.buf.split(b"\n\n", 1)
                order, headers = [], {}
                for line in head.decode().split("\n"):
                    k, v = line.split(": ", 1)
                    order.append(k)
                    headers[k] = v
                n = int(headers.get("Content-Length", "0"))
                self.buf = rest
                while len(self.buf) < n:
                    self._more()
                body, self.buf = self.buf[:n], self.buf[n:]
                self.frames.append(Frame(head + b"\n\n" + body, headers, order, body.decode()))
                self.changed.set()
        except (EOFError, OSError, ValueError):
            self.closed = True
            self.changed.set()

    def take(self, pred, timeout=5.0):
        end = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self.frames):
                if pred(f):
                    return self.frames.pop(i)
            left = end - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.changed.clear()
            self.changed.wait(min(left, 0.2))

    def send(self, text):
        self.sock.sendall(text.encode())

    def cmd(self, line, timeout=10.0):
        self.send(line + "\n\n")
        return self.take(lambda f: f.ctype in ("command/reply", "api/response", "auth/request"), timeout)

    def auth(self, password):
        greet = self.take(lambda f: f.ctype == "auth/request")
        assert greet is not None
        rep = self.cmd("auth " + password)
        assert rep.headers.get("Reply-Text") == "+OK accepted"

    def api(self, line, timeout=10.0):
        return self.cmd("api " + line, timeout).body

    def event(self, name, timeout=5.0, **match):
        def pred(f):
            ev = f.event()
            if ev is None or name not in (ev.get("Event-Name"), ev.get("Event-Subclass")):
                return False
            return all(ev.get(k.replace("_", "-")) == v for k, v in match.items())
        f = self.take(pred, timeout)
        return f.event() if f else None

    def events(self):
        return [f.event() for f in self.frames if f.event() is not None]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.reader.kill(block=False)

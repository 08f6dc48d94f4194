"""A minimal HTTP/1.1 server on gevent's StreamServer, writing raw bytes so faults are real on the wire.

Chunked streaming, keep-alive (the SDKs pool connections), abrupt drops mid-body and stalls are all possible,
which a WSGI server would hide.
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import gevent
from gevent.server import StreamServer

from tests.fakes.faults import Fault

MAX_BODY = 1_000_000
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Dropped(Exception):
    """Raised inside a handler after the socket was closed on purpose."""


@dataclass
class Writer:
    sock: socket.socket
    fault: Fault = field(default_factory=Fault)
    sent_chunks: int = 0

    def send_body(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        gevent.sleep(self.fault.latency_s)
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.sock.sendall(head.encode() + body)

    def start_chunked(self, status: int, content_type: str) -> None:
        gevent.sleep(self.fault.latency_s)
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {content_type}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        self.sock.sendall(head.encode())

    def chunk(self, data: bytes) -> None:
        if self.fault.drop_after is not None and self.sent_chunks >= self.fault.drop_after:
            self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            raise Dropped()
        if self.fault.stall_after is not None and self.sent_chunks == self.fault.stall_after:
            gevent.sleep(self.fault.stall_s)
        if self.sent_chunks and self.fault.chunk_delay_s:
            gevent.sleep(self.fault.chunk_delay_s)
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        self.sent_chunks += 1

    def end_chunked(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")


class FakeHTTPServer:
    """Subclasses implement handle(request, writer). Every request is recorded in .requests."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []  # consumed one per request, in order
        self._lock = threading.Lock()
        self._server = StreamServer(("127.0.0.1", 0), self._serve)

    def start(self) -> FakeHTTPServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def next_fault(self) -> Fault:
        with self._lock:
            return self.faults.pop(0) if self.faults else Fault()

    def handle(self, request: Request, writer: Writer) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _serve(self, sock: socket.socket, _addr) -> None:
        reader = sock.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                writer = Writer(sock, self.next_fault())
                self.handle(request, writer)
        except (Dropped, OSError, ValueError):
            return
        finally:
            reader.close()
            try:
                sock.close()
            except OSError:
                pass


def _read_request(reader) -> Request | None:
    line = reader.readline(8192)
    if not line.strip():
        return None
    method, target, _version = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = reader.readline(8192).decode("latin-1")
        if header in ("\r\n", "\n", ""):
            break
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("body too large")
    body = reader.read(length) if length else b""
    parts = urlsplit(target)
    return Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body)

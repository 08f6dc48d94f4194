"""The API benchmark's load generator, run by bench_api.py in its own process (its CPU is not the server's).

    VOXBRIDGE_BENCH_KEY=... python bench/http_load.py single BASE --clients 64 --warmup 1 --seconds 5
    VOXBRIDGE_BENCH_KEY=... python bench/http_load.py batch  BASE --uploaders 1 --rounds 10 --size 1000

Prints one JSON line: {"requests": n, "calls": n, "seconds": s, "statuses": {...}}. Requests made during
the warm-up are not counted. Every reply must be a success (201 single, 200 batch); anything else is counted
and reported, never hidden.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import gevent  # noqa: E402


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost far less CPU than the server
    it measures (requests spends more per call than the API does)."""

    def __init__(self, base: str):
        parsed = urlparse(base)
        self.sock = socket.create_connection((parsed.hostname, parsed.port))
        self.buffer = b""

    def send(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1]), rest[:length]


def post_request(path: str, key: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def single(base: str, key: str, clients: int, warmup: float, seconds: float) -> dict:
    request = post_request("/v1/calls/outbound", key,
                           json.dumps({"to": "+14155550123", "context": {"customer": "Ada", "order": 42}}).encode())
    statuses: collections.Counter = collections.Counter()
    counted = [0]
    start_at = time.monotonic() + warmup
    stop_at = start_at + seconds

    def worker() -> None:
        client = KeepAliveClient(base)
        while True:
            status, _ = client.send(request)
            now = time.monotonic()
            if now >= stop_at:
                return
            if now >= start_at:
                counted[0] += 1
                statuses[status] += 1

    gevent.joinall([gevent.spawn(worker) for _ in range(clients)], raise_error=True)
    return {"requests": counted[0], "calls": statuses[201], "seconds": seconds, "statuses": dict(statuses)}


def batch(base: str, key: str, uploaders: int, rounds: int, size: int) -> dict:
    body = json.dumps({"calls": [{"to": f"+1415555{n % 10000:04d}", "context": {"n": n}}
                                 for n in range(size)]}).encode()
    request = post_request("/v1/calls/outbound/batch", key, body)
    statuses: collections.Counter = collections.Counter()
    created = [0]

    def upload(rounds: int) -> None:
        client = KeepAliveClient(base)
        for _ in range(rounds):
            status, reply = client.send(request)
            statuses[status] += 1
            if status == 200:
                created[0] += json.loads(reply)["created"]

    upload(1)  # warm-up: one batch, not counted
    statuses.clear()
    created[0] = 0
    start = time.monotonic()
    gevent.joinall([gevent.spawn(upload, rounds) for _ in range(uploaders)], raise_error=True)
    return {"requests": uploaders * rounds, "calls": created[0], "seconds": time.monotonic() - start,
            "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["single", "batch"])
    parser.add_argument("base")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--uploaders", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    key = os.environ["VOXBRIDGE_BENCH_KEY"]  # not an argument: argv is visible to every user of the machine
    if args.mode == "single":
        result = single(args.base, key, args.clients, args.warmup, args.seconds)
    else:
        result = batch(args.base, key, args.uploaders, args.rounds, args.size)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

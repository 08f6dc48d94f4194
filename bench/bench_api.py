"""Queue throughput on PostgreSQL: single POSTs/s over HTTP, calls/s through batch, claims/s.

    .venv/bin/python bench/bench_api.py [--seconds 5] [--clients 16] [--postgres URL]

Starts `app.py serve` against a throwaway database, loads it from this process over loopback,
then claims calls directly through calls.queue. Prints one table; targets from issue 2.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import gevent  # noqa: E402
import psycopg2  # noqa: E402
import requests  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calls.queue import claim_due  # noqa: E402
from models import Agent, ApiKey, Organization, migrate, open_database  # noqa: E402


def make_database(admin_url: str) -> tuple[str, str]:
    name = f"voxbridge_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name, urlparse(admin_url)._replace(path=f"/{name}").geturl()


def drop_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def start_server(url: str, log_path: str, workers: int = 1) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "DATABASE_URL": url, "API_PORT": "0", "RATE_LIMIT_PER_MINUTE": "10000000",
           "LOG_LEVEL": "WARNING", "DISPATCH_INTERVAL": "60",
           "API_WORKERS": str(workers)}
    env.pop("FREESWITCH_ESL_HOST", None)
    out = open(log_path, "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = pathlib.Path(log_path).read_text()
        if "listening on" in text:
            return proc, text.split("listening on ")[1].split()[0]
        time.sleep(0.1)
    raise RuntimeError("server did not start: " + pathlib.Path(log_path).read_text())


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost far less CPU than the
    server it measures (requests spends more per call than the API does)."""

    def __init__(self, base: str):
        parsed = urlparse(base)
        self.sock = socket.create_connection((parsed.hostname, parsed.port))
        self.buffer = b""

    def post(self, request: bytes) -> int:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1])


def single_posts(base: str, key: str, seconds: float, clients: int) -> float:
    body = json.dumps({"to": "+14155550123", "context": {"customer": "Ada", "order": 42}}).encode()
    request = (f"POST /v1/calls/outbound HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    done = [0]
    stop_at = time.monotonic() + seconds

    def worker():
        client = KeepAliveClient(base)
        while time.monotonic() < stop_at:
            status = client.post(request)
            assert status == 201, status
            done[0] += 1

    start = time.monotonic()
    gevent.joinall([gevent.spawn(worker) for _ in range(clients)], raise_error=True)
    return done[0] / (time.monotonic() - start)


def batch_posts(base: str, key: str, rounds: int, uploaders: int) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps({"calls": [{"to": f"+1415555{n:04d}", "context": {"n": n}} for n in range(1000)]})

    def upload():
        session = requests.Session()
        for _ in range(rounds):
            response = session.post(base + "/v1/calls/outbound/batch", data=body, headers=headers, timeout=60)
            assert response.json()["created"] == 1000

    start = time.monotonic()
    gevent.joinall([gevent.spawn(upload) for _ in range(uploaders)], raise_error=True)
    return uploaders * rounds * 1000 / (time.monotonic() - start)


def claims(batch: int) -> tuple[float, int]:
    start = time.monotonic()
    total = 0
    while True:
        got = claim_due(batch, "bench")
        if not got:
            break
        total += len(got)
    return total / (time.monotonic() - start), total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-rounds", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    name, url = make_database(args.postgres)
    try:
        open_database(url)
        migrate()
        org = Organization.create(name="bench", minutes_included=10**9)
        Agent.create(organization=org, name="bench", direction="outbound")
        key = ApiKey.issue(org)[1]
        with tempfile.TemporaryDirectory() as tmp:
            proc, base = start_server(url, f"{tmp}/server.log", args.workers)
            try:
                single = single_posts(base, key, args.seconds, args.clients)
                batch = batch_posts(base, key, args.batch_rounds, args.workers)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        claim_rate, claimed = claims(100)
        rows = [("single POST /v1/calls/outbound", single, 500),
                (f"calls through batch (1,000 per POST, {args.workers} uploaders)", batch, 5000),
                ("queue claims (100 per claim)", claim_rate, 2000)]
        print(f"PostgreSQL, {os.cpu_count()} cores, API_WORKERS={args.workers}, {args.clients} HTTP clients, "
              f"{claimed} calls claimed")
        print(f"{'measure':48} {'per second':>12} {'target':>8} {'ratio':>7}")
        for label, rate, target in rows:
            print(f"{label:48} {rate:12.0f} {target:8d} {rate / target:7.2f}")
    finally:
        from models import database

        database.close_all() if hasattr(database, "close_all") else None
        drop_database(args.postgres, name)


if __name__ == "__main__":
    main()

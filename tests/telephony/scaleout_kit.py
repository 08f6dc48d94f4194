"""Real processes for scale-out runs: FreeSWITCH simulators (python -m fssim) and app instances (app.py serve)
on one PostgreSQL database. Used by tests/telephony/test_scaleout.py and bench/bench_scaleout.py.

Everything is decided by polling state (the database, /health, the simulators' channels) with generous bounds.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import psycopg2
import requests

from esl.commands import ApiCall
from esl.connection import EslConnection

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-esl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate: Callable[[], Any], timeout: float = 90.0, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")


class Database:
    """A PostgreSQL database of its own (the dispatchers must see no other run's calls)."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.name = f"voxbridge_scaleout_{uuid.uuid4().hex[:10]}"
        admin = psycopg2.connect(admin_url)
        admin.autocommit = True
        admin.cursor().execute(f'CREATE DATABASE "{self.name}"')
        admin.close()
        self.url = urlparse(admin_url)._replace(path=f"/{self.name}").geturl()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def drop(self) -> None:
        admin = psycopg2.connect(self.admin_url)
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        admin.close()


class Switch:
    """A simulator in its own process; its calls stay up until hupall."""

    def __init__(self, tmp: pathlib.Path, answer_after: float = 0.1):
        self.port = free_port()
        rules = tmp / f"rules-{self.port}.json"
        rules.write_text(json.dumps({"default": {"match": ".*", "outcome": "answer", "after": answer_after}}))
        self.proc = subprocess.Popen([sys.executable, "-m", "fssim", "--port", str(self.port), "--password",
                                      PASSWORD, "--rules", str(rules), "--heartbeat", "1"], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: socket.socket().connect_ex(("127.0.0.1", self.port)) == 0, 30, what="simulator listening")
        self.address = f"127.0.0.1:{self.port}"
        self.name = f"esl {self.address}"  # the node's name in the app (its ESL connection's)

    def api(self, line: str) -> str:
        conn = EslConnection("127.0.0.1", self.port, PASSWORD)
        conn.connect()
        try:
            return conn.api(ApiCall(line))
        finally:
            conn.close()

    def channels(self) -> int:
        body = self.api("show channels as json")
        return int(json.loads(body).get("row_count", 0)) if body.strip().startswith("{") else 0

    def hupall(self) -> None:
        self.api("hupall NORMAL_CLEARING")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def base_env(db: Database, switches: list[Switch], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FREESWITCH_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": db.url, "FREESWITCH_ESL_HOST": ",".join(s.address for s in switches),
                "FREESWITCH_ESL_PASSWORD": PASSWORD, "API_PORT": "0", "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0",
                "WEB_CALL_LISTEN": "127.0.0.1:0", "AUDIO_WS_LISTEN": "127.0.0.1:0", "VOICE_PIPELINE": "false",
                "CALLS_PER_SECOND": "200", "MAX_CONCURRENT_CALLS": "1000", "ORG_MAX_CONCURRENT_CALLS": "1000",
                "DISPATCH_INTERVAL": "0.1", "RETRY_BACKOFF": "0", "LOG_LEVEL": "WARNING",
                "DATABASE_POOL_SIZE": "10"})
    env.update(extra)
    return env


class Instance:
    """One app instance: `python app.py serve` in its own process."""

    def __init__(self, env: dict[str, str], log_path: pathlib.Path):
        self.log_path = log_path
        self._out = open(log_path, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=self._out,
                                     stderr=self._out)
        self.url = wait(self._address, 60, what=f"instance listening ({log_path})")

    def _address(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"instance exited: {self.log_path.read_text()[-2000:]}")
        text = self.log_path.read_text()
        marker = "API listening on "  # (at LOG_LEVEL INFO the audio servers log "listening on" too)
        return text.split(marker)[1].split()[0] if marker in text else None

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/health", timeout=10).json()

    def owned(self) -> set[str]:
        nodes = self.health().get("freeswitch")
        return {n["node"] for n in nodes if n.get("owned")} if isinstance(nodes, list) else set()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._out.closed:
            self._out.close()


def create_org(env: dict[str, str]) -> str:
    """An organization with a webhook URL (so every call.ended is written to the outbox) and its API key."""
    created = subprocess.run([sys.executable, "app.py", "create-org", "Acme", "--caller-id", "+14155550000",
                              "--webhook-url", "https://hooks.example.com/voxbridge"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    return created.stdout.split("store it now): ")[1].split()[0]


class Api:
    def __init__(self, url: str, key: str):
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body or {}, headers=self.headers, timeout=60)

    def batch(self, numbers: list[str]) -> list[str]:
        reply = self.post("/v1/calls/outbound/batch", {"calls": [{"to": n} for n in numbers]})
        assert reply.status_code in (200, 201, 202), reply.text[:500]
        body = reply.json()
        assert body["created"] == len(numbers), body
        return [c["id"] for c in body.get("calls", []) if isinstance(c, dict) and "id" in c]


def statuses(db: Database) -> dict[str, str]:
    return dict(db.query("SELECT id, status FROM call"))

"""The app is SIGKILLed with 100 live calls and restarted: every call is re-adopted or closed,
no queued call is lost and none is dialed twice. Real processes: the simulator and the app."""
import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from config import EslNode
from esl.commands import ApiCall
from esl.connection import EslConnection

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIVE, QUEUED_EXTRA = 100, 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout=60.0, explain=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time" + (f": {explain()}" if explain else ""))


def explained(db_path, log_path):
    """What the calls' rows and the app's log say, for a wait that failed."""
    def explain() -> str:
        counts: dict[str, int] = {}
        for status, _ in statuses(db_path).values():
            counts[status] = counts.get(status, 0) + 1
        log_tail = "\n".join(log_path.read_text().splitlines()[-40:])
        return f"statuses {counts}; the app's log ends:\n{log_tail}"
    return explain


@pytest.fixture
def switch(tmp_path):
    port = free_port()
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"default": {"match": ".*", "outcome": "answer", "after": 0.1}}))
    proc = subprocess.Popen([sys.executable, "-m", "fssim", "--port", str(port), "--password", "pw",
                             "--rules", str(rules), "--heartbeat", "1"], cwd=ROOT)
    wait(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 20)
    yield EslNode("127.0.0.1", port)
    proc.kill()
    proc.wait()


def start_app(env, log_path):
    out = open(log_path, "a")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out)


def statuses(db_path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(db_path, timeout=10) as conn:
        return {row[0]: (row[1], row[2]) for row in conn.execute("SELECT id, status, attempt FROM call")}


def hupall(node: EslNode) -> None:
    conn = EslConnection(node.host, node.port, "pw")
    conn.connect()
    conn.api(ApiCall("hupall NORMAL_CLEARING"))
    conn.close()


def test_sigkill_with_100_live_calls_then_restart(switch, tmp_path):
    db_path = tmp_path / "vb.db"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FREESWITCH_", "DATABASE_URL"))},
           "DATABASE_URL": f"sqlite:///{db_path}", "FREESWITCH_ESL_HOST": f"{switch.host}:{switch.port}",
           "FREESWITCH_ESL_PASSWORD": "pw", "API_PORT": "0", "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0",
           "WEB_CALL_LISTEN": "127.0.0.1:0", "AUDIO_WS_LISTEN": "127.0.0.1:0",
           "VOICE_PIPELINE": "false",
           "CALLS_PER_SECOND": "200", "MAX_CONCURRENT_CALLS": str(LIVE), "ORG_MAX_CONCURRENT_CALLS": "1000",
           "DISPATCH_INTERVAL": "0.1", "RETRY_BACKOFF": "0", "LOG_LEVEL": "WARNING"}
    created = subprocess.run([sys.executable, "app.py", "create-org", "Acme", "--caller-id", "+14155550000"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    key = created.stdout.split("store it now): ")[1].split()[0]
    log_path = tmp_path / "app.log"
    app = start_app(env, log_path)
    try:
        url = wait(lambda: "listening on" in log_path.read_text()
                   and log_path.read_text().split("listening on ")[1].split()[0], 30)
        import requests

        headers = {"Authorization": f"Bearer {key}"}
        requests.post(f"{url}/v1/agents", json={"name": "A", "direction": "outbound"}, headers=headers, timeout=10)
        batch = [{"to": f"+1415555{n:04d}"} for n in range(LIVE + QUEUED_EXTRA)]
        assert requests.post(f"{url}/v1/calls/outbound/batch", json={"calls": batch}, headers=headers,
                             timeout=30).json()["created"] == LIVE + QUEUED_EXTRA
        wait(lambda: sum(s == "in-progress" for s, _ in statuses(db_path).values()) == LIVE)
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
        before = statuses(db_path)
        assert sum(s == "queued" for s, _ in before.values()) == QUEUED_EXTRA

        app = start_app({**env, "LOG_LEVEL": "INFO"}, log_path)
        # Reconciliation re-adopts the live calls (its log line says when it is done); the queue waits for room.
        wait(lambda: "reconciled " in log_path.read_text(), explain=explained(db_path, log_path))
        after = statuses(db_path)
        assert sum(s == "in-progress" for s, _ in after.values()) == LIVE
        assert sum(s == "queued" for s, _ in after.values()) == QUEUED_EXTRA
        hupall(switch)  # the first hundred end; the twenty waiting are dialed now
        wait(lambda: sum(s == "in-progress" for s, _ in statuses(db_path).values()) == QUEUED_EXTRA,
             explain=explained(db_path, log_path))
        hupall(switch)
        final = wait(lambda: (s := statuses(db_path)) and all(st == "completed" for st, _ in s.values()) and s,
                     explain=explained(db_path, log_path))
        assert len(final) == LIVE + QUEUED_EXTRA
        assert all(attempt == 1 for _, attempt in final.values()), "a call was dialed twice"
        with sqlite3.connect(db_path) as conn:
            claims = conn.execute("SELECT call_id, COUNT(*) FROM call_event WHERE to_status = 'calling' "
                                  "GROUP BY call_id").fetchall()
        assert len(claims) == LIVE + QUEUED_EXTRA and all(count == 1 for _, count in claims)
    finally:
        app.kill()
        app.wait()

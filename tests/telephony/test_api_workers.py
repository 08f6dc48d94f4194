"""API_WORKERS=2 (PostgreSQL) through app.py's own forking path against the simulator (issues 12 and 13).

Every worker is a whole instance (calls/ownership.py): a hangup and a SIP account creation sent to the forked
child work, whichever process owns the node's events. When the first process is SIGKILLed the child takes the
node over and goes on controlling its calls.
"""
import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import uuid
from urllib.parse import urlparse

import psycopg2
import pytest
from cryptography.fernet import Fernet

from fsconf.provision import account_paths
from fssim import Simulator
from tests.conftest import POSTGRES_ADMIN_URL
from tests.observability.metrics_helpers import samples, value

from .conftest import RULES, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-esl"

@pytest.fixture
def database_url():
    """A database of its own: the app's dispatcher must see no other test's queued calls."""
    name = f"voxbridge_workers_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield urlparse(POSTGRES_ADMIN_URL)._replace(path=f"/{name}").geturl()
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def switch(tmp_path):
    simulator = Simulator("127.0.0.1", 0, PASSWORD, rules=RULES, heartbeat_interval=1.0).start()
    yield simulator
    simulator.stop()


class Worker:
    """One keep-alive connection: every request on it is served by the same API process."""

    def __init__(self, url: str, key: str):
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.number = self.request("GET", "/health/live")[1]["worker"]
        self.sock = self.conn.sock

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")

    def text(self, path: str) -> tuple[int, str]:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read().decode()

    def same_connection(self) -> bool:
        return self.conn.sock is self.sock


def _child_connection(url: str, key: str) -> Worker:
    """Connections are spread over the processes by the kernel: open them until one lands on a child."""
    for _ in range(200):
        worker = Worker(url, key)
        if worker.number != 0:
            return worker
        worker.conn.close()
    raise AssertionError("no connection reached a forked API worker in 200 tries")


def _cli(env, *args) -> str:
    done = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_forked_api_worker_hangs_up_and_provisions(switch, database_url, tmp_path):
    conf = tmp_path / "fsconf"
    shutil.copytree(ROOT / "freeswitch", conf)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FREESWITCH_", "DATABASE_", "API_"))},
           "DATABASE_URL": database_url, "API_WORKERS": "2", "API_PORT": "0",
           "FREESWITCH_ESL_HOST": f"127.0.0.1:{switch.port}", "FREESWITCH_ESL_PASSWORD": PASSWORD,
           "FREESWITCH_CONF_DIR": str(conf), "SIP_SECRET_KEY": Fernet.generate_key().decode(),
           "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0", "AUDIO_WS_LISTEN": "127.0.0.1:0", "VOICE_PIPELINE": "false",
           "WEB_CALL_LISTEN": "127.0.0.1:0",
           "LOG_LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    (tmp_path / "metrics").mkdir()
    key = _cli(env, "create-org", "Acme", "--caller-id", "+14155550000").split("store it now): ")[1].split()[0]
    log_path = tmp_path / "app.log"
    with open(log_path, "w") as out:
        app = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out)
    children = []
    try:
        url = wait_for(lambda: "listening on" in log_path.read_text()
                       and log_path.read_text().split("listening on ")[1].split()[0], 30)
        children = subprocess.run(["pgrep", "-P", str(app.pid), "-f", "app.py serve"], capture_output=True,
                                  text=True).stdout.split()  # API workers, not the offline recognizer's pool
        assert len(children) == 1
        child = _child_connection(url, key)
        assert child.request("POST", "/v1/agents", {"name": "A", "direction": "outbound"})[0] == 201
        ids = [child.request("POST", "/v1/calls/outbound", {"to": f"+1415555012{n}"})[1]["id"] for n in (1, 2)]
        wait_for(lambda: all(child.request("GET", f"/v1/calls/{i}")[1]["status"] == "in-progress" for i in ids), 30)
        ready = child.request("GET", "/health")
        assert ready[0] == 200 and [n["alive"] for n in ready[1]["freeswitch"]] == [True], ready
        # Either process may have dialed each call; the child reports both through the shared
        # PROMETHEUS_MULTIPROC_DIR (a BACKGROUND_JOB may follow the answer: wait for the count).
        wait_for(lambda: value(child.text("/metrics")[1], "voxbridge_dial_attempts_total", result="ok") == 2, 30)
        metrics = child.text("/metrics")[1]
        assert value(metrics, "voxbridge_esl_node_up", node=ready[1]["freeswitch"][0]["node"]) == 1, metrics
        assert sum(v for (name, _), v in samples(metrics).items() if name == "voxbridge_active_calls") == 2

        status, body = child.request("POST", f"/v1/calls/{ids[0]}/hangup")
        assert status == 202, body
        assert wait_for(lambda: child.request("GET", f"/v1/calls/{ids[0]}")[1]["status"] == "completed", 30)

        status, account = child.request("POST", "/v1/sip-accounts", {
            "name": "HQ PBX", "sip_server": "pbx.example.com:5060", "allowed_ips": "203.0.113.7"})
        assert status == 201 and account["provisioned"] is True, account
        assert (conf / account_paths(account["id"])["gateway"]).is_file()
        assert child.same_connection(), "the requests must all have been served by the child"

        # The first process dies: the child takes the node's events over and still hangs calls up.
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
        wait_for(lambda: [n.get("owned") for n in child.request("GET", "/health")[1]["freeswitch"]] == [True], 60)
        assert child.request("GET", f"/v1/calls/{ids[1]}")[1]["status"] == "in-progress"  # re-adopted
        status, body = child.request("POST", f"/v1/calls/{ids[1]}/hangup")
        assert status == 202, body
        assert wait_for(lambda: child.request("GET", f"/v1/calls/{ids[1]}")[1]["status"] == "completed", 30)
    finally:
        app.kill()
        app.wait()
        for pid in children:  # orphaned once the owner is killed
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

"""Issue 13: two app instances behind a real HAProxy running the shipped deploy/haproxy/haproxy.cfg (only its
addresses rewritten to this machine's ports), two FreeSWITCH simulators, one PostgreSQL database.

The nodes are told the load balancer's addresses (VOXBRIDGE_SOCKET_PUBLIC_ADDRESS, AUDIO_WS_PUBLIC_URL), so a
call's socket session and its audio stream land on whichever instance HAProxy picks, not necessarily the one
that dialed the call or owns its node. Every call must still be answered, hear its agent's greeting (the voice
session runs where the stream landed), and end once with its transcript.

Under load one call in eight used to stay in progress, never greeted: its socket reached the instance that had
dialed it (not the node's owner) just as the originate's job returned there; that instance let the call go while
the socket session read its row, so the session held a dropped LiveCall and never started the fork (fixed in
calls/inbound_socket.py; the losing order forced every run: tests/telephony/test_cross_instance.py). A failure
prints every call's events and the instances' log lines naming the calls not greeted.
"""
import pathlib
import re
import shutil
import subprocess

import pytest
import requests

from tests.conftest import POSTGRES_ADMIN_URL

from .scaleout_kit import ROOT, Api, Database, Instance, Switch, base_env, create_org, free_port, statuses, wait

pytestmark = pytest.mark.postgres

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SERVICES = {"8080": "api", "8084": "socket", "8085": "audio"}  # the shipped file's ports, by frontend


def render_haproxy(path: pathlib.Path, front: dict[str, int], backs: list[dict[str, int]]) -> pathlib.Path:
    """The shipped haproxy.cfg with its bind ports and its servers' addresses made local, and maxconn lowered to
    what this machine's open-file limit allows (haproxy refuses to start when it cannot raise it); nothing else
    changed."""
    text = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    text, count = re.subn(r"^    maxconn \d+$", "    maxconn 2000", text, flags=re.M)
    assert count == 1
    for port, service in SERVICES.items():
        text = text.replace(f"bind :{port}", f"bind 127.0.0.1:{front[service]}")

    def server(match: re.Match) -> str:
        index, port = int(match.group(1)) - 1, match.group(2)
        return f"server app{index + 1} 127.0.0.1:{backs[index][SERVICES[port]]} check"
    text, count = re.subn(r"server app(\d) 172\.28\.0\.\d+:(\d+) check", server, text)
    assert count == 6, "the shipped haproxy.cfg no longer names two instances on three ports"
    out = path / "haproxy.cfg"
    out.write_text(text)
    return out


def test_the_shipped_haproxy_config_is_valid():
    checked = subprocess.run([HAPROXY, "-c", "-f", str(ROOT / "deploy/haproxy/haproxy.cfg")], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_calls_behind_haproxy_run_their_voice_where_the_stream_lands(tmp_path):
    db = Database(POSTGRES_ADMIN_URL)  # several instances need PostgreSQL: without it this errors, never skips
    switches = [Switch(tmp_path), Switch(tmp_path)]
    front = {service: free_port() for service in SERVICES.values()}
    backs = [{service: free_port() for service in SERVICES.values()} for _ in range(2)]
    env = base_env(db, switches, VOICE_PIPELINE="true", LOG_LEVEL="INFO",
                   VOXBRIDGE_SOCKET_PUBLIC_ADDRESS=f"127.0.0.1:{front['socket']}",
                   AUDIO_WS_PUBLIC_URL=f"ws://127.0.0.1:{front['audio']}",
                   MEDIA_TOKEN_SECRET="scale-out-media-token-secret-0123456789")
    instances, lb = [], None
    try:
        key = create_org(env)
        for index, ports in enumerate(backs):
            instances.append(Instance({**env, "API_PORT": str(ports["api"]),
                                       "VOXBRIDGE_SOCKET_ADDRESS": f"127.0.0.1:{ports['socket']}",
                                       "AUDIO_WS_LISTEN": f"127.0.0.1:{ports['audio']}"},
                                      tmp_path / f"app-{index}.log"))
        lb = subprocess.Popen([HAPROXY, "-db", "-f", str(render_haproxy(tmp_path, front, backs))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api = Api(f"http://127.0.0.1:{front['api']}", key)
        wait(lambda: _get(f"{api.url}/health/live") == 200, 30, what="the API through HAProxy")
        names = {s.name for s in switches}
        wait(lambda: sorted(n for i in instances for n in i.owned()) == sorted(names), 60, what="nodes owned")
        assert api.post("/v1/agents", {"name": "A", "direction": "outbound",
                                       "greeting": "Hello from the clinic."}).status_code == 201
        ids = api.batch([f"+1415555{n:04d}" for n in range(8)])
        try:
            wait(lambda: _greeted(db) == 8, 45, what="8 calls answered and greeted")
        except AssertionError:
            raise AssertionError(f"not every call greeted:\n{_diagnostics(db, tmp_path)}") from None
        opened = [_streams_opened(tmp_path / f"app-{i}.log") for i in range(2)]
        assert sum(opened) == 8, opened
        assert min(opened) > 0, f"every stream landed on one instance: {opened}"
        for switch in switches:
            switch.hupall()
        wait(lambda: all(s == "completed" for s in statuses(db).values()), 60, what="all ended")
        ended = dict(db.query("SELECT call_id, COUNT(*) FROM webhook_delivery WHERE event_type = 'call.ended' "
                              "GROUP BY call_id"))
        assert set(ended) == set(ids) and sorted(ended.values()) == [1] * 8
    finally:
        if lb is not None:
            lb.kill()
            lb.wait()
        for instance in instances:
            instance.stop()
        for switch in switches:
            switch.stop()
        db.drop()


def _diagnostics(db: Database, tmp_path: pathlib.Path) -> str:
    """Every call's status, node and events timeline, and the instances' log lines naming the calls not greeted."""
    lines, lost = [], []
    for call_id, status, node, reason, transcript in db.query(
            "SELECT id, status, node, failure_reason, transcript FROM call ORDER BY id"):
        greeted = "Hello from the clinic." in (transcript or "")
        if not greeted:
            lost.append(call_id)
        lines.append(f"{call_id} {status} node={node} greeted={greeted} {reason or ''}")
        for at, reason_, data in db.query("SELECT created_at, reason, data FROM call_event WHERE call_id = %s "
                                          "ORDER BY id", (call_id,)):
            lines.append(f"    {at:%H:%M:%S.%f} {reason_} {data or ''}")
    for i in range(2):
        text = (tmp_path / f"app-{i}.log").read_text()
        lines.append(f"--- app-{i} (lines naming calls not greeted)")
        lines += [line for line in text.splitlines() if any(c in line for c in lost)][-40:]
    return "\n".join(lines)


def _get(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return 0


def _greeted(db: Database) -> int:
    """Calls whose transcript holds the agent's greeting: their voice session ran and spoke into the call. Any
    status: under load the first calls can reach the agent's silence timeout (it ends them) before the last is
    answered."""
    rows = db.query("SELECT transcript FROM call")
    return sum("Hello from the clinic." in (text or "") for (text,) in rows)


def _streams_opened(log: pathlib.Path) -> int:
    return len(re.findall(r"audio stream open from", log.read_text()))

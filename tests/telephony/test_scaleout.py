"""Issue 13: two app instances (separate processes) and two FreeSWITCH simulators (their own processes) on one
PostgreSQL database. Each node's events are owned by one instance (an advisory lock); any instance dials and
controls any call; when the owner is SIGKILLed the other takes its nodes and re-adopts their calls.

Everything is decided by polling the database, /health and the simulators' channels, with generous bounds.
"""
import json
import wave

import numpy as np
import pytest
import requests

from tests.conftest import POSTGRES_ADMIN_URL

from .scaleout_kit import Api, Database, Instance, Switch, base_env, create_org, free_port, statuses, wait

pytestmark = pytest.mark.postgres
GREETING = "Hello, this is Acme calling about your appointment."


@pytest.fixture
def answer_after() -> float:
    return 0.1


@pytest.fixture
def cluster(tmp_path, answer_after):
    """Two simulators, two instances, one organization; yields (db, switches, instances, api per instance)."""
    db = Database(POSTGRES_ADMIN_URL)  # several instances need PostgreSQL: without it this errors, never skips
    switches = [Switch(tmp_path, answer_after), Switch(tmp_path, answer_after)]
    env = base_env(db, switches)
    instances = []
    try:
        key = create_org(env)
        instances = [Instance(env, tmp_path / "app-0.log"), Instance(env, tmp_path / "app-1.log")]
        names = {s.name for s in switches}
        # Every node owned by exactly one instance.
        wait(lambda: sorted(n for i in instances for n in i.owned()) == sorted(names), 60, what="nodes owned")
        apis = [Api(i.url, key) for i in instances]
        reply = apis[0].post("/v1/agents", {"name": "A", "direction": "outbound"})
        assert reply.status_code == 201, reply.text
        yield db, switches, instances, apis
    finally:
        for instance in instances:
            instance.stop()
        for switch in switches:
            switch.stop()
        db.drop()


def _numbers(start: int, count: int) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(start, start + count)]


def _claims(db) -> dict[str, int]:
    return dict(db.query("SELECT call_id, COUNT(*) FROM call_event WHERE to_status = 'calling' GROUP BY call_id"))


def _ended(db) -> dict[str, int]:
    return dict(db.query("SELECT call_id, COUNT(*) FROM webhook_delivery WHERE event_type = 'call.ended' "
                         "GROUP BY call_id"))


def _in_progress(db) -> int:
    return sum(s == "in-progress" for s in statuses(db).values())


def test_calls_through_either_instance_are_dialed_once_over_both_nodes_and_controlled_from_the_other(cluster):
    db, switches, instances, apis = cluster
    apis[0].batch(_numbers(0, 20))
    apis[1].batch(_numbers(100, 20))
    wait(lambda: _in_progress(db) == 40, what="40 calls answered")
    # Dialed once: one claim per call, one channel per call over the two simulators.
    assert sorted(_claims(db).values()) == [1] * 40
    wait(lambda: sum(s.channels() for s in switches) == 40, what="40 channels")
    per_node = dict(db.query("SELECT node, COUNT(*) FROM call GROUP BY node"))
    assert set(per_node) == {s.name for s in switches} and min(per_node.values()) > 0, per_node

    # A hangup and a transfer sent to the instance that does not own the call's node.
    owner_of = {name: index for index, inst in enumerate(instances) for name in inst.owned()}
    rows = db.query("SELECT id, node FROM call WHERE status = 'in-progress' ORDER BY id")
    hang_id, hang_node = rows[0]
    other = apis[1 - owner_of[hang_node]]
    assert other.post(f"/v1/calls/{hang_id}/hangup").status_code == 202
    wait(lambda: statuses(db)[hang_id] == "completed", what="the hangup through the non-owner ends the call")
    xfer_id, xfer_node = rows[1]
    other = apis[1 - owner_of[xfer_node]]
    reply = other.post(f"/v1/calls/{xfer_id}/transfer", {"to": "+14155559999", "mode": "bridge"})
    assert reply.status_code == 202, reply.text
    reasons = [r for (r,) in db.query("SELECT reason FROM call_event WHERE call_id = %s", (xfer_id,))]
    assert any(r.startswith("transfer (bridge) to +14155559999: +OK") for r in reasons), reasons

    for switch in switches:
        switch.hupall()
    wait(lambda: all(s in ("completed", "failed", "canceled") for s in statuses(db).values()), what="all ended")
    assert sorted(_ended(db).values()) == [1] * 40  # call.ended once per call
    assert sorted(_claims(db).values()) == [1] * 40  # nothing dialed again


def test_sigkill_of_a_nodes_owner_during_50_live_calls(cluster):
    db, switches, instances, apis = cluster
    apis[0].batch(_numbers(0, 25))
    apis[1].batch(_numbers(100, 25))
    wait(lambda: _in_progress(db) == 50, what="50 calls answered")
    victim = next(i for i, inst in enumerate(instances) if inst.owned())
    taken = instances[victim].owned()
    survivor = instances[1 - victim]
    before = survivor.owned()
    instances[victim].kill()
    # The survivor takes the dead instance's nodes and reconciles them.
    wait(lambda: survivor.owned() == before | taken, 60, what="the survivor owns the killed instance's nodes")
    # Every call re-adopted (the simulators still carry them) or closed with a reason.
    wait(lambda: all(s != "calling" and s != "ringing" for s in statuses(db).values()), what="no call half-way")
    for call_id, status, reason in db.query("SELECT id, status, failure_reason FROM call"):
        assert status == "in-progress" or reason, (call_id, status)
    assert _in_progress(db) == 50  # none was lost: the channels are all still up
    # The survivor drives them: hanging up on the switches ends every call, billed, once.
    for switch in switches:
        switch.hupall()
    wait(lambda: all(s == "completed" for s in statuses(db).values()), what="all completed")
    assert sorted(_ended(db).values()) == [1] * 50
    assert sorted(_claims(db).values()) == [1] * 50
    billed = db.query("SELECT COUNT(*) FROM call WHERE billed_minutes >= 1")[0][0]
    assert billed == 50
    used = db.query("SELECT minutes_used FROM organization")[0][0]
    assert used == db.query("SELECT SUM(billed_minutes) FROM call")[0][0]  # billed once per call


@pytest.mark.parametrize("answer_after", [3.0])
def test_sigkill_of_the_owner_while_calls_are_being_dialed_dials_none_twice(cluster):
    """Killed while calls are claimed, being originated and ringing: the survivor adopts the channels that
    exist, leaves the ones that may still be in flight for a second look, requeues what was never sent."""
    db, switches, instances, apis = cluster
    apis[0].batch(_numbers(0, 30))
    apis[1].batch(_numbers(100, 30))
    wait(lambda: sum(s in ("calling", "ringing") for s in statuses(db).values()) >= 20, what="calls being dialed")
    victim = next(i for i, inst in enumerate(instances) if inst.owned())
    survivor = instances[1 - victim]
    instances[victim].kill()
    wait(lambda: len(survivor.owned()) == 2, 60, what="the survivor owns both nodes")
    # Every call ends up answered: adopted, or requeued and dialed by the survivor; none dialed twice.
    try:
        wait(lambda: _in_progress(db) == 60, 180, what="all 60 calls answered")
    except AssertionError:  # say which calls and why, from their timelines
        stuck = db.query("SELECT c.id, c.status, e.reason FROM call c JOIN call_event e ON e.call_id = c.id "
                         "WHERE c.status <> 'in-progress' ORDER BY c.id, e.id")
        raise AssertionError(f"not all answered: {stuck}") from None
    wait(lambda: sum(s.channels() for s in switches) == 60, what="60 channels")
    again = db.query("SELECT c.id, c.node, e.reason, e.created_at FROM call c JOIN call_event e ON e.call_id = c.id "
                     "WHERE c.attempt <> 1 ORDER BY c.id, e.id")
    assert not again, f"dialed again: {again}"
    requeued = dict(db.query("SELECT call_id, COUNT(*) FROM call_event WHERE reason LIKE 'requeued:%%' "
                             "GROUP BY call_id"))
    for call_id, claims in _claims(db).items():
        assert claims == 1 + requeued.get(call_id, 0), call_id  # claimed again only when given back unsent
    for switch in switches:
        switch.hupall()
    wait(lambda: all(s == "completed" for s in statuses(db).values()), what="all completed")
    assert sorted(_ended(db).values()) == [1] * 60
    used = db.query("SELECT minutes_used FROM organization")[0][0]
    assert used == db.query("SELECT SUM(billed_minutes) FROM call")[0][0] == 60


@pytest.fixture
def voice_cluster(tmp_path):
    """Two instances with the voice pipeline (offline providers) on one simulator, sharing MEDIA_TOKEN_SECRET.
    Instance 0 owns the node and, its dispatcher idle for a minute after its first pass, leaves the dialing to
    instance 1, whose AUDIO_WS_PUBLIC_URL names instance 0's audio server (a load balancer's stand-in): a call
    is dialed by 1 (which holds its socket and asks for the stream) and its audio lands on 0.
    Yields (db, switch, instances, api per instance)."""
    db = Database(POSTGRES_ADMIN_URL)
    switch = Switch(tmp_path)
    audio = free_port()
    (tmp_path / "recordings").mkdir()  # the simulator writes recordings into an existing directory
    instances = []
    try:
        common = {"VOICE_PIPELINE": "true", "MEDIA_TOKEN_SECRET": "a-secret-shared-by-every-instance",
                  "LOG_LEVEL": "INFO", "RECORDINGS_DIR": str(tmp_path / "recordings")}
        owner_env = base_env(db, [switch], **common, AUDIO_WS_LISTEN=f"127.0.0.1:{audio}",
                             AUDIO_WS_PUBLIC_URL=f"ws://127.0.0.1:{audio}", DISPATCH_INTERVAL="60")
        dialer_env = base_env(db, [switch], **common, AUDIO_WS_LISTEN=f"127.0.0.1:{free_port()}",
                              AUDIO_WS_PUBLIC_URL=f"ws://127.0.0.1:{audio}")
        key = create_org(owner_env)
        instances.append(Instance(owner_env, tmp_path / "app-0.log"))
        wait(lambda: instances[0].owned() == {switch.name}, 60, what="instance 0 owns the node")
        instances.append(Instance(dialer_env, tmp_path / "app-1.log"))
        wait(lambda: instances[1].health().get("freeswitch") and not instances[1].owned(), 60,
             what="instance 1 up")
        apis = [Api(i.url, key) for i in instances]
        # The default settings (a streamed voice), and a recording: its right channel is what the far end heard.
        reply = apis[0].post("/v1/agents", {"name": "A", "direction": "outbound", "greeting": GREETING,
                                            "settings": {"record": True}})
        assert reply.status_code == 201, reply.text
        yield db, switch, instances, apis
    finally:
        for instance in instances:
            instance.stop()
        switch.stop()
        db.drop()


def test_a_voice_call_runs_on_the_instance_its_audio_lands_on_and_is_hung_up_through_the_dialer(voice_cluster):
    db, switch, instances, apis = voice_cluster
    owner, dialer = instances
    created = apis[0].post("/v1/calls/outbound", {"to": "+14155550123"})
    assert created.status_code in (200, 201, 202), created.text
    call_id = created.json()["id"]
    wait(lambda: statuses(db).get(call_id) == "in-progress", what="the call answered")
    opened = f"call {call_id}: audio stream open"
    wait(lambda: opened in owner.log_path.read_text(), what="the audio stream open on instance 0")
    assert opened not in dialer.log_path.read_text()

    def transcript() -> list:
        [(turns,)] = db.query("SELECT transcript FROM call WHERE id = %s", (call_id,))
        return json.loads(turns) if isinstance(turns, str) else turns

    # The scripted agent's opening line (its greeting), spoken by the session on instance 0.
    wait(lambda: [t["text"] for t in transcript()][:1] == [GREETING], what="the agent's greeting")
    assert apis[1].post(f"/v1/calls/{call_id}/hangup").status_code == 202
    wait(lambda: statuses(db)[call_id] == "completed", what="the hangup through the dialer ends the call")
    assert _ended(db) == {call_id: 1}
    [(payload,)] = db.query("SELECT payload FROM webhook_delivery WHERE event_type = 'call.ended'")
    ended = json.loads(payload)["data"]
    assert ended["transcript"] == transcript() and ended["transcript"]
    wait(lambda: switch.channels() == 0, what="the channel gone")
    assert _claims(db) == {call_id: 1}
    assert [_dialed(i) for i in instances] == [0, 1]  # dialed by instance 1 (its /metrics)
    [(path,)] = db.query("SELECT recording_path FROM call WHERE id = %s", (call_id,))
    assert _heard_ms(path) > 1000  # the greeting (~3 s of speech) streamed by instance 0 reached the far end


def _heard_ms(path: str) -> float:
    """Milliseconds of sound (not silence) on the recording's right channel: what the far end heard."""
    with wave.open(path) as wav:
        assert wav.getnchannels() == 2
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return float(np.count_nonzero(np.abs(frames[:, 1].astype(np.int32)) > 300)) * 1000 / rate


def _dialed(instance) -> float:
    """How many originates this instance sent that FreeSWITCH accepted (its /metrics)."""
    text = requests.get(f"{instance.url}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('voxbridge_dial_attempts_total{result="ok"}'))

"""Supervisor: reconnect with backoff, resubscribe, reconciliation hook, HEARTBEAT load (pick: test_nodes.py)."""
import random

import gevent
import pytest

from esl.connection import State
from esl.supervisor import AUDIO_FORK_SUBCLASSES, CALL_EVENTS, EslSupervisor, backoff_delay
from tests.esl.captures import s2c
from tests.esl.fakeserver import FakeEsl

HEARTBEAT = [f for f in s2c("heartbeat-filter-log") if '"HEARTBEAT"' in f][0]


def _heartbeat(sessions: int, maximum: int) -> str:
    body = HEARTBEAT.split("\n\n", 1)[1].replace('"Session-Count":"2"', f'"Session-Count":"{sessions}"') \
        .replace('"Max-Sessions":"1000"', f'"Max-Sessions":"{maximum}"')
    return f"Content-Length: {len(body)}\nContent-Type: text/event-json\n\n{body}"


def _until(predicate, timeout=3.0):
    with gevent.Timeout(timeout):
        while not predicate():
            gevent.sleep(0.01)


@pytest.fixture
def server():
    fake = FakeEsl().start()
    yield fake
    fake.stop()


def test_backoff_grows_exponentially_with_jitter_and_caps():
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(5.0, 0.1 * 2 ** attempt)
        values = [backoff_delay(attempt, 0.1, 5.0, rng) for _ in range(50)]
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(set(values)) > 1  # jittered
    assert backoff_delay(1000, 0.1, 5.0) <= 5.0


def test_reconnects_resubscribes_and_runs_hook_after_drop(server):
    hooks = []
    sup = EslSupervisor("127.0.0.1", server.port, "ClueCon", on_connected=hooks.append,
                        backoff_initial=0.05, backoff_max=0.2, connect_timeout=1, command_timeout=1).start()
    try:
        assert sup.wait_ready(30)
        subscription = "event json " + " ".join(CALL_EVENTS) + " CUSTOM " + " ".join(AUDIO_FORK_SUBCLASSES)
        assert server.commands("event") == [subscription]
        _until(lambda: len(hooks) == 1)
        server.drop()
        _until(lambda: sup.connects == 2 and sup.connection.state is State.READY)
        assert server.commands("event") == [subscription, subscription]
        assert server.commands("auth") == ["auth ClueCon", "auth ClueCon"]
        _until(lambda: len(hooks) == 2)
        assert hooks == [sup.connection, sup.connection]
    finally:
        sup.stop()
    assert sup.connection.state is State.CLOSED


def test_keeps_retrying_while_the_server_is_down():
    server = FakeEsl().start()
    port = server.port
    server.stop()
    sup = EslSupervisor("127.0.0.1", port, "ClueCon", backoff_initial=0.02, backoff_max=0.1, connect_timeout=0.5)
    sup.start()
    try:
        gevent.sleep(0.3)
        assert not sup.alive and sup.connects == 0
        from gevent.server import StreamServer
        revived = FakeEsl()
        revived.server = StreamServer(("127.0.0.1", port), revived._handle)
        revived.start()
        try:
            assert sup.wait_ready(30)
            assert sup.alive
        finally:
            sup.stop()
            revived.stop()
    finally:
        sup.stop()


def test_heartbeat_load_and_liveness(server):
    sup = EslSupervisor("127.0.0.1", server.port, "ClueCon", heartbeat_timeout=0.4, backoff_initial=0.05,
                        backoff_max=0.1).start()
    try:
        assert sup.wait_ready(30)
        server.push(_heartbeat(7, 100))
        _until(lambda: sup.load.session_count == 7)
        assert sup.load.max_sessions == 100 and sup.load.session_count == 7 and sup.alive
        # No further heartbeat: the node is declared dead and reconnected.
        _until(lambda: sup.connects >= 2)
        assert len(server.commands("auth")) >= 2
    finally:
        sup.stop()

"""A FreeSWITCH simulator, a call controller connected to it, and the API wired to both."""
import contextlib

import pytest

from fssim import Rule, Rules, Simulator

from .scaleout_kit import wait

RULES = Rules([
    Rule(r"0486$", "busy", after=0.2),
    Rule(r"0408$", "no_answer", after=0.3),
    Rule(r"0404$", "unallocated"),
    Rule(r"0503$", "temporary_failure"),
    Rule(r"0100$", "answer", after=0.2, hangup_after=0.5),
    Rule(r"0777$", "answer", after=60),  # rings until the originate timeout (or a hangup)
], default=Rule(".*", "answer", after=0.1, hangup_after=30))


@pytest.fixture
def sim():
    simulator = Simulator("127.0.0.1", 0, "s3cret-esl", rules=RULES, heartbeat_interval=1.0).start()
    simulator.registry.add_gateway("carrier1", proxy="198.51.100.7")
    yield simulator
    simulator.stop()


class _RecordingSocket:
    def __init__(self, sock, sink: list):
        self._sock, self._sink = sock, sink

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        self._sink.append(data)
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.fixture
def received(monkeypatch):
    """Every byte the simulator reads from its clients (ESL and outbound-socket sessions), in order.

    Request it before `controller` so the controller's connection is recorded from its first byte."""
    from fssim import wire

    sink: list[bytes] = []
    original = wire.CommandReader.__init__

    def recording_init(self, sock, *args, **kwargs):
        original(self, _RecordingSocket(sock, sink), *args, **kwargs)

    monkeypatch.setattr(wire.CommandReader, "__init__", recording_init)
    return sink


def commands_received(sink: list) -> list[str]:
    """The received bytes split into commands (each ends with a blank line)."""
    text = b"".join(sink).decode("latin-1")
    return [c for c in text.split("\n\n") if c.strip()]


@pytest.fixture
def telephony_env(sim):
    """Calls leave through the `carrier1` gateway (sofia, so SIP codes are reported)."""
    return {"FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port}", "FREESWITCH_ESL_PASSWORD": "s3cret-esl",
            "RETRY_BACKOFF": "0", "CALLS_PER_SECOND": "200", "ORIGINATE_TIMEOUT": "5", "OUTBOUND_GATEWAY": "carrier1",
            "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0", "AUDIO_WS_LISTEN": "127.0.0.1:0"}


@pytest.fixture
def telephony_config(telephony_env):
    from config import load_config

    return load_config(telephony_env, webhook_allow_private=True, rate_limit_per_minute=100_000)


@contextlib.contextmanager
def running_controller(config):
    """A started call controller, connected and reconciled (no dialing happens before that)."""
    from calls.controller import build_telephony

    control, _ = build_telephony(config)
    control.start()
    try:
        # Generous bounds: the first test of a pytest process runs while the other processes are still
        # collecting on the same two cores; an idle machine is ready in a few milliseconds.
        assert control.pool.wait_ready(30), "the controller did not connect to the simulator within 30 s"
        wait_for(lambda: control.reconciled, timeout=30)
        yield control
    finally:
        control.stop()


@pytest.fixture
def controller(db, telephony_config):
    with running_controller(telephony_config) as control:
        yield control


@pytest.fixture
def caller_org(org):
    org.default_caller_id = "+14155550000"
    org.save()
    return org


def wait_for(predicate, timeout=10.0, interval=0.05):
    return wait(predicate, timeout, interval)

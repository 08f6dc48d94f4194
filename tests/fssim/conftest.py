"""Fixtures for the simulator tests: an in-process simulator, an ESL test client, live-switch targeting.

With FREESWITCH_ESL_HOST set (host, host:port, or a comma-separated list: the first node is used;
FREESWITCH_ESL_PORT and FREESWITCH_ESL_PASSWORD as the app reads them, password default ClueCon),
the protocol-level tests (those that take `target`, `esl`, `esl_raw`, `answer_dial`, `busy_dial`)
run against that switch, and the tests that need the simulator's own controls (rules, far-end
hangup, restarts, inbound calls: anything taking the `sim` fixture) skip and say so. Without it,
everything runs against the simulator. See tests/esl/test_live.py for the how-to.
"""
import os
import pathlib

import pytest

from fssim import Rule, Rules, Simulator
from tests.fssim.eslclient import EslClient

# Reference material beside the clone, not part of it: only the extra conformance run uses it.
CONFORMANCE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "freeswitch" / "conformance.py"
SIM_ONLY = "FREESWITCH_ESL_HOST is set: this test needs the simulator's own controls, not a live FreeSWITCH"
# Dial strings for calls on a live switch: one that answers, one that is busy. The defaults are the
# ones the vanilla configuration answers (conformance.py passes 78/78 with them).
ANSWER_DIAL = os.environ.get("FREESWITCH_LIVE_ANSWER_DIAL", "loopback/9196/default")
BUSY_DIAL = os.environ.get("FREESWITCH_LIVE_BUSY_DIAL", "error/user_busy")


def _live_target() -> tuple[str, int, str] | None:
    """(host, port, password) of the first node in FREESWITCH_ESL_HOST, parsed by the app's own config."""
    if not os.environ.get("FREESWITCH_ESL_HOST", "").strip():
        return None
    from config import load_config

    env = {k: os.environ[k] for k in ("FREESWITCH_ESL_HOST", "FREESWITCH_ESL_PORT", "FREESWITCH_ESL_PASSWORD")
           if os.environ.get(k)}
    env.setdefault("FREESWITCH_ESL_PASSWORD", "ClueCon")
    config = load_config(env)  # a malformed value fails here with the config's own message
    node = config.esl_nodes[0]
    return node.host, node.port, config.esl_password


LIVE = _live_target()

TEST_RULES = Rules([
    Rule(r"486$", "busy"),
    Rule(r"487$", "no_answer", after=1.0),
    Rule(r"603$", "rejected"),
    Rule(r"404$", "unallocated"),
    Rule(r"503$", "temporary_failure"),
    Rule(r"^2", "answer", after=0.3),
    Rule(r"^3", "answer", hangup_after=0.5),
])


@pytest.fixture
def sim(tmp_path):
    if LIVE:
        pytest.skip(SIM_ONLY)
    s = Simulator("127.0.0.1", 0, "ClueCon", rules=TEST_RULES, heartbeat_interval=0.3, tmp_dir=str(tmp_path))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def target(request):
    """(host, port, password) of the switch under test: live if FREESWITCH_ESL_HOST is set."""
    if LIVE:
        return LIVE
    s = request.getfixturevalue("sim")
    return "127.0.0.1", s.port, "ClueCon"


@pytest.fixture
def answer_dial():
    """A dial string that answers: the simulator's default rule, or FREESWITCH_LIVE_ANSWER_DIAL."""
    return ANSWER_DIAL if LIVE else "sofia/external/15551230001@127.0.0.1:5099"


@pytest.fixture
def busy_dial():
    """A dial string that fails USER_BUSY: the simulator's 486 rule, or FREESWITCH_LIVE_BUSY_DIAL."""
    return BUSY_DIAL if LIVE else "sofia/external/15551230486@127.0.0.1:5099"


@pytest.fixture
def esl(target):
    c = EslClient.connect(*target[:2])
    c.auth(target[2])
    yield c
    c.close()


def live_only():
    return pytest.mark.skipif(not LIVE, reason="FREESWITCH_ESL_HOST is not set: no live FreeSWITCH to test against")


@pytest.fixture
def esl_raw(target):
    """Connections to the switch under test, before auth (the greeting is the first frame)."""
    opened = []

    def make(_sim=None):
        c = EslClient.connect(*target[:2])
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


# ../shared/freeswitch/conformance.py is an extra run where the reference material exists; a clone on
# its own does not have it (its checks are the project's own in test_conformance_checks.py).
collect_ignore = [] if CONFORMANCE.exists() else ["test_conformance.py"]

"""Fixtures for the simulator tests: an in-process simulator, an ESL test client, live-switch targeting.

With FREESWITCH_ESL_HOST set (and _PORT, _PASSWORD), the tests marked live_freeswitch run against
that switch instead of the simulator; otherwise tests that need the live switch skip with that reason.
"""
import os
import pathlib

import pytest

from fssim import Rule, Rules, Simulator
from tests.fssim.eslclient import EslClient

CONFORMANCE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "freeswitch" / "conformance.py"
LIVE = os.environ.get("FREESWITCH_ESL_HOST")

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
    s = Simulator("127.0.0.1", 0, "ClueCon", rules=TEST_RULES, heartbeat_interval=0.3, tmp_dir=str(tmp_path))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def target(request):
    """(host, port, password) of the switch under test: live if FREESWITCH_ESL_HOST is set."""
    if LIVE:
        return LIVE, int(os.environ.get("FREESWITCH_ESL_PORT", "8021")), os.environ.get("FREESWITCH_ESL_PASSWORD",
                                                                                       "ClueCon")
    s = request.getfixturevalue("sim")
    return "127.0.0.1", s.port, "ClueCon"


@pytest.fixture
def esl(target):
    c = EslClient.connect(*target[:2])
    c.auth(target[2])
    yield c
    c.close()


def live_only():
    return pytest.mark.skipif(not LIVE, reason="FREESWITCH_ESL_HOST is not set: no live FreeSWITCH to test against")


@pytest.fixture
def esl_raw():
    opened = []

    def make(s):
        c = EslClient.connect("127.0.0.1", s.port)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()

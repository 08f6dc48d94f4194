"""The ESL suite against a live FreeSWITCH. Without FREESWITCH_ESL_HOST these tests skip and say why.

How to run the ESL suite against a real switch (FreeSWITCH 1.10, mod_event_socket reachable):

    FREESWITCH_ESL_HOST=fs.example.net:8021 FREESWITCH_ESL_PASSWORD=ClueCon \
    FREESWITCH_LIVE_ANSWER_DIAL=loopback/9196/default FREESWITCH_LIVE_BUSY_DIAL=error/user_busy \
    .venv/bin/python -m gevent.monkey --module pytest -q -p no:cacheprovider tests/esl/test_live.py tests/fssim

- FREESWITCH_ESL_HOST is read by the app's own config parser: host, host:port, or a comma-separated
  list (the first node is tested); FREESWITCH_ESL_PORT is the port of nodes given without one;
  FREESWITCH_ESL_PASSWORD defaults to ClueCon here.
- FREESWITCH_LIVE_ANSWER_DIAL / FREESWITCH_LIVE_BUSY_DIAL: a dial string that answers and one that
  fails USER_BUSY (defaults: the vanilla configuration's, the ones conformance.py passes 78/78 with).
- Runs live: the tests here, tests/fssim's protocol-level tests (framing, auth, api replies, bgapi,
  events, filters, cause mapping, capture-shape checks) and conformance.py. Skipped with a stated
  reason: tests that need the simulator's own controls (answer rules, far-end hangup, restarts,
  inbound calls, the simulator's registry and dialplan), i.e. everything taking the `sim` fixture.
"""
import uuid

import pytest

from esl import commands as c
from esl.connection import EslConnection
from esl.supervisor import EslSupervisor
from tests.fssim.conftest import LIVE

pytestmark = [pytest.mark.live_freeswitch,
              pytest.mark.skipif(not LIVE, reason="FREESWITCH_ESL_HOST is not set: no live FreeSWITCH to test")]


def _target():
    return LIVE


def test_live_api_and_failed_originate_job():
    host, port, password = _target()
    with EslConnection(host, port, password, connect_timeout=5, command_timeout=10) as conn:
        conn.subscribe(["BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE"])
        assert conn.api(c.status()).startswith("UP ")
        assert conn.api(c.uuid_exists(str(uuid.uuid4()))) == "false"
        call = c.originate(c.loopback_dial("4915550000000", "no_such_context_vb"), c.park_app(),
                           origination_uuid=str(uuid.uuid4()), timeout_s=5)
        result = conn.wait_job(conn.bgapi(call), timeout=15)
        assert not result.job_ok and result.job_result


def test_live_supervisor_connects_and_subscribes():
    host, port, password = _target()
    sup = EslSupervisor(host, port, password).start()
    try:
        assert sup.wait_ready(10)
        assert sup.connection.subscription is not None
    finally:
        sup.stop()

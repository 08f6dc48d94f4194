"""The client against a live FreeSWITCH, when FREESWITCH_ESL_HOST is set (host or host:port; password from
FREESWITCH_ESL_PASSWORD, default ClueCon). Without it these tests skip and say why."""
import os
import uuid

import pytest

from esl import commands as c
from esl.connection import EslConnection
from esl.supervisor import EslSupervisor

HOST = os.environ.get("FREESWITCH_ESL_HOST", "").split(",")[0].strip()
pytestmark = [pytest.mark.live_freeswitch,
              pytest.mark.skipif(not HOST, reason="FREESWITCH_ESL_HOST is not set: no live FreeSWITCH to test")]


def _target():
    host, _, port = HOST.partition(":")
    return host, int(port or os.environ.get("FREESWITCH_ESL_PORT", "8021")), \
        os.environ.get("FREESWITCH_ESL_PASSWORD", "ClueCon")


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

"""The far end's SIP status on the default route (loopback into voxbridge_outbound, as bin/serve dials).

There the SIP leg is bridged from the loopback B-leg: FreeSWITCH puts the far end's status on the B-leg
(sip_invite_failure_status, last_bridge_proto_specific_hangup_cause), never on the A-leg the call is driven
by. The call and its call.ended carry the code the far end gave, and a reason names a SIP status only then.
"""
import json

import pytest

from calls.controller import CallController
from calls.dispatcher import Dispatcher
from calls.live_call import LiveCall
from models import Call, WebhookDelivery

from .conftest import running_controller, wait_for


@pytest.fixture
def loopback_controller(db, telephony_env):
    from config import load_config

    env = {k: v for k, v in telephony_env.items() if k != "OUTBOUND_GATEWAY"}  # the default route
    config = load_config(env, webhook_allow_private=True)
    assert config.outbound_gateway == ""
    with running_controller(config) as control:
        yield control


def _call(org, agent, number):
    from models import utcnow

    return Call.create(organization=org, agent=agent, direction="outbound", to_number=number,
                       from_number="+14155550000", max_attempts=1, next_attempt_at=utcnow()).id


def _ended(call_id):
    [row] = WebhookDelivery.select().where(WebhookDelivery.call_id == call_id,
                                           WebhookDelivery.event_type == "call.ended")
    return json.loads(row.payload)["data"]


@pytest.mark.parametrize("number,status,cause,code", [("+14155550486", "busy", "USER_BUSY", 486),
                                                      ("+14155550404", "failed", "UNALLOCATED_NUMBER", 404)])
def test_a_refusal_on_the_default_route_records_the_far_ends_sip_code(loopback_controller, sim, caller_org,
                                                                      outbound_agent, number, status, cause, code):
    call_id = _call(caller_org, outbound_agent, number)
    assert Dispatcher(loopback_controller).run_once().claimed == 1
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status == status and c)
    assert sim.switch.originated[-1][1].startswith("{") and "loopback/" in sim.switch.originated[-1][1]
    assert (call.hangup_cause, call.sip_code) == (cause, code)
    assert f"SIP {code}" in call.failure_reason
    data = _ended(call_id)
    assert (data["status"], data["hangup_cause"], data["sip_code"]) == (status, cause, code)


def test_a_far_end_hangup_on_the_default_route_records_its_bye(loopback_controller, sim, caller_org,
                                                               outbound_agent):
    call_id = _call(caller_org, outbound_agent, "+14155550100")  # answers, the far end hangs up after 0.5 s
    assert Dispatcher(loopback_controller).run_once().claimed == 1
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)
    assert (call.sip_code, _ended(call_id)["sip_code"]) == (200, 200)


def test_no_sip_code_is_invented_from_a_cause(db, caller_org, outbound_agent):
    """A cause alone (a dialplan rejection, a -ERR job) leaves sip_code null, and the reason names no SIP status."""
    from config import load_config

    control = CallController(load_config({"FREESWITCH_ESL_HOST": "127.0.0.1:1", "FREESWITCH_ESL_PASSWORD": "pw"}),
                             pool=None)
    call_id = _call(caller_org, outbound_agent, "+14155550123")
    Call.update(status="calling", attempt=1).where(Call.id == call_id).execute()
    control.live[call_id] = LiveCall(call_id, caller_org.id, 1, "fs1")
    control.ending.end(call_id, "USER_BUSY", None)
    call = Call.get_by_id(call_id)
    assert (call.status, call.sip_code) == ("busy", None)
    assert call.failure_reason == "USER_BUSY: the called party is busy" and "SIP" not in call.failure_reason
    assert _ended(call_id)["sip_code"] is None

"""Hang-up, cancel and transfer through the API, end to end through the simulator."""
import json

import pytest

from calls.dispatcher import Dispatcher
from models import Call, CallEvent, WebhookDelivery

from .conftest import commands_received, running_controller, wait_for
from .test_inbound_calls import desk, socket_address  # noqa: F401 - the fixture is used by name
from .test_outbound_calls import final, queue_call, timeline

RINGS_LONG = "+14155550777"


def _client(control):
    from api import create_app

    return create_app(control.config, call_control=control).test_client()


def _ended_payloads():
    return [json.loads(d.payload)["data"] for d in
            WebhookDelivery.select().where(WebhookDelivery.event_type == "call.ended")]


@pytest.mark.parametrize("action", ["cancel", "hangup"])
def test_cancel_or_hangup_of_a_ringing_call_is_canceled_and_never_retried(controller, sim, caller_org,
                                                                         outbound_agent, auth, action):
    client = _client(controller)
    call_id = queue_call(client, auth, RINGS_LONG, max_attempts=3)
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "ringing")
    assert client.post(f"/v1/calls/{call_id}/{action}", headers=auth).status_code == 202
    call = final(call_id)
    assert (call.status, call.attempt, call.answered_at, call.billed_minutes) == ("canceled", 1, None, 0)
    assert "queued" not in [to for _, to in timeline(call_id)[1:]]  # never given back to the queue
    wait_for(lambda: sim.channel(call_id) is None)
    assert Dispatcher(controller).run_once().claimed == 0
    assert [p["status"] for p in _ended_payloads()] == ["canceled"]


def test_a_hangup_requested_before_a_restart_still_cancels(controller, sim, caller_org, outbound_agent, auth):
    """The request lives in the database: a controller that did not send it still ends the call canceled."""
    client = _client(controller)
    call_id = queue_call(client, auth, RINGS_LONG, max_attempts=3)
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "ringing")
    controller.hangup(Call.get_by_id(call_id), reason="canceled through the API")
    controller.live[call_id].hangup_requested = False  # what a restarted process would know: only the DB
    call = final(call_id)
    assert (call.status, call.attempt) == ("canceled", 1)


def test_hangup_of_an_answered_call_is_completed(controller, caller_org, outbound_agent, auth):
    client = _client(controller)
    call_id = queue_call(client, auth, "+14155550123", max_attempts=3)
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    assert client.post(f"/v1/calls/{call_id}/hangup", headers=auth).status_code == 202
    call = final(call_id)
    assert (call.status, call.billed_minutes) == ("completed", 1)


@pytest.mark.parametrize("path, body", [("hangup", None), ("cancel", None),
                                        ("transfer", {"to": "+14155550999", "mode": "bridge"})])
def test_call_control_while_freeswitch_is_down_is_503_and_changes_nothing(controller, sim, caller_org,
                                                                        outbound_agent, auth, path, body):
    client = _client(controller)
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    sim.stop()
    wait_for(lambda: not controller.pool.nodes[next(iter(controller.pool.nodes))].supervisor.alive)
    response = client.post(f"/v1/calls/{call_id}/{path}", json=body, headers=auth)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "telephony_unavailable"
    assert Call.get_by_id(call_id).status == "in-progress"
    assert not controller.live.hangup_requested(Call.get_by_id(call_id))  # the failed request was withdrawn


def test_transfer_of_a_call_driven_elsewhere_goes_to_its_node_and_one_on_no_node_is_409(controller, caller_org,
                                                                                        outbound_agent, auth):
    client = _client(controller)
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    controller.live.pop(call_id)  # driven by another instance: the row names its node, the command goes there
    response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+14155550999"}, headers=auth)
    assert response.status_code == 202, response.get_json()
    assert CallEvent.select().where(CallEvent.call == call_id,
                                    CallEvent.reason.startswith("transfer (bridge) to +14155550999: +OK")).exists()
    Call.update(node=None).where(Call.id == call_id).execute()  # live, but on no node anyone knows
    controller.live.pop(call_id, None)  # (its events had adopted it again: the row named this node)
    response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+14155550999"}, headers=auth)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "call_not_controlled"


def test_bridge_transfer_sets_the_outbound_dialplan_variables_before_uuid_transfer(received, controller, sim,
                                                                                  desk, org):  # noqa: F811
    channel = sim.inbound_call("+14155550100", socket_address(controller), caller="+442071838750")
    wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress")
    response = _client(controller).post(f"/v1/calls/{channel.uuid}/transfer", json={"to": "+14155550999"},
                                        headers=_auth_for(org))
    assert response.status_code == 202, response.get_json()
    sent = [c for c in commands_received(received) if c.startswith(("api uuid_setvar", "api uuid_transfer"))
            and channel.uuid in c]
    assert sent == [f"api uuid_setvar {channel.uuid} vb_caller_id +14155550100",
                    f"api uuid_setvar {channel.uuid} vb_country_code 1",
                    f"api uuid_setvar {channel.uuid} vb_international_enabled false",
                    f"api uuid_setvar {channel.uuid} vb_gateway carrier1",
                    f"api uuid_transfer {channel.uuid} +14155550999 XML voxbridge_transfer"]


def _auth_for(org):
    from models import ApiKey

    return {"Authorization": f"Bearer {ApiKey.issue(org)[1]}"}


def test_a_refused_bridge_transfer_is_an_api_error_and_the_call_stays(received, controller, sim, caller_org,
                                                                     outbound_agent, auth):
    client = _client(controller)
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    sim.switch.channels.pop(call_id)  # FreeSWITCH lost the channel; its events have not arrived yet
    response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+14155550999"}, headers=auth)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "transfer_failed" and "No such channel" in error["message"]
    assert not any(c.startswith("api uuid_transfer") for c in commands_received(received))  # stopped at -ERR
    reasons = [e.reason or "" for e in CallEvent.select().where(CallEvent.call == call_id)]
    assert any(r.startswith("transfer (bridge) to +14155550999: -ERR") for r in reasons)


def test_a_refused_refer_is_an_api_error_and_the_call_stays(db, sim, telephony_env, caller_org,
                                                                        outbound_agent, auth):
    from config import load_config

    # Loopback legs cannot be deflected (no SIP dialog): FreeSWITCH answers -ERR.
    config = load_config({**telephony_env, "OUTBOUND_GATEWAY": ""}, webhook_allow_private=True)
    with running_controller(config) as control:
        client = _client(control)
        call_id = queue_call(client, auth, "+14155550123")
        Dispatcher(control).run_once()
        wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
        response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+14155550999", "mode": "refer"},
                               headers=auth)
        assert response.status_code == 409 and response.get_json()["error"]["code"] == "transfer_failed"
        assert Call.get_by_id(call_id).status == "in-progress"


def test_a_call_canceled_between_its_claim_and_its_originate_slot_is_never_dialed(controller, sim, caller_org,
                                                                                 outbound_agent):
    """The dispatcher claims a tenth of a second of calls ahead and starts each in its slot: a cancel that
    lands in between closes the call, and its slot must not ring it."""
    from calls.queue import claim_due
    from tests.calls.factories import queued_calls

    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000")
    [call] = claim_due(1)
    controller.hangup(call, "canceled through the API")  # not driven here yet: closed at once
    controller.dial(call)
    wait_for(lambda: call_id not in controller.live)
    assert Call.get_by_id(call_id).status == "canceled"
    assert list(sim.switch.originated) == []

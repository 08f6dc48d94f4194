"""The outbound rules (calls/dialing.py) on every path a call leaves by, through the controller and the simulator.

Regression: with OUTBOUND_GATEWAY (or an organization's trunk) set, originate went straight to
sofia/gateway/... and skipped voxbridge_outbound, so a call to +44 20 7946 0000 was dialled and completed with
international calls off (seen on a real FreeSWITCH 1.10.12)."""
import pytest

from calls.dispatcher import Dispatcher
from models import Call, CallEvent, SipAccount, utcnow

from .conftest import commands_received, running_controller, wait_for
from .test_outbound_calls import final, queue_call

UK = "+442079460000"


def _client(control):
    from api import create_app

    return create_app(control.config, call_control=control).test_client()


@pytest.fixture(params=["gateway", "trunk", "default"])
def path_controller(request, db, received, sim, telephony_env, caller_org):
    """A controller whose calls leave by one path: the platform trunk (OUTBOUND_GATEWAY), the organization's
    provisioned SIP account, or the default loopback into voxbridge_outbound."""
    from config import load_config

    env = dict(telephony_env)
    if request.param == "default":
        env["OUTBOUND_GATEWAY"] = ""
    if request.param == "trunk":
        account = SipAccount.create(organization=caller_org, name="HQ", sip_server="pbx.example.com:5060",
                                    transport="udp", allowed_ips="203.0.113.7", provisioned=True)
        sim.registry.add_gateway(account.gateway_name, proxy="pbx.example.com:5060")
    with running_controller(load_config(env, webhook_allow_private=True)) as control:
        yield control


def originates(received):
    return [c for c in commands_received(received) if "originate" in c]


def test_an_international_call_is_refused_on_every_path_with_its_reason(path_controller, received, caller_org,
                                                                        outbound_agent, auth):
    call_id = queue_call(_client(path_controller), auth, UK, max_attempts=3)
    assert Dispatcher(path_controller).run_once().claimed == 1
    call = final(call_id)
    assert (call.status, call.attempt, call.hangup_cause) == ("failed", 1, "CALL_REJECTED")   # never retried
    assert call.failure_reason.startswith("not dialed (international_disabled): +442079460000 is outside")
    assert not originates(received)


def test_a_domestic_call_still_leaves_on_every_path(path_controller, received, caller_org, outbound_agent, auth):
    call_id = queue_call(_client(path_controller), auth, "+14155550100")
    Dispatcher(path_controller).run_once()
    assert final(call_id).status == "completed"
    assert len(originates(received)) == 1


def test_an_emergency_number_is_refused_on_every_path(path_controller, received, caller_org, outbound_agent):
    # The API refuses "911" as a number already; a call row holding one (older data, another writer) still
    # never reaches FreeSWITCH.
    call = Call.create(organization=caller_org, agent=outbound_agent, direction="outbound", to_number="911",
                       from_number=caller_org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    Dispatcher(path_controller).run_once()
    call = final(call.id)
    assert (call.status, call.hangup_cause) == ("failed", "CALL_REJECTED")
    assert call.failure_reason.startswith("not dialed (emergency): 911 is an emergency number")
    assert not originates(received)


def test_with_international_calls_on_the_gateway_dials_abroad(db, received, sim, telephony_env, caller_org,
                                                              outbound_agent, auth):
    from config import load_config

    with running_controller(load_config({**telephony_env, "INTERNATIONAL_CALLS": "true"},
                                        webhook_allow_private=True)) as control:
        client = _client(control)
        call_id = queue_call(client, auth, UK)
        Dispatcher(control).run_once()
        wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
        assert [o for o in originates(received) if f"sofia/gateway/carrier1/{UK}" in o]
        client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
        assert final(call_id).status == "completed"


@pytest.mark.parametrize("mode", ["bridge", "refer"])
def test_a_transfer_to_an_international_number_is_refused_before_freeswitch(controller, received, caller_org,
                                                                            outbound_agent, auth, mode):
    client = _client(controller)
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": UK, "mode": mode}, headers=auth)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "destination_refused" and "international calls are off" in error["message"]
    assert not [c for c in commands_received(received) if c.startswith(("api uuid_transfer", "api uuid_deflect",
                                                                        "api uuid_setvar"))]
    reasons = [e.reason or "" for e in CallEvent.select().where(CallEvent.call == call_id)]
    assert any(r.startswith(f"transfer ({mode}) to {UK} refused (international_disabled)") for r in reasons)
    assert Call.get_by_id(call_id).status == "in-progress"
    client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
    final(call_id)

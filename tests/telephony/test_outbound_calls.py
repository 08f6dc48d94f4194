"""Outbound calls end to end through the simulator: API -> queue -> originate -> events -> webhook."""
import json

from calls.dispatcher import Dispatcher
from models import Call, CallEvent, Organization, WebhookDelivery

from .conftest import running_controller, wait_for


def queue_call(client, auth, to, **extra):
    response = client.post("/v1/calls/outbound", data=json.dumps({"to": to, **extra}), headers=auth,
                           content_type="application/json")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def final(call_id, statuses=("completed", "failed", "busy", "no-answer", "canceled")):
    return wait_for(lambda: (c := Call.get_by_id(call_id)).status in statuses and c)


def timeline(call_id):
    return [(e.from_status, e.to_status) for e in CallEvent.select().where(CallEvent.call == call_id)
            .order_by(CallEvent.id)]


def test_answered_call_is_completed_billed_and_reported(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550100")
    assert Dispatcher(controller).run_once().claimed == 1
    call = final(call_id)
    assert call.status == "completed" and call.hangup_cause == "NORMAL_CLEARING"
    assert call.answered_at is not None and call.billed_minutes == 1 and call.sip_code == 200
    assert ("calling", "ringing") in timeline(call_id) and ("ringing", "in-progress") in timeline(call_id)
    assert timeline(call_id)[-1] == ("in-progress", "completed")
    assert Organization.get_by_id(caller_org.id).minutes_used == 1
    ended = WebhookDelivery.get(WebhookDelivery.event_type == "call.ended")
    data = json.loads(ended.payload)["data"]
    assert (data["status"], data["billed_minutes"], data["hangup_cause"]) == ("completed", 1, "NORMAL_CLEARING")


def test_busy_is_retried_until_max_attempts(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550486", max_attempts=2)
    dispatcher = Dispatcher(controller)
    dispatcher.run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "queued" and Call.get_by_id(call_id).attempt == 1)
    dispatcher.run_once()
    call = final(call_id)
    assert (call.status, call.attempt, call.hangup_cause, call.sip_code) == ("busy", 2, "USER_BUSY", 486)
    assert call.billed_minutes == 0
    assert WebhookDelivery.select().where(WebhookDelivery.event_type == "call.ended").count() == 1


def test_no_answer_and_failures_map_to_their_status(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    no_answer = queue_call(client, auth, "+14155550408", max_attempts=1)
    unallocated = queue_call(client, auth, "+14155550404", max_attempts=3)
    Dispatcher(controller).run_once()
    assert final(no_answer).status == "no-answer"
    failed = final(unallocated)
    assert (failed.status, failed.attempt, failed.hangup_cause) == ("failed", 1, "UNALLOCATED_NUMBER")


def test_hangup_through_the_api_ends_a_live_call(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    assert client.post(f"/v1/calls/{call_id}/hangup", headers=auth).status_code == 202
    call = final(call_id)
    assert call.status == "completed" and call.answered_at is not None


def test_without_a_gateway_calls_go_through_the_outbound_dialplan_context(db, sim, telephony_env, caller_org,
                                                                        outbound_agent, auth):
    from api import create_app
    from config import load_config

    config = load_config({**telephony_env, "OUTBOUND_GATEWAY": ""}, webhook_allow_private=True)
    with running_controller(config) as control:
        client = create_app(config, call_control=control).test_client()
        call_id = queue_call(client, auth, "+14155550123")
        Dispatcher(control).run_once()
        wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
        channel = sim.channel(call_id)
        assert channel.name == "loopback/+14155550123-a"  # loopback/<number>/voxbridge_outbound
        client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
        call = final(call_id)
        assert call.status == "completed" and call.sip_code is None  # loopback legs carry no SIP status


def test_the_dialplan_route_carries_the_variables_the_outbound_context_reads(db, sim, telephony_env, caller_org,
                                                                          outbound_agent, auth):
    from api import create_app
    from config import load_config

    config = load_config({**telephony_env, "OUTBOUND_GATEWAY": "", "DEFAULT_REGION": "GB"},
                         webhook_allow_private=True)
    with running_controller(config) as control:
        client = create_app(config, call_control=control).test_client()
        call_id = queue_call(client, auth, "+442079460124")   # domestic for GB: the rules let it through
        Dispatcher(control).run_once()
        wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
        variables = sim.channel(call_id).variables
        assert (variables["vb_caller_id"], variables["vb_country_code"], variables["vb_international_enabled"]) == (
            "+14155550000", "44", "false")
        client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
        final(call_id)


def test_an_unprovisioned_sip_account_fails_the_attempt_retryably_instead_of_using_the_platform_trunk(
        received, controller, sim, caller_org, outbound_agent, auth):
    from api import create_app
    from models import SipAccount

    from .conftest import commands_received

    account = SipAccount.create(organization=caller_org, name="HQ", sip_server="pbx.example.com:5060",
                                transport="udp", allowed_ips="203.0.113.7", provisioned=False)
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123", max_attempts=2)
    dispatcher = Dispatcher(controller)
    assert dispatcher.run_once().claimed == 1
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "queued" and c.attempt == 1 and c)
    why = f"SIP account {account.id} is not provisioned in FreeSWITCH; run Reprovision"
    assert why in call.failure_reason
    assert any(why in (e.reason or "") for e in CallEvent.select().where(CallEvent.call == call_id))
    assert not [c for c in commands_received(received) if "originate" in c]      # nothing was dialed
    assert sim.channel(call_id) is None
    # Reprovision before the retry: the next attempt leaves through the account's own gateway.
    SipAccount.update(provisioned=True).where(SipAccount.id == account.id).execute()
    sim.registry.add_gateway(account.gateway_name, proxy="pbx.example.com:5060")
    assert dispatcher.run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    assert sim.channel(call_id).variables["sip_gateway_name"] == account.gateway_name
    client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
    assert final(call_id).status == "completed"


def test_an_unprovisioned_sip_account_on_the_last_attempt_ends_failed_with_the_reason(
        controller, caller_org, outbound_agent, auth):
    from api import create_app
    from models import SipAccount

    account = SipAccount.create(organization=caller_org, name="HQ", sip_server="pbx.example.com:5060",
                                transport="udp", allowed_ips="203.0.113.7")
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123", max_attempts=1)
    Dispatcher(controller).run_once()
    call = final(call_id)
    assert (call.status, call.hangup_cause) == ("failed", "NORMAL_TEMPORARY_FAILURE")
    assert call.failure_reason == f"SIP account {account.id} is not provisioned in FreeSWITCH; run Reprovision"
    ended = json.loads(WebhookDelivery.get(WebhookDelivery.event_type == "call.ended").payload)["data"]
    assert ended["status"] == "failed"

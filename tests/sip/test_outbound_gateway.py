"""Outbound calls of an organization with a Custom SIP account leave through its gateway (simulator)."""
import json

from calls.dispatcher import Dispatcher
from models import Call, SipAccount
from tests.telephony import conftest as telephony
from tests.telephony.conftest import wait_for

# The telephony suite's fixtures: a simulator with the platform trunk carrier1 and a controller on it.
sim, telephony_env, telephony_config = telephony.sim, telephony.telephony_env, telephony.telephony_config
controller, caller_org = telephony.controller, telephony.caller_org


def _queue(client, auth, to):
    response = client.post("/v1/calls/outbound", data=json.dumps({"to": to}), headers=auth,
                           content_type="application/json")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_outbound_call_uses_the_organizations_provisioned_gateway(controller, sim, caller_org, outbound_agent,
                                                                  auth):
    from api import create_app

    account = SipAccount.create(organization=caller_org, name="HQ", sip_server="pbx.example.com:5060",
                                transport="udp", allowed_ips="203.0.113.7", provisioned=True)
    sim.registry.add_gateway(account.gateway_name, proxy="pbx.example.com:5060")   # as provisioning left it
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = _queue(client, auth, "+14155550123")
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    channel = sim.channel(call_id)
    assert channel.variables["sip_gateway_name"] == account.gateway_name          # not the platform's carrier1
    assert channel.name.startswith(f"sofia/gateway/{account.gateway_name}/")
    assert channel.variables["sip_to_host"] == "pbx.example.com:5060"
    client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")


def test_organization_without_an_account_uses_the_platform_trunk(controller, sim, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = _queue(client, auth, "+14155550124")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    assert sim.channel(call_id).variables["sip_gateway_name"] == "carrier1"
    client.post(f"/v1/calls/{call_id}/hangup", headers=auth)
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")

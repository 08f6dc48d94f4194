"""POST /v1/agents/{id}/web-calls and what a `web` call is to the rest of the platform: listed and filtered,
never transferred, dialed, requeued or reconciled with FreeSWITCH; ended once, billed from its answer."""
import datetime as dt
import json

import pytest

from api import create_app
from calls.controller import CallController
from calls.queue import claim_due
from models import LIVE_STATUSES, Agent, Call, CallEvent, Organization, WebhookDelivery, utcnow
from webcall import calls as web_calls

from .conftest import start_web_call


def test_a_web_call_is_created_live_with_a_token_for_its_socket(web_client, auth, talk_agent, web_calls):
    created = start_web_call(web_client, auth, talk_agent)
    call = created["call"]
    assert (call["direction"], call["status"], call["to"], call["from"]) == ("web", "in-progress", None, None)
    assert call["agent_id"] == talk_agent.id and call["answered_at"] is None
    assert created["websocket_url"] == f"{web_calls.bridge.public_url}/talk/{call['id']}?token={created['token']}"
    expires = dt.datetime.fromisoformat(created["expires_at"].rstrip("Z"))
    assert 50 <= (expires - utcnow()).total_seconds() <= 61  # WEB_CALL_TOKEN_TTL, 60 s
    assert [e.reason for e in CallEvent.select().where(CallEvent.call == call["id"])] == ["web call created"]
    assert not WebhookDelivery.select().exists()  # nothing was queued: no call.queued for a call never queued


def test_only_the_organizations_active_agents_can_be_talked_to(web_client, auth, talk_agent, db):
    other = Organization.create(name="Other", minutes_included=10)
    foreign = Agent.create(organization=other, name="Theirs", direction="inbound")
    assert web_client.post(f"/v1/agents/{foreign.id}/web-calls", headers=auth).status_code == 404
    assert web_client.post("/v1/agents/nope/web-calls", headers=auth).status_code == 404
    assert web_client.post(f"/v1/agents/{talk_agent.id}/web-calls").status_code == 401
    talk_agent.active = False
    talk_agent.save()
    refused = web_client.post(f"/v1/agents/{talk_agent.id}/web-calls", headers=auth)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "agent_inactive"
    talk_agent.active, talk_agent.deleted_at = True, utcnow()
    talk_agent.save()
    assert web_client.post(f"/v1/agents/{talk_agent.id}/web-calls", headers=auth).status_code == 404
    assert Call.select().count() == 0


def test_minutes_and_the_concurrent_call_limit_apply_to_web_calls(web_client, auth, talk_agent, org):
    Organization.update(minutes_used=100).where(Organization.id == org.id).execute()
    refused = web_client.post(f"/v1/agents/{talk_agent.id}/web-calls", headers=auth)
    assert refused.status_code == 402 and refused.get_json()["error"]["code"] == "minutes_exhausted"
    Organization.update(minutes_used=0, max_concurrent_calls=1).where(Organization.id == org.id).execute()
    start_web_call(web_client, auth, talk_agent)
    busy = web_client.post(f"/v1/agents/{talk_agent.id}/web-calls", headers=auth)
    assert busy.status_code == 429 and busy.get_json()["error"]["code"] == "concurrency_limit"
    assert Call.select().count() == 1


def test_web_calls_switched_off_answer_503(db, config, auth, talk_agent):
    from dataclasses import replace

    client = create_app(replace(config, web_calls=False)).test_client()
    refused = client.post(f"/v1/agents/{talk_agent.id}/web-calls", headers=auth)
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "web_calls_unavailable"
    assert client.get(f"/talk/{talk_agent.id}").status_code == 503


def test_calls_list_filters_web_calls_and_a_web_call_cannot_be_transferred(web_client, auth, talk_agent, org):
    web = start_web_call(web_client, auth, talk_agent)["call"]["id"]
    Call.create(organization=org, agent=talk_agent, direction="inbound", to_number="+14155550100",
                status="completed")
    listed = web_client.get("/v1/calls?direction=web", headers=auth).get_json()["data"]
    assert [c["id"] for c in listed] == [web]
    bad = web_client.get("/v1/calls?direction=browser", headers=auth)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "direction"
    transfer = web_client.post(f"/v1/calls/{web}/transfer", json={"to": "+14155550123"}, headers=auth)
    assert transfer.status_code == 409 and transfer.get_json()["error"]["code"] == "call_not_transferable"
    assert Call.get_by_id(web).status == "in-progress"


def test_an_api_process_that_does_not_serve_the_streams_still_ends_a_web_call(db, config, auth, talk_agent, org):
    client = create_app(config).test_client()  # no web call control: another process serves the streams
    call = web_calls.create(org, talk_agent)
    web_calls.admit(call.id)
    Call.update(answered_at=utcnow() - dt.timedelta(seconds=75)).where(Call.id == call.id).execute()
    assert client.post(f"/v1/calls/{call.id}/cancel", headers=auth).status_code == 202
    ended = Call.get_by_id(call.id)
    assert (ended.status, ended.billed_minutes, ended.duration_s) == ("completed", 2, 75)
    assert Organization.get_by_id(org.id).minutes_used == 2
    assert client.post(f"/v1/calls/{call.id}/hangup", headers=auth).status_code == 409  # ended once


def test_the_talk_page_and_its_scripts_are_served_with_a_strict_policy(web_client, talk_agent, web_calls):
    page = web_client.get(f"/talk/{talk_agent.id}?call=x&token=y")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert f'data-agent-id="{talk_agent.id}"' in html and f'data-ws-base="{web_calls.bridge.public_url}"' in html
    assert "<script>" not in html and "http" not in html.split("data-ws-base")[0]  # no inline code, no CDN
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and web_calls.bridge.public_url in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    for name in ("talk.js", "talk-worklet.js", "talk.css"):
        asset = web_client.get(f"/talk/static/{name}")
        assert asset.status_code == 200 and len(asset.data) > 500, name
    assert "registerProcessor" in web_client.get("/talk/static/talk-worklet.js").get_data(as_text=True)
    assert web_client.get("/talk/bad%20id").status_code == 404


def test_a_token_no_browser_used_in_time_leaves_a_failed_unbilled_call(db, org, talk_agent):
    stale = web_calls.create(org, talk_agent)
    fresh = web_calls.create(org, talk_agent)
    Call.update(created_at=utcnow() - dt.timedelta(seconds=120)).where(Call.id == stale.id).execute()
    assert web_calls.sweep(60, owned=set()) == 1
    call = Call.get_by_id(stale.id)
    assert (call.status, call.billed_minutes, call.failure_reason) == ("failed", 0, web_calls.NEVER_CONNECTED)
    ended = json.loads(WebhookDelivery.get(WebhookDelivery.call_id == stale.id).payload)
    assert (ended["type"], ended["data"]["direction"]) == ("call.ended", "web")
    assert Call.get_by_id(fresh.id).status == "in-progress"


def test_web_calls_an_earlier_run_left_live_are_closed_at_start(db, org, talk_agent):
    answered, waiting = web_calls.create(org, talk_agent), web_calls.create(org, talk_agent)
    web_calls.admit(answered.id)
    Call.update(answered_at=utcnow() - dt.timedelta(hours=3)).where(Call.id == answered.id).execute()
    assert web_calls.close_lost(max_call_s=3600) == 2
    first, second = Call.get_by_id(answered.id), Call.get_by_id(waiting.id)
    assert (first.status, first.billed_minutes, first.duration_s) == ("completed", 60, 3600)  # capped
    assert (second.status, second.billed_minutes) == ("failed", 0)
    assert Organization.get_by_id(org.id).minutes_used == 60
    assert not web_calls.end(answered.id, "again")  # once


class NoChannels:
    """A FreeSWITCH node that has no channel at all (what it would say of any web call)."""

    name = "fs1"

    def api(self, command):
        return "false" if command.line.startswith("uuid_exists") else '{"row_count": 0}'


def test_the_queue_never_dials_a_web_call_and_reconciliation_leaves_it_alone(db, org, talk_agent):
    from config import load_config

    live = web_calls.create(org, talk_agent)
    long_ago = utcnow() - dt.timedelta(hours=2)  # past every ringing and call limit of the telephony watchdog
    Call.update(created_at=long_ago, dialed_at=long_ago).where(Call.id == live.id).execute()
    stray = web_calls.create(org, talk_agent)
    Call.update(status="queued").where(Call.id == stray.id).execute()  # a state no web call reaches
    assert claim_due(10) == []
    control = CallController(load_config({"FREESWITCH_ESL_HOST": "127.0.0.1:1",
                                          "FREESWITCH_ESL_PASSWORD": "s3cret-esl"}), pool=None)
    assert control.reconcile(NoChannels()) == {"adopted": 0, "closed": 0, "orphans_killed": 0, "in_flight": 0}
    assert Call.get_by_id(live.id).status in LIVE_STATUSES and live.id not in control.live
    assert control.watchdog_pass() == 0


@pytest.fixture
def talk_agent(org):  # a plain agent is enough here
    return Agent.create(organization=org, name="Desk", direction="outbound")

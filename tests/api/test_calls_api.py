"""POST/GET /v1/calls: validation, agents, allowance, idempotency, batch, isolation, pagination."""
import json

import pytest

from models import Agent, ApiKey, Call, CallEvent, Organization, PhoneNumber, WebhookDelivery


def post(client, auth, body, path="/v1/calls/outbound", **headers):
    return client.post(path, data=json.dumps(body), headers={**auth, **headers},
                       content_type="application/json")


def test_outbound_call_is_queued_with_e164_number_and_default_agent(client, auth, outbound_agent):
    response = post(client, auth, {"to": "(415) 555-0123", "context": {"name": "Ada"}})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["to"] == "+14155550123"
    assert body["agent_id"] == outbound_agent.id
    assert body["max_attempts"] == 3
    call = Call.get_by_id(body["id"])
    assert call.context == {"name": "Ada"}
    assert [e.to_status for e in CallEvent.select().where(CallEvent.call == call)] == ["queued"]


def test_call_queued_webhook_is_written_to_the_outbox_with_the_call(client, auth, outbound_agent, org):
    body = post(client, auth, {"to": "+442071838750", "webhook_url": "https://hooks.example.com/x"}).get_json()
    rows = list(WebhookDelivery.select())
    assert len(rows) == 1
    assert rows[0].event_type == "call.queued"
    assert rows[0].url == "https://hooks.example.com/x"
    payload = json.loads(rows[0].payload)
    assert payload["id"] == rows[0].id and payload["data"]["id"] == body["id"]


@pytest.mark.parametrize("number", ["hello", "+1", "12", "+999 123", "", "+1415555012345678", 4155550123, None])
def test_garbage_numbers_are_rejected(client, auth, outbound_agent, number):
    response = post(client, auth, {"to": number})
    assert response.status_code == 422
    assert response.get_json()["error"] == {"code": "invalid_phone_number", "field": "to",
                                            "message": response.get_json()["error"]["message"]}


def test_agent_resolution_rules(client, auth, org, outbound_agent):
    inbound = Agent.create(organization=org, name="Desk", direction="inbound")
    inactive = Agent.create(organization=org, name="Old", direction="outbound", active=False)
    other_org = Organization.create(name="Other")
    foreign = Agent.create(organization=other_org, name="Theirs", direction="outbound")
    for agent, code in ((inbound, "agent_wrong_direction"), (inactive, "agent_inactive"),
                        (foreign, "agent_not_found")):
        response = post(client, auth, {"to": "+14155550123", "agent_id": agent.id})
        assert response.status_code == 422, agent.name
        assert response.get_json()["error"]["code"] == code
    assert post(client, auth, {"to": "+14155550123", "agent_id": outbound_agent.id}).status_code == 201


def test_no_outbound_agent_is_a_422(client, auth, org):
    response = post(client, auth, {"to": "+14155550123"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "no_outbound_agent"


def test_exhausted_minutes_is_402(client, auth, org, outbound_agent):
    org.minutes_used = org.minutes_included
    org.save()
    response = post(client, auth, {"to": "+14155550123"})
    assert response.status_code == 402
    assert response.get_json()["error"]["code"] == "minutes_exhausted"
    assert Call.select().count() == 0


def test_schedule_at_in_the_future_is_scheduled_and_needs_a_zone(client, auth, outbound_agent):
    body = post(client, auth, {"to": "+14155550123", "schedule_at": "2099-01-01T09:00:00Z"}).get_json()
    assert body["status"] == "scheduled" and body["schedule_at"] == "2099-01-01T09:00:00Z"
    naive = post(client, auth, {"to": "+14155550123", "schedule_at": "2099-01-01T09:00:00"})
    assert naive.status_code == 422 and naive.get_json()["error"]["field"] == "schedule_at"
    offset = post(client, auth, {"to": "+14155550123", "schedule_at": "2099-01-01T10:00:00+01:00"}).get_json()
    assert offset["schedule_at"] == "2099-01-01T09:00:00Z"


@pytest.mark.parametrize("value", [0, 11, "3", True, 2.5])
def test_max_attempts_bounds(client, auth, outbound_agent, value):
    response = post(client, auth, {"to": "+14155550123", "max_attempts": value})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "max_attempts"


def test_context_must_be_an_object_of_at_most_16kb(client, auth, outbound_agent):
    assert post(client, auth, {"to": "+14155550123", "context": [1]}).status_code == 422
    big = post(client, auth, {"to": "+14155550123", "context": {"x": "a" * 16_400}})
    assert big.status_code == 422 and big.get_json()["error"]["code"] == "context_too_large"
    assert post(client, auth, {"to": "+14155550123", "context": {"x": "a" * 16_000}}).status_code == 201


def test_unknown_fields_are_rejected(client, auth, outbound_agent):
    response = post(client, auth, {"to": "+14155550123", "too": "x"})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "too"


def test_from_is_required_and_must_be_owned_once_telephony_is_configured(db, org, auth, outbound_agent):
    from api import create_app
    from config import load_config

    config = load_config({"FREESWITCH_ESL_HOST": "127.0.0.1", "FREESWITCH_ESL_PASSWORD": "pw"})
    client = create_app(config).test_client()
    missing = post(client, auth, {"to": "+14155550123"})
    assert missing.status_code == 422 and missing.get_json()["error"]["code"] == "from_required"
    foreign = post(client, auth, {"to": "+14155550123", "from": "+14155550199"})
    assert foreign.get_json()["error"]["code"] == "from_not_owned"
    PhoneNumber.create(organization=org, number="+14155550199")
    assert post(client, auth, {"to": "+14155550123", "from": "(415) 555-0199"}).status_code == 201


def test_idempotency_key_replays_the_first_response_and_rejects_another_body(client, auth, outbound_agent):
    first = post(client, auth, {"to": "+14155550123"}, **{"Idempotency-Key": "k1"})
    again = post(client, auth, {"to": "+14155550123"}, **{"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Call.select().count() == 1
    conflict = post(client, auth, {"to": "+14155550124"}, **{"Idempotency-Key": "k1"})
    assert conflict.status_code == 409 and conflict.get_json()["error"]["code"] == "idempotency_key_reused"


def test_idempotency_keys_are_per_organization(client, auth, outbound_agent):
    other = Organization.create(name="Other")
    Agent.create(organization=other, name="A", direction="outbound")
    other_auth = {"Authorization": "Bearer " + ApiKey.issue(other)[1]}
    a = post(client, auth, {"to": "+14155550123"}, **{"Idempotency-Key": "same"}).get_json()
    b = post(client, other_auth, {"to": "+14155550123"}, **{"Idempotency-Key": "same"}).get_json()
    assert a["id"] != b["id"] and Call.select().count() == 2


def test_batch_reports_item_errors_and_keeps_valid_items(client, auth, outbound_agent):
    calls = [{"to": "+14155550123"}, {"to": "nope"}, {"to": "+14155550124", "max_attempts": 99},
             {"to": "+14155550125", "context": {"n": 1}}]
    response = post(client, auth, {"calls": calls}, path="/v1/calls/outbound/batch")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["failed"]) == (2, 2)
    assert [("call" in r, r.get("error", {}).get("field")) for r in body["results"]] == [
        (True, None), (False, "to"), (False, "max_attempts"), (True, None)]
    assert Call.select().count() == 2
    assert WebhookDelivery.select().count() == 2


def test_batch_limits(client, auth, outbound_agent):
    too_many = post(client, auth, {"calls": [{"to": "+14155550123"}] * 1001}, path="/v1/calls/outbound/batch")
    assert too_many.status_code == 422 and too_many.get_json()["error"]["code"] == "batch_too_large"
    full = post(client, auth, {"calls": [{"to": "+14155550123"}] * 1000}, path="/v1/calls/outbound/batch")
    assert full.get_json()["created"] == 1000 and Call.select().count() == 1000


def test_another_organizations_call_is_404(client, auth, outbound_agent):
    other = Organization.create(name="Other")
    Agent.create(organization=other, name="A", direction="outbound")
    other_auth = {"Authorization": "Bearer " + ApiKey.issue(other)[1]}
    call_id = post(client, other_auth, {"to": "+14155550123"}).get_json()["id"]
    assert client.get(f"/v1/calls/{call_id}", headers=auth).status_code == 404
    assert client.post(f"/v1/calls/{call_id}/cancel", headers=auth).status_code == 404
    assert client.get("/v1/calls", headers=auth).get_json()["data"] == []
    assert client.get(f"/v1/calls/{call_id}", headers=other_auth).status_code == 200


def test_list_filters_and_cursor_pagination(client, auth, outbound_agent):
    ids = [post(client, auth, {"to": f"+1415555{n:04d}"}).get_json()["id"] for n in range(120, 125)]
    seen, cursor = [], None
    while True:
        url = "/v1/calls?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).get_json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    post(client, auth, {"to": "+14155550130", "schedule_at": "2099-01-01T00:00:00Z"})
    scheduled = client.get("/v1/calls?status=scheduled", headers=auth).get_json()["data"]
    assert [c["to"] for c in scheduled] == ["+14155550130"]
    assert client.get("/v1/calls?status=bogus", headers=auth).status_code == 422
    assert client.get("/v1/calls?cursor=!!!", headers=auth).status_code == 400


def test_cancel_queued_call_sends_call_ended(client, auth, outbound_agent):
    call_id = post(client, auth, {"to": "+14155550123"}).get_json()["id"]
    response = client.post(f"/v1/calls/{call_id}/cancel", headers=auth)
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    assert [d.event_type for d in WebhookDelivery.select().order_by(WebhookDelivery.created_at)] == [
        "call.queued", "call.ended"]
    assert client.post(f"/v1/calls/{call_id}/cancel", headers=auth).status_code == 409


def test_hangup_and_transfer_need_a_live_call(client, auth, outbound_agent):
    call_id = post(client, auth, {"to": "+14155550123"}).get_json()["id"]
    assert client.post(f"/v1/calls/{call_id}/hangup", headers=auth).get_json()["error"]["code"] == "call_not_live"
    response = post(client, auth, {"to": "+14155550124"}, path=f"/v1/calls/{call_id}/transfer")
    assert response.status_code == 409


@pytest.mark.parametrize("value", ["", 0, False, 1767225600, "tomorrow", "2099-13-01T00:00:00Z", [], {}])
def test_a_present_schedule_at_must_be_an_iso_8601_date_with_zone(client, auth, outbound_agent, value):
    response = post(client, auth, {"to": "+14155550123", "schedule_at": value})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "schedule_at"
    assert Call.select().count() == 0


def test_a_null_schedule_at_queues_the_call_now(client, auth, outbound_agent):
    body = post(client, auth, {"to": "+14155550123", "schedule_at": None}).get_json()
    assert body["status"] == "queued" and body["schedule_at"] is None


def test_a_batch_where_every_item_fails_is_422_with_the_error_envelope(client, auth, outbound_agent):
    response = post(client, auth, {"calls": [{"to": "nope"}, {"to": "+14155550123", "max_attempts": 0}]},
                    path="/v1/calls/outbound/batch")
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "batch_rejected" and body["error"]["message"]
    assert (body["created"], body["failed"]) == (0, 2)
    assert [r["error"]["field"] for r in body["results"]] == ["to", "max_attempts"]
    assert Call.select().count() == 0 and WebhookDelivery.select().count() == 0


def test_a_batch_with_exhausted_minutes_is_402_and_creates_nothing(client, auth, org, outbound_agent):
    org.minutes_used = org.minutes_included
    org.save()
    response = post(client, auth, {"calls": [{"to": "+14155550123"}]}, path="/v1/calls/outbound/batch")
    assert response.status_code == 402
    assert response.get_json()["error"]["code"] == "minutes_exhausted"
    assert Call.select().count() == 0


@pytest.mark.parametrize("number", ["+1 415 555 0123 ext. 5", "+14155550123x12", "(415) 555-0123 extension 7",
                                    "+1 415 555 0123 #5"])
def test_a_number_with_an_extension_is_rejected(client, auth, outbound_agent, number):
    response = post(client, auth, {"to": number})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_phone_number"
    assert Call.select().count() == 0


def test_national_numbers_follow_the_default_region(db, auth, outbound_agent):
    from api import create_app
    from config import load_config

    client = create_app(load_config({"DEFAULT_REGION": "GB"}, rate_limit_per_minute=100_000)).test_client()
    body = post(client, auth, {"to": "020 7183 8750"}).get_json()
    assert body["to"] == "+442071838750"
    us = post(client, auth, {"to": "(415) 555-0123"})
    assert us.status_code == 422 and us.get_json()["error"]["code"] == "invalid_phone_number"


def test_events_list_the_calls_timeline_in_order(client, auth, outbound_agent):
    call_id = post(client, auth, {"to": "+14155550123", "schedule_at": "2099-01-01T00:00:00Z"}).get_json()["id"]
    client.post(f"/v1/calls/{call_id}/cancel", headers=auth)
    body = client.get(f"/v1/calls/{call_id}/events", headers=auth).get_json()
    assert [(e["from"], e["to"], e["reason"]) for e in body["data"]] == [
        (None, "scheduled", "created"), ("scheduled", "canceled", "canceled through the API")]
    assert all(e["at"].endswith("Z") for e in body["data"])
    assert client.get("/v1/calls/missing/events", headers=auth).status_code == 404


def test_cancel_of_a_scheduled_call_is_never_claimed(client, auth, outbound_agent):
    from calls.queue import claim_due

    call_id = post(client, auth, {"to": "+14155550123", "schedule_at": "2099-01-01T00:00:00Z"}).get_json()["id"]
    response = client.post(f"/v1/calls/{call_id}/cancel", headers=auth)
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    Call.update(next_attempt_at=Call.created_at).execute()  # even once it would be due
    assert claim_due(10) == []
    assert Call.get_by_id(call_id).status == "canceled"


def test_cancel_of_a_live_call_asks_call_control_to_hang_up_and_is_202(db, config, auth, outbound_agent):
    from api import create_app

    class Control:
        def __init__(self):
            self.hangups = []

        def hangup(self, call, reason):
            self.hangups.append((call.id, reason))

    control = Control()
    client = create_app(config, call_control=control).test_client()
    call_id = post(client, auth, {"to": "+14155550123"}).get_json()["id"]
    Call.update(status="ringing").where(Call.id == call_id).execute()
    response = client.post(f"/v1/calls/{call_id}/cancel", headers=auth)
    assert response.status_code == 202 and response.get_json()["id"] == call_id
    assert control.hangups == [(call_id, "canceled through the API")]
    without_telephony = post(client, auth, {"to": "+14155550124"}).get_json()["id"]
    Call.update(status="in-progress").where(Call.id == without_telephony).execute()
    plain = create_app(config).test_client()
    refused = plain.post(f"/v1/calls/{without_telephony}/cancel", headers=auth)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "telephony_not_configured"


def test_list_filters_by_direction_agent_and_created_range(client, auth, org, outbound_agent):
    import datetime as dt

    other_agent = Agent.create(organization=org, name="Second", direction="outbound")
    first = post(client, auth, {"to": "+14155550121"}).get_json()["id"]
    second = post(client, auth, {"to": "+14155550122", "agent_id": other_agent.id}).get_json()["id"]
    inbound = post(client, auth, {"to": "+14155550123"}).get_json()["id"]
    base = dt.datetime(2030, 1, 1, 12, 0, 0)
    for offset, call_id in enumerate((first, second, inbound)):
        Call.update(created_at=base + dt.timedelta(hours=offset)).where(Call.id == call_id).execute()
    Call.update(direction="inbound").where(Call.id == inbound).execute()

    def ids(query):
        response = client.get(f"/v1/calls?{query}", headers=auth)
        assert response.status_code == 200, response.get_json()
        return {c["id"] for c in response.get_json()["data"]}

    assert ids("direction=inbound") == {inbound}
    assert ids("direction=outbound") == {first, second}
    assert ids(f"agent_id={other_agent.id}") == {second}
    assert ids("created_after=2030-01-01T13:00:00Z") == {second, inbound}
    assert ids("created_before=2030-01-01T13:00:00Z") == {first}
    assert ids("created_after=2030-01-01T12:30:00Z&created_before=2030-01-01T14:00:00%2B00:00") == {second}
    assert ids("agent_id=unknown") == set()
    assert client.get("/v1/calls?direction=sideways", headers=auth).status_code == 422
    bad = client.get("/v1/calls?created_after=2030-01-01", headers=auth)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "created_after"


def test_the_organizations_caller_id_is_the_default_and_an_accepted_from(db, org, auth, outbound_agent):
    from api import create_app
    from config import load_config

    org.default_caller_id = "+14155550100"
    org.save()
    config = load_config({"FREESWITCH_ESL_HOST": "127.0.0.1", "FREESWITCH_ESL_PASSWORD": "pw"},
                         rate_limit_per_minute=100_000)
    client = create_app(config).test_client()
    defaulted = post(client, auth, {"to": "+14155550123"})
    assert defaulted.status_code == 201 and defaulted.get_json()["from"] == "+14155550100"
    explicit = post(client, auth, {"to": "+14155550123", "from": "(415) 555-0100"})
    assert explicit.status_code == 201 and explicit.get_json()["from"] == "+14155550100"
    assert post(client, auth, {"to": "+14155550123", "from": "+14155550101"}).status_code == 422

"""Idempotency-Key: one call per key and organization for 24 h, even when two requests race."""
import datetime as dt
import json

import pytest

import api.calls
from calls.dispatcher import Dispatcher
from models import Call, IdempotencyRecord, Organization, utcnow
from models.idempotency import purge_expired

BATCH = "/v1/calls/outbound/batch"


def post(client, auth, body, key, path="/v1/calls/outbound"):
    return client.post(path, data=json.dumps(body), headers={**auth, "Idempotency-Key": key},
                       content_type="application/json")


def test_a_request_whose_lookup_missed_a_concurrent_winner_replays_it(client, auth, outbound_agent,
                                                                        monkeypatch):
    first = post(client, auth, {"to": "+14155550123"}, "race")
    # The second request looked the key up before the first committed: its lookup saw nothing.
    monkeypatch.setattr(api.calls, "_lookup", lambda org, key: None)
    second = post(client, auth, {"to": "+14155550123"}, "race")
    assert first.status_code == second.status_code == 201
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert [c.id for c in Call.select()] == [first.get_json()["id"]]
    assert IdempotencyRecord.select().count() == 1


def test_a_racing_request_with_another_body_is_409_and_creates_nothing(client, auth, outbound_agent,
                                                                       monkeypatch):
    post(client, auth, {"to": "+14155550123"}, "race")
    monkeypatch.setattr(api.calls, "_lookup", lambda org, key: None)
    second = post(client, auth, {"to": "+14155550124"}, "race")
    assert second.status_code == 409
    assert Call.select().count() == 1


def test_a_key_older_than_24_hours_starts_over(client, auth, outbound_agent, org):
    first = post(client, auth, {"to": "+14155550123"}, "old").get_json()
    IdempotencyRecord.update(created_at=utcnow() - dt.timedelta(hours=24, seconds=1)).execute()
    again = post(client, auth, {"to": "+14155550124"}, "old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] != first["id"] and Call.select().count() == 2
    record = IdempotencyRecord.get(IdempotencyRecord.organization == org, IdempotencyRecord.key == "old")
    assert json.loads(record.response_body)["id"] == again.get_json()["id"]
    assert post(client, auth, {"to": "+14155550124"}, "old").get_json()["id"] == again.get_json()["id"]


def test_a_key_just_inside_24_hours_still_replays(client, auth, outbound_agent):
    first = post(client, auth, {"to": "+14155550123"}, "young").get_json()
    IdempotencyRecord.update(created_at=utcnow() - dt.timedelta(hours=23, minutes=59)).execute()
    assert post(client, auth, {"to": "+14155550123"}, "young").get_json()["id"] == first["id"]
    assert Call.select().count() == 1


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_a_bad_idempotency_key_is_400_and_creates_nothing(client, auth, outbound_agent, key):
    response = post(client, auth, {"to": "+14155550123"}, key)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_idempotency_key"
    assert Call.select().count() == 0


def test_a_255_character_key_is_accepted(client, auth, outbound_agent):
    assert post(client, auth, {"to": "+14155550123"}, "k" * 255).status_code == 201


def test_a_batch_is_replayed_under_its_key(client, auth, outbound_agent):
    body = {"calls": [{"to": "+14155550123"}, {"to": "nope"}]}
    first = post(client, auth, body, "batch-1", BATCH)
    again = post(client, auth, body, "batch-1", BATCH)
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert Call.select().count() == 1
    assert post(client, auth, {"calls": [{"to": "+14155550124"}]}, "batch-1", BATCH).status_code == 409


def test_expired_records_are_purged_and_fresh_ones_kept(db, org):
    other = Organization.create(name="Other")
    old = utcnow() - dt.timedelta(hours=25)
    for owner, key, created in ((org, "old", old), (other, "old", old), (org, "fresh", utcnow())):
        IdempotencyRecord.create(organization=owner, key=key, request_hash="h", status_code=201,
                                 response_body="{}", created_at=created)
    assert purge_expired() == 2
    assert [(r.organization_id, r.key) for r in IdempotencyRecord.select()] == [(org.id, "fresh")]


def test_the_dispatcher_loop_purges_expired_records(db, org):
    IdempotencyRecord.create(organization=org, key="old", request_hash="h", status_code=201,
                             response_body="{}", created_at=utcnow() - dt.timedelta(hours=25))
    IdempotencyRecord.create(organization=org, key="fresh", request_hash="h", status_code=201,
                             response_body="{}")
    Dispatcher(None).run_once()
    assert [r.key for r in IdempotencyRecord.select()] == ["fresh"]

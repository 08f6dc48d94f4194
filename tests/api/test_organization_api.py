"""/v1/organization settings and signing-secret rotation, scoped to the caller's organization."""
import datetime as dt
import json

import pytest

from api import create_app
from calls.dispatcher import Dispatcher
from config import load_config
from models import ApiKey, Organization, PhoneNumber, utcnow
from tests.webhooks.receiver import Receiver
from webhooks import SIGNATURE_HEADER, SignatureError, enqueue, verify
from webhooks.delivery import DeliveryWorker


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _patch(client, auth, body):
    return client.patch("/v1/organization", data=json.dumps(body), headers=auth, content_type="application/json")


@pytest.fixture
def other(db):
    org = Organization.create(name="Globex", webhook_url="https://globex.example/hook",
                              default_caller_id="+14155550999")
    return org, {"Authorization": f"Bearer {ApiKey.issue(org)[1]}"}


def test_read_never_shows_the_signing_secret(client, auth, org):
    body = client.get("/v1/organization", headers=auth).get_json()
    assert body["id"] == org.id and body["webhook_url"] == org.webhook_url
    assert org.webhook_secret not in json.dumps(body) and "signing_secret" not in body


def test_patch_sets_webhook_url_and_an_owned_caller_id_in_e164(client, auth, org, other):
    PhoneNumber.create(organization=org, number="+14155550123")
    response = _patch(client, auth, {"webhook_url": "http://127.0.0.1:8/new", "default_caller_id": "(415) 555-0123"})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["webhook_url"], response.get_json()["default_caller_id"]) == (
        "http://127.0.0.1:8/new", "+14155550123")
    assert _patch(client, auth, {"webhook_url": None}).get_json()["webhook_url"] is None
    other_org = Organization.get_by_id(other[0].id)  # organization B untouched
    assert (other_org.webhook_url, other_org.default_caller_id) == ("https://globex.example/hook", "+14155550999")


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"webhook_url": "ftp://example.com/x"}, "webhook_url", "invalid_webhook_url"),
    ({"webhook_url": "https://user:pw@example.com/"}, "webhook_url", "invalid_webhook_url"),
    ({"webhook_url": 5}, "webhook_url", "invalid_field"),
    ({"webhook_url": "https://hooks.nonexistent.invalid/x"}, "webhook_url", "invalid_webhook_url"),
    ({"default_caller_id": "12"}, "default_caller_id", "invalid_phone_number"),
    ({"default_caller_id": "+14155550999"}, "default_caller_id", "caller_id_not_owned"),  # Globex's number
    ({"name": "Renamed"}, "name", "unknown_field"),
])
def test_bad_settings_are_422_and_change_nothing(client, auth, org, other, body, field, code):
    response = _patch(client, auth, {"webhook_url": "http://127.0.0.1:8/kept", **body}
                      if field != "webhook_url" else body)
    assert response.status_code == 422
    assert (response.get_json()["error"]["field"], response.get_json()["error"]["code"]) == (field, code)
    assert Organization.get_by_id(org.id).webhook_url == "http://127.0.0.1:9/hook"


def test_a_private_webhook_address_is_refused_unless_allowed(db, org):
    strict = create_app(load_config({}, rate_limit_per_minute=100_000, sip_secret_key=_fernet())).test_client()
    auth = {"Authorization": f"Bearer {ApiKey.issue(org)[1]}"}
    response = _patch(strict, auth, {"webhook_url": "http://127.0.0.1:8080/hook"})
    assert response.status_code == 422 and "non-public" in response.get_json()["error"]["message"]


def _deliver(org) -> tuple[str, bytes]:
    with Receiver([200]) as receiver:
        Organization.update(webhook_url=receiver.url).where(Organization.id == org.id).execute()
        enqueue(Organization.get_by_id(org.id), "call.ended", {"status": "completed"})
        assert [r.ok for r in DeliveryWorker(allow_private=True).run_once()] == [True]
    headers, body = receiver.received[0]
    return headers[SIGNATURE_HEADER.title()], body


def test_rotation_returns_the_secret_once_and_both_secrets_sign_during_the_overlap(client, auth, org, other):
    old = org.webhook_secret
    response = client.post("/v1/organization/signing-secret/rotate", headers=auth)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    new = response.get_json()["signing_secret"]
    assert new.startswith("whsec_") and new != old
    assert response.get_json()["previous_signing_secret_expires_at"] is not None
    assert new not in client.get("/v1/organization", headers=auth).get_data(as_text=True)
    assert Organization.get_by_id(other[0].id).webhook_secret == other[0].webhook_secret  # B keeps its own

    header, body = _deliver(org)  # inside the overlap: a receiver with either secret accepts it
    assert header.count("v1=") == 2
    assert verify(new, header, body) and verify(old, header, body)

    Organization.update(previous_secret_expires_at=utcnow() - dt.timedelta(seconds=1)).where(
        Organization.id == org.id).execute()
    header, body = _deliver(org)  # after it: only the new secret
    assert header.count("v1=") == 1 and verify(new, header, body)
    with pytest.raises(SignatureError):
        verify(old, header, body)
    assert client.get("/v1/organization", headers=auth).get_json()["previous_signing_secret_expires_at"] is None
    Dispatcher(None).run_once()  # its housekeeping forgets the old secret for good
    assert Organization.get_by_id(org.id).previous_webhook_secret is None


def test_a_second_rotation_drops_the_first_secret_at_once(client, auth, org):
    first = org.webhook_secret
    second = client.post("/v1/organization/signing-secret/rotate", headers=auth).get_json()["signing_secret"]
    third = client.post("/v1/organization/signing-secret/rotate", headers=auth).get_json()["signing_secret"]
    assert Organization.get_by_id(org.id).signing_secrets() == [third, second]
    assert first not in Organization.get_by_id(org.id).signing_secrets()


def test_with_no_overlap_the_old_secret_stops_at_once(db, org):
    app = create_app(load_config({}, rate_limit_per_minute=100_000, webhook_secret_overlap_s=0,
                                 sip_secret_key=_fernet()))
    auth = {"Authorization": f"Bearer {ApiKey.issue(org)[1]}"}
    new = app.test_client().post("/v1/organization/signing-secret/rotate", headers=auth).get_json()["signing_secret"]
    assert Organization.get_by_id(org.id).signing_secrets() == [new]

"""Every state-changing console request carries the session's CSRF token: the forms' hidden field, the pages'
JSON calls' X-CSRF-Token header. Programs with an API key need none (no cookie is involved)."""
import pytest

from models import Agent
from tests.console.helpers import form_token, make_user, signed_in


@pytest.fixture
def token(client, org):
    make_user(org, "ana@acme.test")
    return signed_in(client, "ana@acme.test")


def test_console_forms_without_the_token_are_refused(client, org):
    make_user(org, "ana@acme.test")
    refused = client.post("/console/sign-in", data={"email": "ana@acme.test", "password": "correct horse battery"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    signed_in(client, "ana@acme.test")
    assert client.post("/console/sign-out").status_code == 403
    assert client.post("/console/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/console/calls").status_code == 200  # still signed in
    assert client.post("/console/password", data={"new": "x" * 12, "again": "x" * 12}).status_code == 403


@pytest.mark.parametrize("method, path, body", [
    ("post", "/v1/agents", {"name": "Sneaky", "direction": "outbound"}),
    ("patch", "/v1/organization", {"webhook_url": None}),
    ("post", "/v1/api-keys", {"name": "stolen"}),
    ("post", "/v1/webhook-deliveries/test", {}),
    ("post", "/v1/calls/outbound", {"to": "+14155550123"}),
])
def test_the_pages_json_writes_without_the_token_are_refused(client, token, method, path, body):
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        response = getattr(client, method)(path, json=body, headers=headers)
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["error"]["code"] == "csrf_failed"
    assert not Agent.select().exists()


def test_the_pages_json_calls_with_the_token_work_and_reads_need_none(client, token):
    created = client.post("/v1/agents", json={"name": "Welcome", "direction": "outbound"},
                          headers={"X-CSRF-Token": token})
    assert created.status_code == 201
    assert client.get(f"/v1/agents/{created.get_json()['id']}").status_code == 200


def test_an_api_key_needs_no_token_even_beside_a_session_cookie(client, token, auth):
    created = client.post("/v1/agents", json={"name": "Bot", "direction": "outbound"}, headers=auth)
    assert created.status_code == 201


def test_the_token_changes_at_sign_in(client, org):
    make_user(org, "ana@acme.test")
    before = form_token(client.get("/console/sign-in").text)
    after = signed_in(client, "ana@acme.test")
    assert before != after

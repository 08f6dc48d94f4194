"""/v1/api-keys: list (never a secret), issue (secret once), revoke; scoped to the caller's organization."""
import json

import pytest

from models import ApiKey, Organization


def _issue(client, auth, body=None):
    return client.post("/v1/api-keys", data=json.dumps(body or {}), headers=auth, content_type="application/json")


@pytest.fixture
def other(db):
    org = Organization.create(name="Globex")
    key, plaintext = ApiKey.issue(org, name="globex-ci")
    return key, {"Authorization": f"Bearer {plaintext}"}


def test_issue_shows_the_secret_once_and_the_key_works(client, auth, api_key):
    response = _issue(client, auth, {"name": "ci"})
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    issued = response.get_json()
    secret = issued["secret"]
    assert secret.startswith(issued["prefix"] + "_") and issued["name"] == "ci" and issued["current"] is False
    listed = client.get("/v1/api-keys", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert secret not in text and api_key not in text and "key_hash" not in text
    rows = {k["name"]: k for k in listed.get_json()["data"]}
    assert set(rows) == {"default", "ci"} and rows["ci"]["current"] is True
    assert rows["ci"]["last_used_at"] is not None  # this very request


@pytest.mark.parametrize("body", [{"name": ""}, {"name": 5}, {"name": "x" * 201}, {"scopes": ["all"]}])
def test_a_bad_issue_request_is_422_and_issues_nothing(client, auth, org, body):
    assert _issue(client, auth, body).status_code == 422
    assert ApiKey.select().where(ApiKey.organization == org).count() == 1


def test_revoke_another_key_then_it_is_refused(client, auth, org):
    issued = _issue(client, auth, {"name": "old"}).get_json()
    response = client.delete(f"/v1/api-keys/{issued['id']}", headers=auth)
    assert response.status_code == 200 and response.get_json()["revoked_at"] is not None
    assert client.get("/v1/calls", headers={"Authorization": f"Bearer {issued['secret']}"}).status_code == 401
    assert client.delete(f"/v1/api-keys/{issued['id']}", headers=auth).status_code == 200  # already: no-op


def test_revoking_the_key_making_the_request_needs_force(client, auth, org):
    current = ApiKey.get(ApiKey.organization == org)
    refused = client.delete(f"/v1/api-keys/{current.id}", headers=auth)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "revoking_current_key"
    assert client.get("/v1/calls", headers=auth).status_code == 200
    assert client.delete(f"/v1/api-keys/{current.id}?force=true", headers=auth).status_code == 200
    assert client.get("/v1/calls", headers=auth).status_code == 401


def test_an_organization_cannot_see_or_revoke_another_organizations_keys(client, auth, org, other):
    other_key, other_auth = other
    assert [k["name"] for k in client.get("/v1/api-keys", headers=auth).get_json()["data"]] == ["default"]
    assert client.delete(f"/v1/api-keys/{other_key.id}", headers=auth).status_code == 404
    assert client.delete(f"/v1/api-keys/{other_key.id}?force=true", headers=auth).status_code == 404
    assert ApiKey.get_by_id(other_key.id).revoked_at is None
    assert client.get("/v1/calls", headers=other_auth).status_code == 200
    issued = _issue(client, auth, {"name": "mine"}).get_json()
    assert ApiKey.get_by_id(issued["id"]).organization_id == org.id
    assert [k["name"] for k in client.get("/v1/api-keys", headers=other_auth).get_json()["data"]] == ["globex-ci"]


def test_last_use_is_written_at_most_once_a_minute(client, auth, org):
    import datetime as dt

    from models import utcnow

    key = ApiKey.get(ApiKey.organization == org)
    recent = utcnow() - dt.timedelta(seconds=30)
    ApiKey.update(last_used_at=recent).where(ApiKey.id == key.id).execute()
    client.get("/v1/calls", headers=auth)
    assert ApiKey.get_by_id(key.id).last_used_at == recent
    stale = utcnow() - dt.timedelta(seconds=61)
    ApiKey.update(last_used_at=stale).where(ApiKey.id == key.id).execute()
    from api.auth import _CACHES

    for cache in list(_CACHES):
        cache.forget(key.id)  # the cached copy still says `recent`
    client.get("/v1/calls", headers=auth)
    assert ApiKey.get_by_id(key.id).last_used_at > stale

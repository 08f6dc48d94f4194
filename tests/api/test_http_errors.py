"""Authentication, content negotiation, body limits, rate limit, health and the OpenAPI document."""
import json

from api import create_app
from config import load_config


def test_missing_and_bad_keys_are_401(client, auth):
    assert client.get("/v1/calls").status_code == 401
    bad = client.get("/v1/calls", headers={"Authorization": "Bearer vb_live_nope_x"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/v1/calls", headers={"Authorization": "Basic abc"}).status_code == 401


def test_revoked_key_is_401(client, auth, api_key):
    from models import ApiKey

    ApiKey.authenticate(api_key).revoke()
    assert client.get("/v1/calls", headers=auth).status_code == 401


def test_keys_are_stored_hashed(api_key):
    from models import ApiKey

    row = ApiKey.get()
    assert api_key not in (row.key_hash, row.prefix) and len(row.key_hash) == 64


def test_non_json_is_415_and_bad_json_is_400(client, auth, outbound_agent):
    assert client.post("/v1/calls/outbound", data="to=1", headers=auth,
                       content_type="application/x-www-form-urlencoded").status_code == 415
    bad = client.post("/v1/calls/outbound", data="{", headers=auth, content_type="application/json")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_json"
    array = client.post("/v1/calls/outbound", data="[]", headers=auth, content_type="application/json")
    assert array.status_code == 400


def test_oversized_body_is_413(db, auth, outbound_agent):
    app = create_app(load_config({"MAX_BODY_BYTES": "2048"}))
    response = app.test_client().post("/v1/calls/outbound", data=json.dumps({"to": "x" * 5000}), headers=auth,
                                      content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "payload_too_large"


def test_rate_limit_is_429_with_retry_after(db, auth):
    client = create_app(load_config({"RATE_LIMIT_PER_MINUTE": "3"})).test_client()
    statuses = [client.get("/v1/organization", headers=auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/v1/organization", headers=auth)
    assert int(response.headers["Retry-After"]) >= 1


def test_unknown_route_is_json_404(client, auth):
    response = client.get("/v1/nothing", headers=auth)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_health_reports_database_and_telephony(client):
    body = client.get("/health").get_json()
    assert body == {"status": "ok", "database": "ok", "telephony": "not_configured"}


def test_organization_usage(client, auth, org):
    body = client.get("/v1/organization", headers=auth).get_json()
    assert body["usage"] == {"minutes_included": 100, "minutes_used": 0, "minutes_remaining": 100}


def _flask_path(rule: str) -> str:
    return rule.replace("<", "{").replace(">", "}")


def test_openapi_document_matches_the_routes(app, client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routed = {(_flask_path(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}
              if rule.endpoint.rsplit(".", 1)[-1] != "static"  # static files (the app's, the talk page's)
              and not rule.endpoint.startswith("console_")}  # the web console's pages
    assert documented == routed
    for path, ops in doc["paths"].items():
        for op in ops.values():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path


def test_a_key_revoked_after_it_was_cached_is_refused_at_once(client, auth, api_key):
    from models import ApiKey

    assert client.get("/v1/calls", headers=auth).status_code == 200  # now in the key cache
    ApiKey.get(ApiKey.revoked_at.is_null()).revoke()
    response = client.get("/v1/calls", headers=auth)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_revoking_one_key_leaves_the_organizations_other_keys_working(client, auth, org):
    from models import ApiKey

    other_key, other_plain = ApiKey.issue(org, name="second")
    other_auth = {"Authorization": f"Bearer {other_plain}"}
    assert client.get("/v1/calls", headers=auth).status_code == 200
    assert client.get("/v1/calls", headers=other_auth).status_code == 200
    other_key.revoke()
    assert client.get("/v1/calls", headers=other_auth).status_code == 401
    assert client.get("/v1/calls", headers=auth).status_code == 200


def test_minutes_used_up_after_the_key_was_cached_are_a_402(client, auth, org, outbound_agent):
    from models import Call, Organization

    body = json.dumps({"to": "+14155550123"})
    first = client.post("/v1/calls/outbound", data=body, headers=auth, content_type="application/json")
    assert first.status_code == 201  # the key and its organization are now cached
    Organization.update(minutes_used=Organization.minutes_included).where(Organization.id == org.id).execute()
    for path, payload in (("/v1/calls/outbound", body),
                          ("/v1/calls/outbound/batch", json.dumps({"calls": [{"to": "+14155550123"}]}))):
        response = client.post(path, data=payload, headers=auth, content_type="application/json")
        assert response.status_code == 402, path
        assert response.get_json()["error"]["code"] == "minutes_exhausted"
    assert Call.select().count() == 1
    usage = client.get("/v1/organization", headers=auth).get_json()["usage"]
    assert usage == {"minutes_included": 100, "minutes_used": 100, "minutes_remaining": 0}


def test_health_is_503_when_the_database_is_unreachable(db, client):
    import socket

    import peewee

    from models import database

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    database.initialize(peewee.PostgresqlDatabase("voxbridge", host="127.0.0.1", port=port, connect_timeout=2))
    try:
        response = client.get("/health")
        live = client.get("/health/live")
    finally:
        database.initialize(db)
    assert response.status_code == 503
    assert response.get_json() == {"status": "degraded", "database": "unreachable", "telephony": "not_configured",
                                   "down": ["database"]}
    # Liveness asks no dependency: a database outage must not get the process restarted.
    assert live.status_code == 200 and live.get_json() == {"status": "ok", "worker": 0}

"""The OpenAPI document against what the routes really return."""
import json

from flask import request

from api import create_app
from calls.representation import call_to_dict
from models import CALLING, Call


class FakeControl:
    """Call control for a live call: records hang-ups, touches no switch."""

    def __init__(self):
        self.hangups = []

    def hangup(self, call, reason):
        self.hangups.append((call.id, reason))


def _recording_client(config):
    """A test client whose app records (route, method, status) of every response."""
    control = FakeControl()
    app = create_app(config, call_control=control)
    seen = set()

    @app.after_request
    def _record(response):
        if request.url_rule is not None:
            path = request.url_rule.rule.replace("<", "{").replace(">", "}")
            seen.add((path, request.method.lower(), response.status_code))
        return response

    return app.test_client(), seen, control


def _documented(doc, path, method):
    return {int(status) for status in doc["paths"][path][method]["responses"]}


def test_every_status_the_call_routes_return_is_documented(db, config, auth, org, outbound_agent):
    client, seen, control = _recording_client(config)

    def post(path, body=None, **headers):
        return client.post(path, data=json.dumps(body or {}), headers={**auth, **headers},
                           content_type="application/json")

    queued = post("/v1/calls/outbound", {"to": "+14155550123"}).get_json()["id"]
    scheduled = post("/v1/calls/outbound", {"to": "+14155550124", "schedule_at": "2099-01-01T00:00:00Z"})
    live = post("/v1/calls/outbound", {"to": "+14155550125"}).get_json()["id"]
    Call.update(status=CALLING).where(Call.id == live).execute()
    post("/v1/calls/outbound", {"to": "nope"})
    post("/v1/calls/outbound", {"to": "+14155550123"}, **{"Idempotency-Key": "k"})
    post("/v1/calls/outbound", {"to": "+14155550124"}, **{"Idempotency-Key": "k"})
    post("/v1/calls/outbound", {"to": "+14155550123"}, **{"Idempotency-Key": ""})
    client.post("/v1/calls/outbound", data="x", headers=auth, content_type="text/plain")
    client.post("/v1/calls/outbound", data="{", headers=auth, content_type="application/json")
    post("/v1/calls/outbound/batch", {"calls": [{"to": "+14155550123"}]})
    post("/v1/calls/outbound/batch", {"calls": [{"to": "nope"}]})
    assert post(f"/v1/calls/{queued}/cancel").status_code == 200
    assert post(f"/v1/calls/{scheduled.get_json()['id']}/cancel").status_code == 200
    assert post(f"/v1/calls/{live}/cancel").status_code == 202 and control.hangups
    assert post(f"/v1/calls/{queued}/cancel").status_code == 409
    post("/v1/calls/no-such-call/cancel")
    client.post(f"/v1/calls/{queued}/cancel")
    for call_id in (queued, "missing"):
        client.get(f"/v1/calls/{call_id}", headers=auth)
        client.get(f"/v1/calls/{call_id}/events", headers=auth)
    client.get("/v1/calls?created_after=yesterday", headers=auth)
    client.get("/v1/calls?cursor=!!", headers=auth)
    client.get("/v1/calls", headers=auth)
    post(f"/v1/calls/{live}/hangup")
    post(f"/v1/calls/{queued}/hangup")
    client.get("/health")
    doc = client.get("/openapi.json").get_json()
    undocumented = sorted((p, m, s) for p, m, s in seen if s not in _documented(doc, p, m))
    assert undocumented == []
    assert {s for p, m, s in seen if p == "/v1/calls/{call_id}/cancel"} == {200, 202, 401, 404, 409}


def test_the_call_schema_lists_exactly_the_fields_a_call_has(client, auth, outbound_agent):
    created = client.post("/v1/calls/outbound", data=json.dumps({"to": "+14155550123"}), headers=auth,
                          content_type="application/json").get_json()
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["Call"]
    assert set(schema["properties"]) == set(call_to_dict(Call.get_by_id(created["id"]))) == set(created)

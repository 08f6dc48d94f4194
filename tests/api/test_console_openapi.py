"""The console API's OpenAPI entries against what its routes really return: statuses and fields."""
import dataclasses
import json

from flask import request

from api import create_app
from models import Call
from tests.webhooks.receiver import Receiver
from webhooks import enqueue
from webhooks.delivery import DeliveryWorker


def _recording_client(config):
    app = create_app(config)
    seen = set()

    @app.after_request
    def _record(response):
        if request.url_rule is not None:
            path = request.url_rule.rule.replace("<", "{").replace(">", "}")
            seen.add((path, request.method.lower(), response.status_code))
        return response

    return app.test_client(), seen


def test_every_status_and_field_of_the_console_routes_is_documented(db, config, auth, org, tmp_path):
    config = dataclasses.replace(config, recordings_dir=str(tmp_path))
    client, seen = _recording_client(config)

    def send(method, path, body=None, **headers):
        return client.open(path, method=method, data=None if body is None else json.dumps(body),
                           headers={**auth, **headers}, content_type="application/json")

    organization = send("GET", "/v1/organization").get_json()
    send("PATCH", "/v1/organization", {"webhook_url": "http://127.0.0.1:8/x"})
    send("PATCH", "/v1/organization", {"default_caller_id": "nope"})
    send("PATCH", "/v1/organization", [1])
    client.patch("/v1/organization", data="x", headers=auth, content_type="text/plain")
    client.get("/v1/organization")
    rotated = send("POST", "/v1/organization/signing-secret/rotate").get_json()

    keys = send("GET", "/v1/api-keys").get_json()
    issued = send("POST", "/v1/api-keys", {"name": "ci"}).get_json()
    send("POST", "/v1/api-keys", {"name": ""})
    send("DELETE", f"/v1/api-keys/{keys['data'][0]['id']}")  # the calling key: 409
    revoked = send("DELETE", f"/v1/api-keys/{issued['id']}").get_json()
    send("DELETE", "/v1/api-keys/missing")

    with Receiver([200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        event_id = enqueue(org, "call.ended", {"status": "completed"})
        DeliveryWorker(allow_private=True).run_once()
    deliveries = send("GET", "/v1/webhook-deliveries").get_json()
    send("GET", "/v1/webhook-deliveries?status=nope")
    send("GET", "/v1/webhook-deliveries?cursor=!!")
    delivery = send("GET", f"/v1/webhook-deliveries/{event_id}").get_json()
    send("GET", "/v1/webhook-deliveries/missing")
    send("POST", "/v1/webhook-deliveries/test")
    org.webhook_url = None
    org.save()
    send("POST", "/v1/webhook-deliveries/test")

    call = Call.create(organization=org, direction="outbound", to_number="+14155550123", status="completed",
                       recording_path="x")
    (tmp_path / f"{call.id}.wav").write_bytes(b"RIFF" + bytes(100))
    url = f"/v1/calls/{call.id}/recording"
    etag = send("GET", url).headers["ETag"]
    send("GET", url, Range="bytes=0-3")
    send("GET", url, Range="bytes=500-")
    send("GET", url, **{"If-None-Match": etag})
    send("GET", "/v1/calls/missing/recording")
    Call.update(status="in-progress").where(Call.id == call.id).execute()
    send("GET", url)

    doc = client.get("/openapi.json").get_json()
    undocumented = sorted((p, m, s) for p, m, s in seen if str(s) not in doc["paths"][p][m]["responses"])
    assert undocumented == []
    assert {s for p, m, s in seen if p == "/v1/calls/{call_id}/recording"} == {200, 206, 304, 404, 409, 416}
    assert {s for p, m, s in seen if p == "/v1/webhook-deliveries/test"} == {202, 409}
    schemas = doc["components"]["schemas"]
    assert set(schemas["Organization"]["properties"]) == set(organization)
    assert set(rotated) == set(organization) | {"signing_secret"}
    assert set(schemas["ApiKey"]["properties"]) == set(revoked)
    assert set(issued) == set(revoked) | {"secret"}
    assert set(schemas["WebhookDeliveryList"]["properties"]) == set(deliveries)
    assert set(schemas["WebhookDelivery"]["properties"]) == set(delivery) == set(deliveries["data"][0]) | {"payload"}

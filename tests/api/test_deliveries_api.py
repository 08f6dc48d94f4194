"""/v1/webhook-deliveries: each delivery with its attempts, filters, pages; one organization's only."""
import pytest

from models import ApiKey, Organization, WebhookDelivery, utcnow
from tests.webhooks.receiver import Receiver
from webhooks import enqueue
from webhooks.delivery import DeliveryWorker


@pytest.fixture
def other(db):
    org = Organization.create(name="Globex", webhook_url="http://127.0.0.1:9/globex")
    return org, {"Authorization": f"Bearer {ApiKey.issue(org)[1]}"}


def test_a_retried_delivery_lists_each_attempt_with_status_and_duration(client, auth, org):
    with Receiver([500, 200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        event_id = enqueue(org, "call.ended", {"status": "completed"})
        worker = DeliveryWorker(allow_private=True)
        worker.run_once()
        WebhookDelivery.update(next_attempt_at=utcnow()).execute()
        worker.run_once()
    body = client.get("/v1/webhook-deliveries", headers=auth).get_json()
    [delivery] = body["data"]
    assert (delivery["id"], delivery["status"], delivery["attempt_count"]) == (event_id, "delivered", 2)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500", None]
    assert all(isinstance(a["duration_ms"], int) and a["attempted_at"] for a in delivery["attempts"])
    one = client.get(f"/v1/webhook-deliveries/{event_id}", headers=auth).get_json()
    assert one["attempts"] == delivery["attempts"] and one["payload"]["data"] == {"status": "completed"}


def test_an_error_attempt_has_no_status_code(client, auth, org):
    org.webhook_url = "http://127.0.0.1:9/refused"  # nothing listens on the discard port
    org.save()
    enqueue(org, "call.queued", {"status": "queued"})
    DeliveryWorker(allow_private=True, timeout_s=5).run_once()
    [attempt] = client.get("/v1/webhook-deliveries", headers=auth).get_json()["data"][0]["attempts"]
    assert attempt["status_code"] is None and attempt["error"]


def test_filters_and_pages(client, auth, org):
    ids = [enqueue(org, event, {}, None) for event in ("call.queued", "call.ended", "call.analyzed")]
    WebhookDelivery.update(status="failed").where(WebhookDelivery.id == ids[1]).execute()
    WebhookDelivery.update(call_id="call-7").where(WebhookDelivery.id == ids[2]).execute()

    def listed(query):
        return [d["id"] for d in client.get(f"/v1/webhook-deliveries?{query}", headers=auth).get_json()["data"]]

    assert listed("event=call.queued") == [ids[0]]
    assert listed("status=failed") == [ids[1]]
    assert listed("call_id=call-7") == [ids[2]]
    first = client.get("/v1/webhook-deliveries?limit=2", headers=auth).get_json()
    second = client.get(f"/v1/webhook-deliveries?limit=2&cursor={first['next_cursor']}", headers=auth).get_json()
    assert first["has_more"] and not second["has_more"]
    assert sorted(d["id"] for d in first["data"] + second["data"]) == sorted(ids)
    for bad in ("event=call.nope", "status=lost", "limit=0", "limit=x"):
        assert client.get(f"/v1/webhook-deliveries?{bad}", headers=auth).status_code == 422, bad
    assert client.get("/v1/webhook-deliveries?cursor=!!", headers=auth).status_code == 400


def test_an_organization_sees_only_its_own_deliveries(client, auth, org, other):
    mine = enqueue(org, "call.queued", {})
    theirs = enqueue(other[0], "call.queued", {})
    assert [d["id"] for d in client.get("/v1/webhook-deliveries", headers=auth).get_json()["data"]] == [mine]
    assert client.get(f"/v1/webhook-deliveries/{theirs}", headers=auth).status_code == 404
    assert client.get(f"/v1/webhook-deliveries/{mine}", headers=other[1]).status_code == 404
    assert [d["id"] for d in client.get("/v1/webhook-deliveries", headers=other[1]).get_json()["data"]] == [theirs]


def test_a_test_event_is_queued_signed_and_delivered_to_the_callers_organization_only(client, auth, org, other):
    from webhooks import SIGNATURE_HEADER, verify

    with Receiver([200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        response = client.post("/v1/webhook-deliveries/test", headers=auth)
        assert response.status_code == 202
        queued = response.get_json()
        assert (queued["event_type"], queued["status"], queued["url"]) == ("webhook.test", "pending", receiver.url)
        DeliveryWorker(allow_private=True).run_once()
    headers, body = receiver.received[0]
    assert headers["Voxbridge-Event-Type"] == "webhook.test" and headers["Voxbridge-Event-Id"] == queued["id"]
    assert verify(org.webhook_secret, headers[SIGNATURE_HEADER.title()], body)
    assert client.get(f"/v1/webhook-deliveries/{queued['id']}", headers=auth).get_json()["status"] == "delivered"
    assert client.get(f"/v1/webhook-deliveries/{queued['id']}", headers=other[1]).status_code == 404
    assert WebhookDelivery.select().where(WebhookDelivery.organization == other[0].id).count() == 0


def test_a_test_event_without_a_webhook_url_is_409(client, auth, org):
    Organization.update(webhook_url=None).where(Organization.id == org.id).execute()
    response = client.post("/v1/webhook-deliveries/test", headers=auth)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "no_webhook_url"
    assert WebhookDelivery.select().count() == 0

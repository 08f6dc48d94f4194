"""Webhook delivery: signed POSTs, retry after 500 and after a restart, SSRF refusal, give-up."""
import json

import pytest

from models import WebhookDelivery, utcnow
from models.webhook import DELIVERED, FAILED, PENDING
from webhooks import SIGNATURE_HEADER, SignatureError, enqueue, verify
from webhooks.delivery import DeliveryWorker
from webhooks.targets import UnsafeTarget, check_target

from .receiver import Receiver


def _due_now():
    WebhookDelivery.update(next_attempt_at=utcnow()).execute()


def test_delivery_is_signed_and_verifiable(org):
    with Receiver([200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        event_id = enqueue(org, "call.analyzed", {"answers": {"confirmed": True}})
        results = DeliveryWorker(allow_private=True).run_once()
    assert [r.ok for r in results] == [True]
    headers, body = receiver.received[0]
    assert headers["Voxbridge-Event-Id"] == event_id
    assert verify(org.webhook_secret, headers[SIGNATURE_HEADER.title()], body)
    assert json.loads(body)["data"] == {"answers": {"confirmed": True}}
    with pytest.raises(SignatureError):
        verify(org.webhook_secret, headers[SIGNATURE_HEADER.title()], body + b" ")
    with pytest.raises(SignatureError):
        verify("whsec_other", headers[SIGNATURE_HEADER.title()], body)
    assert WebhookDelivery.get_by_id(event_id).status == DELIVERED


def test_receiver_500_is_retried_later_with_the_same_event_id(org):
    with Receiver([500, 200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        event_id = enqueue(org, "call.ended", {"status": "completed"})
        worker = DeliveryWorker(allow_private=True)
        assert [r.status_code for r in worker.run_once()] == [500]
        row = WebhookDelivery.get_by_id(event_id)
        assert row.status == PENDING and row.attempts == 1 and row.next_attempt_at > utcnow()
        assert worker.run_once() == []  # not due yet: backoff
        _due_now()
        assert [r.ok for r in worker.run_once()] == [True]
    ids = [h["Voxbridge-Event-Id"] for h, _ in receiver.received]
    assert ids == [event_id, event_id]


def test_a_restart_loses_nothing(org):
    """A worker dies after claiming (the lease is taken); a new worker delivers once the lease runs out."""
    with Receiver([200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        enqueue(org, "call.ended", {"status": "busy"})
        crashed = DeliveryWorker(allow_private=True)
        assert len(crashed.claim()) == 1  # ... and the process dies before sending
        restarted = DeliveryWorker(allow_private=True)
        assert restarted.run_once() == []  # leased
        _due_now()  # the lease expires
        assert [r.ok for r in restarted.run_once()] == [True]
    assert len(receiver.received) == 1


def test_gives_up_after_max_attempts(org):
    with Receiver([503]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        event_id = enqueue(org, "call.ended", {})
        worker = DeliveryWorker(allow_private=True, max_attempts=2)
        worker.run_once()
        _due_now()
        worker.run_once()
    row = WebhookDelivery.get_by_id(event_id)
    assert (row.status, row.attempts, row.last_status_code) == (FAILED, 2, 503)


def test_private_targets_are_refused_without_sending(org):
    with Receiver([200]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        event_id = enqueue(org, "call.ended", {})
        results = DeliveryWorker(allow_private=False).run_once()
    assert results[0].ok is False and results[0].error.startswith("refused")
    assert receiver.received == []
    assert WebhookDelivery.get_by_id(event_id).status == FAILED


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://localhost:8080/", "http://10.0.0.5/",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://192.168.1.1/",
                                 "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "ftp://example.com/",
                                 "http://user:pw@example.com/"])
def test_unsafe_targets(url):
    with pytest.raises(UnsafeTarget):
        check_target(url, allow_private=False)


def test_stale_signatures_are_rejected():
    from webhooks import sign

    header = sign("s", b"{}", timestamp=1_000)
    with pytest.raises(SignatureError, match="replay"):
        verify("s", header, b"{}", now=1_000 + 301)
    assert verify("s", header, b"{}", now=1_000 + 10) == 1_000


def test_no_webhook_url_means_no_outbox_row(org):
    org.webhook_url = None
    org.save()
    assert enqueue(org, "call.ended", {}) is None
    assert WebhookDelivery.select().count() == 0


def test_a_rolled_back_change_leaves_no_outbox_row(org):
    from models import database

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with database.atomic():
            enqueue(org, "call.ended", {"status": "completed"})
            assert WebhookDelivery.select().count() == 1  # visible inside the transaction
            raise Abort
    assert WebhookDelivery.select().count() == 0
    assert enqueue(org, "call.ended", {}) and WebhookDelivery.select().count() == 1

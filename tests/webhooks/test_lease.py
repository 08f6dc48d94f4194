"""The delivery lease outlasts a batch however slow it is; backoff grows to its cap."""
import datetime as dt

import pytest

import webhooks.delivery as delivery
from models import WebhookDelivery, utcnow
from webhooks import enqueue
from webhooks.delivery import BACKOFF_CAP_S, DeliveryResult, DeliveryWorker, backoff_base_s, backoff_s, retry_span_s


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now


def test_no_row_of_a_batch_becomes_claimable_while_its_worker_works_through_it(org, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(delivery, "utcnow", clock)
    for _ in range(8):
        enqueue(org, "call.ended", {})
    WebhookDelivery.update(next_attempt_at=clock.now).execute()
    worker = DeliveryWorker(allow_private=True, timeout_s=10, batch=8)
    rival = DeliveryWorker(allow_private=True, timeout_s=10, batch=8)
    stolen, sent = [], []

    def slow_send(row):
        # Every delivery takes its whole deadline; meanwhile another worker tries to claim.
        clock.now += dt.timedelta(seconds=worker.attempt_deadline_s)
        stolen.extend(r.id for r in rival.claim())
        sent.append(row.id)
        return DeliveryResult(row.id, True, 200, None)

    monkeypatch.setattr(worker, "send", slow_send)
    worker.run_once()
    assert len(sent) == 8 and stolen == []
    assert WebhookDelivery.select().where(WebhookDelivery.status == "delivered").count() == 8


def test_a_dead_workers_rows_are_due_again_after_one_lease(org, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(delivery, "utcnow", clock)
    enqueue(org, "call.ended", {})
    WebhookDelivery.update(next_attempt_at=clock.now).execute()
    crashed = DeliveryWorker(allow_private=True, timeout_s=10)
    assert len(crashed.claim()) == 1
    assert crashed.lease_s >= crashed.attempt_deadline_s
    clock.now += dt.timedelta(seconds=crashed.lease_s - 1)
    assert DeliveryWorker(allow_private=True).claim() == []
    clock.now += dt.timedelta(seconds=2)
    assert len(DeliveryWorker(allow_private=True).claim()) == 1


def test_a_send_never_outlives_its_deadline(org):
    import gevent.server

    def silent(sock, _addr):  # accepts, reads, never answers
        sock.recv(65536)
        gevent.sleep(30)

    server = gevent.server.StreamServer(("127.0.0.1", 0), silent)
    server.start()
    try:
        org.webhook_url = f"http://127.0.0.1:{server.server_port}/hooks"
        org.save()
        enqueue(org, "call.ended", {})
        worker = DeliveryWorker(allow_private=True, timeout_s=0.2)
        results = worker.run_once()
    finally:
        server.stop(timeout=0)
    assert results[0].ok is False and results[0].status_code is None


def test_backoff_doubles_from_30_seconds_to_a_4_hour_cap():
    assert [backoff_base_s(n) for n in range(1, 13)] == [
        30, 60, 120, 240, 480, 960, 1920, 3840, 7680, BACKOFF_CAP_S, BACKOFF_CAP_S, BACKOFF_CAP_S]
    assert BACKOFF_CAP_S == 4 * 3600


@pytest.mark.parametrize("attempts", [1, 5, 10, 50])
def test_backoff_jitter_stays_within_20_percent(attempts):
    base = backoff_base_s(attempts)
    delays = [backoff_s(attempts) for _ in range(200)]
    assert all(0.8 * base <= d <= 1.2 * base for d in delays)
    assert len(set(delays)) > 1


def test_the_documented_retry_span_is_the_real_one():
    from config import Config

    span_h = retry_span_s(12) / 3600
    assert 12 <= span_h < 12.5
    doc = next(f.metadata["doc"] for f in Config.__dataclass_fields__.values()
               if f.metadata.get("env") == "WEBHOOK_MAX_ATTEMPTS")
    assert f"~{round(span_h)} h" in doc

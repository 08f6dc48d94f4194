"""The delivery worker: at-least-once POSTs from the outbox with exponential backoff.

State lives in the database, so a restart loses nothing: a row claimed by a worker that died
becomes due again when its lease runs out.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

import gevent
import urllib3

from models import WebhookDelivery, database, is_postgres, utcnow
from models.webhook import DELIVERED, FAILED, PENDING
from webhooks.signing import SIGNATURE_HEADER, sign
from webhooks.targets import UnsafeTarget, check_target, post_pinned

log = logging.getLogger(__name__)

LEASE_S = 120
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 4 * 3600


def backoff_s(attempts: int) -> float:
    """30 s, 1 min, 2 min ... capped at 4 h, with jitter so a recovering receiver is not stampeded."""
    delay = min(BACKOFF_BASE_S * (2 ** max(attempts - 1, 0)), BACKOFF_CAP_S)
    return delay * random.uniform(0.8, 1.2)


@dataclass
class DeliveryResult:
    delivery_id: str
    ok: bool
    status_code: int | None
    error: str | None


class DeliveryWorker:
    def __init__(self, allow_private: bool = False, timeout_s: float = 10.0, max_attempts: int = 12,
                 batch: int = 50, interval_s: float = 1.0):
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.batch = batch
        self.interval_s = interval_s
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False

    def claim(self) -> list[WebhookDelivery]:
        """Take due rows and push their next attempt out by a lease, so no other worker sends them."""
        now = utcnow()
        with database.atomic():
            query = (WebhookDelivery.select()
                     .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
                     .order_by(WebhookDelivery.next_attempt_at).limit(self.batch))
            if is_postgres():
                query = query.for_update("FOR UPDATE SKIP LOCKED")
            rows = list(query)
            if rows:
                (WebhookDelivery.update(next_attempt_at=now + dt.timedelta(seconds=LEASE_S))
                 .where(WebhookDelivery.id.in_([r.id for r in rows])).execute())
        return rows

    def send(self, row: WebhookDelivery) -> DeliveryResult:
        org = row.organization
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "VoxBridge-Webhooks/1",
            SIGNATURE_HEADER: sign(org.webhook_secret, body),
            "VoxBridge-Event-Id": row.id,
            "VoxBridge-Event-Type": row.event_type,
        }
        try:
            target = check_target(row.url, self.allow_private)
            status = post_pinned(target, body, headers, self.timeout_s)
        except UnsafeTarget as exc:
            return DeliveryResult(row.id, False, None, f"refused: {exc}")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return DeliveryResult(row.id, False, None, f"{type(exc).__name__}: {exc}"[:500])
        ok = 200 <= status < 300
        return DeliveryResult(row.id, ok, status, None if ok else f"HTTP {status}")

    def record(self, row: WebhookDelivery, result: DeliveryResult) -> None:
        attempts = row.attempts + 1
        fields = {"attempts": attempts, "last_status_code": result.status_code, "last_error": result.error}
        if result.ok:
            fields.update(status=DELIVERED, delivered_at=utcnow())
        elif attempts >= self.max_attempts or (result.error or "").startswith("refused"):
            fields.update(status=FAILED)
            log.warning("webhook %s %s to %s gave up after %d attempts: %s", row.id, row.event_type,
                        row.url, attempts, result.error)
        else:
            fields.update(next_attempt_at=utcnow() + dt.timedelta(seconds=backoff_s(attempts)))
        WebhookDelivery.update(**fields).where(WebhookDelivery.id == row.id).execute()

    def run_once(self) -> list[DeliveryResult]:
        rows = self.claim()
        results = []
        for row in rows:
            result = self.send(row)
            self.record(row, result)
            results.append(result)
        return results

    def _loop(self) -> None:
        while not self._stopping:
            try:
                with database.connection_context():
                    sent = self.run_once()
            except Exception:
                log.exception("webhook delivery pass failed; retrying")
                sent = []
            gevent.sleep(0 if len(sent) == self.batch else self.interval_s)

    def start(self) -> None:
        self._stopping = False
        self._greenlet = gevent.spawn(self._loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the pass under way (a transaction is never cut in half), then stop."""
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.join(timeout)
            self._greenlet.kill()
            self._greenlet = None

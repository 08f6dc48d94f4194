"""The delivery worker: at-least-once POSTs from the outbox with exponential backoff.

State lives in the database, so a restart loses nothing: a row claimed by a worker that died
becomes due again when its lease runs out.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass

import gevent
import urllib3

from background import BackgroundLoop
from models import WebhookDelivery, database, is_postgres, utcnow
from models.webhook import DELIVERED, FAILED, PENDING
from observability.context import call_context
from observability.metrics import count_webhook_failure
from webhooks.attempts import log_attempt
from webhooks.signing import SIGNATURE_HEADER, sign
from webhooks.targets import MAX_ADDRESSES_TRIED, Resolver, UnsafeTarget, check_target, post_pinned

log = logging.getLogger(__name__)

# A claimed row is leased (next_attempt_at pushed out) so no other worker sends it. The lease
# covers one delivery's hard deadline plus this margin, and is renewed for the rows still waiting
# before each send: however long a batch takes, no row's lease runs out while its worker lives,
# and a dead worker's rows are due again within one lease.
LEASE_MARGIN_S = 30
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 4 * 3600


def backoff_base_s(attempts: int) -> float:
    """The delay after `attempts` failed deliveries before jitter: 30 s, 1 min, 2 min ... capped at 4 h."""
    return min(BACKOFF_BASE_S * (2 ** max(attempts - 1, 0)), BACKOFF_CAP_S)


def backoff_s(attempts: int) -> float:
    """backoff_base_s with +-20 % jitter, so a recovering receiver is not stampeded."""
    return backoff_base_s(attempts) * random.uniform(0.8, 1.2)


def retry_span_s(max_attempts: int) -> float:
    """From the first attempt to the last, before jitter (WEBHOOK_MAX_ATTEMPTS=12: about 12 h)."""
    return sum(backoff_base_s(attempts) for attempts in range(1, max_attempts))


@dataclass
class DeliveryResult:
    delivery_id: str
    ok: bool
    status_code: int | None
    error: str | None
    # True only when the SSRF guard refused the destination: retrying cannot help. DNS failures,
    # connect errors, timeouts and 5xx are transient and go back on the backoff schedule.
    final: bool = False


class DeliveryWorker(BackgroundLoop):
    def __init__(self, allow_private: bool = False, timeout_s: float = 10.0, max_attempts: int = 12,
                 batch: int = 50, interval_s: float = 1.0, resolve: Resolver | None = None):
        self.allow_private = allow_private
        self.resolve = resolve  # socket.getaddrinfo unless a test injects one
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.batch = batch
        self.interval_s = interval_s

    @property
    def attempt_deadline_s(self) -> float:
        """The longest one delivery may take: a connect to each address tried, then the response."""
        return self.timeout_s * (MAX_ADDRESSES_TRIED + 1)

    @property
    def lease_s(self) -> float:
        return self.attempt_deadline_s + LEASE_MARGIN_S

    def _lease(self, ids: list[str]) -> None:
        (WebhookDelivery.update(next_attempt_at=utcnow() + dt.timedelta(seconds=self.lease_s))
         .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == PENDING).execute())

    def claim(self) -> list[WebhookDelivery]:
        """Take due rows and lease them, so no other worker sends them."""
        now = utcnow()
        with database.atomic():
            query = (WebhookDelivery.select()
                     .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
                     .order_by(WebhookDelivery.next_attempt_at).limit(self.batch))
            if is_postgres():
                query = query.for_update("FOR UPDATE SKIP LOCKED")
            rows = list(query)
            if rows:
                self._lease([r.id for r in rows])
        return rows

    def send(self, row: WebhookDelivery) -> DeliveryResult:
        """One delivery attempt, never longer than attempt_deadline_s (the lease depends on it)."""
        try:
            with gevent.Timeout(self.attempt_deadline_s):
                return self._send(row)
        except gevent.Timeout:
            return DeliveryResult(row.id, False, None, f"no answer within {self.attempt_deadline_s:g} s")

    def _send(self, row: WebhookDelivery) -> DeliveryResult:
        org = row.organization
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "VoxBridge-Webhooks/1",
            SIGNATURE_HEADER: sign(org.signing_secrets(), body),  # two during a rotation's overlap
            "VoxBridge-Event-Id": row.id,
            "VoxBridge-Event-Type": row.event_type,
        }
        try:
            target = check_target(row.url, self.allow_private, self.resolve)
            status = post_pinned(target, body, headers, self.timeout_s)
        except UnsafeTarget as exc:
            return DeliveryResult(row.id, False, None, f"refused: {exc}", final=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return DeliveryResult(row.id, False, None, f"{type(exc).__name__}: {exc}"[:500])
        ok = 200 <= status < 300
        return DeliveryResult(row.id, ok, status, None if ok else f"HTTP {status}")

    def record(self, row: WebhookDelivery, result: DeliveryResult, duration_s: float | None = None) -> None:
        attempts = row.attempts + 1
        fields = {"attempts": attempts, "last_status_code": result.status_code, "last_error": result.error}
        if result.ok:
            fields.update(status=DELIVERED, delivered_at=utcnow())
        elif attempts >= self.max_attempts or result.final:
            if not result.final:
                fields["last_error"] = f"gave up after {attempts} attempts; last: {result.error}"[:1000]
            fields.update(status=FAILED)
            count_webhook_failure(gave_up=True)
            log.warning("webhook %s %s to %s gave up after %d attempts: %s", row.id, row.event_type,
                        row.url, attempts, result.error)
        else:
            count_webhook_failure(gave_up=False)
            fields.update(next_attempt_at=utcnow() + dt.timedelta(seconds=backoff_s(attempts)))
        WebhookDelivery.update(**fields).where(WebhookDelivery.id == row.id).execute()
        log_attempt(row.id, result.status_code, result.error, duration_s)

    def run_once(self) -> list[DeliveryResult]:
        rows = self.claim()
        results = []
        for index, row in enumerate(rows):
            if index:
                self._lease([r.id for r in rows[index:]])  # the rows still waiting: renew their lease
            started = time.monotonic()
            with call_context(row.call_id):
                result = self.send(row)
                self.record(row, result, time.monotonic() - started)
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


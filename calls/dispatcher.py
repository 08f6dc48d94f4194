"""The dispatcher: polls the queue and hands due calls to a dialer.

Without telephony there is no dialer: calls stay queued and the dispatcher says so, in the
words operators search for.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import gevent

from calls import queue
from models import Call, database
from models.idempotency import purge_expired
from models.tenancy import drop_expired_signing_secrets

log = logging.getLogger(__name__)

NOT_CONFIGURED = "Telephony worker not configured — call remains queued. Set FREESWITCH_ESL_* in .env."


class Dialer(Protocol):
    def capacity(self) -> int:
        """How many calls may be started right now (limits, CPS tokens, node load)."""

    def dial(self, call: Call) -> None:
        """Start dialing a claimed call (non-blocking)."""


@dataclass
class DispatchReport:
    claimed: int
    waiting: int
    message: str | None = None


class Dispatcher:
    def __init__(self, dialer: Dialer | None, interval_s: float = 0.5, batch: int = 100, worker: str = "",
                 purge_every_s: float = 600.0):
        self.dialer = dialer
        self.purge_every_s = purge_every_s
        self._last_purge: float | None = None
        self.interval_s = interval_s
        self.batch = batch
        self.worker = worker
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False
        self._last_notice = 0.0

    def run_once(self) -> DispatchReport:
        self._purge_housekeeping()
        if self.dialer is None:
            waiting = queue.count_due()
            if waiting:
                self._notice(waiting)
                return DispatchReport(0, waiting, NOT_CONFIGURED)
            return DispatchReport(0, 0)
        limit = min(self.batch, self.dialer.capacity())
        claimed = queue.claim_due(limit, self.worker)
        for call in claimed:
            self.dialer.dial(call)
        return DispatchReport(len(claimed), 0)

    def _purge_housekeeping(self) -> None:
        # Expired Idempotency-Key records are dead weight (a replay only looks inside 24 h); one
        # indexed DELETE every few minutes keeps the table at a day's worth of keys.
        now = time.monotonic()
        if self._last_purge is not None and now - self._last_purge < self.purge_every_s:
            return
        self._last_purge = now
        removed = purge_expired()
        if removed:
            log.info("purged %d expired idempotency records", removed)
        drop_expired_signing_secrets()  # a rotated-out webhook secret is kept no longer than its overlap

    def _notice(self, waiting: int) -> None:
        # Once a minute is enough for a log someone tails; every poll would drown it.
        now = time.monotonic()
        if now - self._last_notice >= 60 or not self._last_notice:
            log.warning("%s (%d due)", NOT_CONFIGURED, waiting)
            self._last_notice = now

    def _loop(self) -> None:
        while not self._stopping:
            try:
                with database.connection_context():
                    report = self.run_once()
            except Exception:
                log.exception("dispatch pass failed; retrying")
                report = DispatchReport(0, 0)
            gevent.sleep(0 if report.claimed >= self.batch else self.interval_s)

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

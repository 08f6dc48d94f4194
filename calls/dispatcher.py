"""The dispatcher: polls the queue and hands due calls to a dialer.

While calls are due it does not sleep beyond the dialer's pacing: each pass claims as many calls as the
dialer has originate slots for (one every 1/CALLS_PER_SECOND, a tenth of a second ahead) and starts
each in its slot. DISPATCH_INTERVAL is only the idle poll: nothing due, or no room to dial.

Without telephony there is no dialer: calls stay queued and the dispatcher says so, in the
words operators search for.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import gevent

from background import BackgroundLoop
from calls import queue
from calls.state import transition
from models import QUEUED, Call, database, utcnow
from models.idempotency import purge_expired
from models.tenancy import drop_expired_signing_secrets

log = logging.getLogger(__name__)

WAITING_NOTE_EVERY_S = 1.0
NOT_CONFIGURED = "Telephony worker not configured — call remains queued. Set FREESWITCH_ESL_* in .env."


class Dialer(Protocol):
    def capacity(self) -> int:
        """How many calls may be started right now (limits, CPS tokens, node load)."""

    def dial(self, call: Call) -> None:
        """Start dialing a claimed call (non-blocking)."""

    def wait_time(self) -> float:
        """Seconds until the next call may be started (0: now); the dispatcher waits this before each dial."""

    @property
    def per_org_max(self) -> int | None:
        """ORG_MAX_CONCURRENT_CALLS, which the claim applies; None: only organizations' own limits."""


@dataclass
class DispatchReport:
    claimed: int
    waiting: int
    message: str | None = None
    next_in: float | None = None  # seconds until the next pass; None: the idle poll interval


class Dispatcher(BackgroundLoop):
    def __init__(self, dialer: Dialer | None, interval_s: float = 0.5, batch: int = 100, worker: str = "",
                 purge_every_s: float = 600.0):
        self.dialer = dialer
        self.purge_every_s = purge_every_s
        self._last_purge: float | None = None
        self.interval_s = interval_s
        self.batch = batch
        self.worker = worker
        self._last_notice = 0.0
        self._last_waiting_note = float("-inf")

    def run_once(self) -> DispatchReport:
        self._purge_housekeeping()
        if self.dialer is None:
            waiting = queue.count_due()
            if waiting:
                self._notice(waiting)
                return DispatchReport(0, waiting, NOT_CONFIGURED)
            return DispatchReport(0, 0)
        limit = min(self.batch, self.dialer.capacity())
        if limit <= 0:
            pace = self._pace()
            return DispatchReport(0, 0, next_in=pace if pace > 0 else None)
        claim = queue.claim(limit, self.worker, getattr(self.dialer, "per_org_max", None))
        for n, call in enumerate(claim.calls):
            pause = self._pace()
            if pause > 0:
                gevent.sleep(pause)  # each call in its originate slot, 1/CALLS_PER_SECOND apart
            if self._stopping:
                # Stopping between slots, never inside a dial: a greenlet killed mid-dial would leave its
                # transaction open. What was claimed and not dialed goes back to the queue now.
                self._give_back(claim.calls[n:])
                break
            self.dialer.dial(call)
        self._note_waiting(claim.full)
        # A full claim may leave more due: come back at the next slot. A short one emptied what is due.
        return DispatchReport(len(claim.calls), 0, next_in=self._pace() if len(claim.calls) >= limit else None)

    def _give_back(self, calls: list[Call]) -> None:
        for call in calls:
            transition(call, QUEUED, reason="requeued: the dispatcher stopped before its originate slot",
                       attempt=call.attempt - 1, next_attempt_at=utcnow())

    def _pace(self) -> float:
        wait_time = getattr(self.dialer, "wait_time", None)
        return float(wait_time()) if wait_time is not None else 0.0

    def _note_waiting(self, full: set[str]) -> None:
        # Calls of organizations at their limit stay queued; each gets one timeline note per wait. The
        # query skips calls already noted, and a pass per second is enough for a timeline.
        now = time.monotonic()
        if not full or now - self._last_waiting_note < WAITING_NOTE_EVERY_S:
            return
        self._last_waiting_note = now
        queue.note_waiting(full)

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
            gevent.sleep(self.interval_s if report.next_in is None else min(report.next_in, self.interval_s))


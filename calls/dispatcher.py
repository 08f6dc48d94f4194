"""The dispatcher: polls the queue and hands due calls to a dialer.

While calls are due it does not sleep beyond the dialer's pacing: each pass wakes PREPARE_LEAD_S before the next
originate slot, claims as many calls as the dialer has slots for (one every 1/CALLS_PER_SECOND, a tenth of a second
ahead), prepares them all at once (database reads and switch round trips) and sends each in its slot. The slot is
then only the send: the spacing a carrier counts does not take on the preparation's jitter. DISPATCH_INTERVAL is only
the idle poll: nothing due, or no room to dial.

Without telephony there is no dialer: calls stay queued and the dispatcher says so, in the
words operators search for.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import gevent
import gevent.event
from gevent.pool import Pool

from background import BackgroundLoop
from calls import queue
from calls.state import transition
from models import QUEUED, Call, database, utcnow
from models.idempotency import purge_expired
from models.tenancy import drop_expired_signing_secrets

log = logging.getLogger(__name__)

WAITING_NOTE_EVERY_S = 1.0
# How long before its originate slot a pass claims and prepares a call: a claim and a preparation take a few ms on an
# idle machine and tens under load; a call ready early only waits for its slot.
PREPARE_LEAD_S = 0.05
PREPARE_CONCURRENCY = 8
NOT_CONFIGURED = "Telephony worker not configured — call remains queued. Set FREESWITCH_ESL_* in .env."


class Dialer(Protocol):
    def capacity(self) -> int:
        """How many calls may be started right now (limits, CPS tokens, node load)."""

    def prepare(self, call: Call) -> object | None:
        """Ahead of its slot, what a claimed call needs before it may leave; None: the call was ended, not dialed."""

    def dial(self, call: Call, prepared: object | None = None) -> None:
        """Start dialing a claimed call now, in its slot (non-blocking)."""

    def rest(self) -> None:
        """Nothing more is due: the next call due starts a new schedule (no slots saved up while idle)."""

    def notify_room(self, callback: Callable[[str], None]) -> None:
        """Call back with the organization's id whenever one of its live calls ends (room to dial)."""

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
        # Set when the last pass left due calls for want of room (the concurrent-call limits, a node's capacity):
        # a call ending then wakes the loop at once instead of at its next idle poll.
        self._wants_room = False
        self._wake = gevent.event.Event()
        if dialer is not None:
            dialer.notify_room(self._room_freed)

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
            self._wants_room = pace <= 0  # a slot is free, room is not: a call ending makes some
            return DispatchReport(0, 0, next_in=max(0.0, pace - PREPARE_LEAD_S) if pace > 0 else None)
        claim = queue.claim(limit, self.worker, getattr(self.dialer, "per_org_max", None))
        # Side by side, each with its own database connection; a few at a time, so that a catch-up claim does not
        # take the pool's connections from the calls' event handlers.
        prepared = Pool(PREPARE_CONCURRENCY).map(self.dialer.prepare, claim.calls)
        ready = [(call, ready) for call, ready in zip(claim.calls, prepared, strict=True) if ready is not None]
        for n, (call, prepared) in enumerate(ready):
            pause = self._pace()
            if pause > 0:
                gevent.sleep(pause)  # each call in its originate slot, 1/CALLS_PER_SECOND apart
            if self._stopping:
                # Stopping between slots, never inside a dial: a greenlet killed mid-dial would leave its
                # transaction open. What was claimed and not dialed goes back to the queue now.
                self._give_back([call for call, _ in ready[n:]])
                break
            self.dialer.dial(call, prepared)
        self._note_waiting(claim.full)
        self._wants_room = bool(claim.full)  # organizations at their limit have calls due
        if len(claim.calls) < limit:
            # A short claim emptied what is due: the next call starts its own schedule.
            self.dialer.rest()
            return DispatchReport(len(claim.calls), 0)
        # A full claim may leave more due: come back just before the next slot, to claim and prepare its calls.
        return DispatchReport(len(claim.calls), 0, next_in=max(0.0, self._pace() - PREPARE_LEAD_S))

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()  # not waiting out an idle poll
        super().stop(timeout)

    def _room_freed(self, org_id: str) -> None:
        if self._wants_room:
            self._wake.set()

    def _give_back(self, calls: list[Call]) -> None:
        for call in calls:
            transition(call, QUEUED, reason="requeued: the dispatcher stopped before its originate slot",
                       attempt=call.attempt - 1, next_attempt_at=utcnow())

    def _pace(self) -> float:
        return float(self.dialer.wait_time())

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
            self._wake.clear()  # a call ending during the pass still wakes the wait below
            try:
                with database.connection_context():
                    report = self.run_once()
            except Exception:
                log.exception("dispatch pass failed; retrying")
                report = DispatchReport(0, 0)
            self._wake.wait(self.interval_s if report.next_in is None else min(report.next_in, self.interval_s))


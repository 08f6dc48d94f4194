"""Admission limits for dialing: calls per second and concurrent calls, global and per organization.

The trunk's CPS is the real limit in telephony: carriers answer a burst above it with 503s, so
the dispatcher paces originates 1/CPS apart instead of dialing whatever is due at once.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable


class Pacer:
    """Originate slots 1/rate apart: the dispatcher dials a call in each slot as it comes due.

    Slots follow one another from the previous slot, not from when it was used, so a late wake-up
    does not lower the rate: the slots it missed are due at once (catch-up). The catch-up is capped
    at a tenth of a second's worth (at least one call): carriers count calls per second in short
    windows, so releasing a whole stall's worth at once would break their limit. Half a slot
    more is kept in hand so that ordinary wake-up lateness (a few ms of a loaded event loop) is made
    up instead of lost: at 10/s, a pass 7 ms late every time would otherwise dial at 9.3/s.

    Catch-up is for lateness while calls are due, never for an idle spell: a pacer that starts, or
    that rested (nothing was due), begins a new schedule at the first call, with no slots in hand.
    Otherwise the first two calls after every pause would leave half a slot apart, a 1-second window
    5 % over the rate at 10/s.
    """

    def __init__(self, rate_per_s: float, clock=time.monotonic):
        self.rate = rate_per_s
        self.interval = 1.0 / rate_per_s
        self.max_catch_up = max(1, int(rate_per_s / 10))
        self.max_lag = (self.max_catch_up - 0.5) * self.interval
        self.clock = clock
        self.next_slot = clock()
        self.resting = True  # a new pacer starts its schedule at its first call
        self._lock = threading.Lock()

    def _catch_up_floor(self, now: float) -> None:
        if self.resting:
            # The first call after a rest starts the schedule: its slot is now, or the rested slot if still ahead.
            self.next_slot = max(self.next_slot, now)
            self.resting = False
        # A late pacer keeps at most max_catch_up slots in hand.
        self.next_slot = max(self.next_slot, now - self.max_lag)

    def due(self, within: float = 0.0) -> int:
        """How many originate slots come due now or in the next `within` seconds."""
        with self._lock:
            now = self.clock()
            if now + within < self.next_slot:
                return 0
            start = max(self.next_slot, now) if self.resting else max(self.next_slot, now - self.max_lag)
            return int((now + within - start) * self.rate + 1e-9) + 1

    def take(self, count: int = 1) -> None:
        """Spend `count` slots (the calls being originated now)."""
        with self._lock:
            self._catch_up_floor(self.clock())
            self.next_slot += count * self.interval

    def rest(self) -> None:
        """Nothing is due: the next call starts a new schedule instead of drawing on slots passed while idle."""
        with self._lock:
            self.resting = True

    def wait_time(self) -> float:
        """Seconds until the next slot (0 when one is due)."""
        with self._lock:
            return max(0.0, self.next_slot - self.clock())


class ConcurrencyLimits:
    """Live calls counted globally and per organization; the controller adds and removes them."""

    def __init__(self, global_max: int, per_org_max: int):
        self.global_max = global_max
        self.per_org_max = per_org_max
        self.live: dict[str, str] = {}  # call id -> organization id
        self.per_org: Counter[str] = Counter()
        self.on_room: Callable[[str], None] | None = None  # room_made() tells it

    def free(self) -> int:
        return max(0, self.global_max - len(self.live))

    def admits(self, org_id: str, org_max: int | None = None) -> bool:
        limit = min(org_max or self.per_org_max, self.per_org_max)
        return len(self.live) < self.global_max and self.per_org[org_id] < limit

    def add(self, call_id: str, org_id: str) -> None:
        if call_id not in self.live:
            self.live[call_id] = org_id
            self.per_org[org_id] += 1

    def remove(self, call_id: str) -> None:
        org_id = self.live.pop(call_id, None)
        if org_id is not None:
            self.per_org[org_id] -= 1
            if self.per_org[org_id] <= 0:
                del self.per_org[org_id]

    def room_made(self, org_id: str) -> None:
        """A call of the organization ended and its row says so: the claim, which counts live calls in the
        database, can see the room (told after the write, not at remove(), which comes before it)."""
        if self.on_room is not None:
            self.on_room(org_id)

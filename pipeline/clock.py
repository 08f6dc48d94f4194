"""Time for the pipeline: the real monotonic clock, or a virtual one that tests and benches advance by hand.

Every timer in a session (end of turn, re-prompt, dead-air watchdog, playback estimate, fake provider latency)
reads now() and waits with sleep(), so a scripted timeline runs identically on every machine.
"""
from __future__ import annotations

import heapq
import itertools
import time
from typing import Protocol

import gevent
import gevent.event


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(max(0.0, seconds))


REAL_CLOCK = RealClock()


def settle(rounds: int = 30) -> None:
    """Let every runnable greenlet run until it blocks again (nothing here does real I/O).

    A fixed number of yields, not gevent.idle(): idle waits for the whole event loop to go
    quiet, which never happens while anything else in the process (a server, a heartbeat)
    keeps it busy.
    """
    for _ in range(rounds):
        gevent.sleep(0)


class VirtualClock:
    """A clock that only moves in advance(); sleepers wake in deadline order, each given time to run."""

    def __init__(self, start: float = 0.0):
        self._now = start
        self._sleepers: list[tuple[float, int, gevent.event.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            gevent.sleep(0)
            return
        event = gevent.event.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), event))
        event.wait()

    def advance(self, seconds: float) -> None:
        target = self._now + seconds
        settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, event = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            event.set()
            settle()
        self._now = target
        settle()

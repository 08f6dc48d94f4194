"""Admission limits for dialing: calls per second and concurrent calls, global and per organization.

The trunk's CPS is the real limit in telephony: carriers answer a burst above it with 503s, so
the dispatcher spends tokens at a steady rate instead of dialing whatever is due at once.
"""
from __future__ import annotations

import threading
import time
from collections import Counter


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float | None = None, clock=time.monotonic):
        self.rate = rate_per_s
        self.capacity = burst if burst is not None else max(1.0, rate_per_s)
        self.clock = clock
        self.tokens = self.capacity
        self.updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def available(self) -> int:
        with self._lock:
            self._refill()
            return int(self.tokens)

    def take(self, count: int = 1) -> bool:
        with self._lock:
            self._refill()
            if self.tokens >= count:
                self.tokens -= count
                return True
            return False

    def wait_time(self) -> float:
        with self._lock:
            self._refill()
            return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class ConcurrencyLimits:
    """Live calls counted globally and per organization; the controller adds and removes them."""

    def __init__(self, global_max: int, per_org_max: int):
        self.global_max = global_max
        self.per_org_max = per_org_max
        self.live: dict[str, str] = {}  # call id -> organization id
        self.per_org: Counter[str] = Counter()

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

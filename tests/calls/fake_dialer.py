"""A dialer stand-in for dispatcher tests: records what it is asked to prepare, dial and when it rests."""
from __future__ import annotations

from models import Call


class RecordingDialer:
    """`capacity` slots per pass, every slot due at once (wait_time 0) unless a test says otherwise."""

    def __init__(self, capacity: int = 10):
        self.slots = capacity
        self.prepared: list[str] = []
        self.dialed: list[str] = []
        self.rests = 0

    def capacity(self) -> int:
        return self.slots

    def wait_time(self) -> float:
        return 0.0

    def prepare(self, call: Call) -> Call:
        self.prepared.append(call.id)
        return call

    def dial(self, call: Call, prepared: object | None = None) -> None:
        assert prepared is call, "dialed without its preparation"
        self.dialed.append(call.id)

    def rest(self) -> None:
        self.rests += 1

    def notify_room(self, callback) -> None:
        self.room_freed = callback

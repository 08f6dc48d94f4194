"""Latency and error injection shared by the fakes."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fault:
    """What goes wrong with one request/connection (defaults: nothing).

    status: answer with this HTTP status and an error body instead of the scripted reply (or refuse the WS upgrade).
    latency_s: wait before the response starts (first byte / first message).
    chunk_delay_s: wait between chunks / messages.
    drop_after: close the socket abruptly after this many chunks / messages.
    stall_after: after this many chunks / messages, go silent for stall_s (to trigger client timeouts).
    """

    status: int | None = None
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    drop_after: int | None = None
    stall_after: int | None = None
    stall_s: float = 5.0

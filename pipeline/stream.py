"""What the audio-stream servers (pipeline/server.py, webcall/server.py) hand a session factory, and how they
refuse a stream: split from pipeline/server.py so each file holds one job."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.frames import Frame


class SessionLike(Protocol):
    ended: bool

    def start(self) -> None: ...

    def push_audio(self, pcm: bytes) -> None: ...

    def push_dtmf(self, digit: str) -> None: ...

    def stop(self, reason: str = ...) -> None: ...


@dataclass
class StreamInfo:
    """What the session factory learns about a new audio stream."""

    call_id: str
    call: Any  # whatever lookup(call_id) returned
    metadata: dict
    sample_rate: int
    peer: str
    extra: dict = field(default_factory=dict)


SessionFactory = Callable[[StreamInfo, Callable[[Frame], None]], SessionLike]
CallLookup = Callable[[str], Any]


class Refused(Exception):
    def __init__(self, reason: str, status: int = 403, close_code: int = 1008):
        super().__init__(reason)
        self.status, self.close_code = status, close_code

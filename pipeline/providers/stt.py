"""The streaming STT interface: push linear16 mono PCM, receive typed results.

open() returns an STTStream. Results are delivered to the on_result callback (called from the provider's own
greenlet) or, without one, queued for get(). Times are seconds of audio since the stream opened.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import gevent.queue

from pipeline.providers.errors import ProviderError


@dataclass(frozen=True)
class Transcript:
    """Interim (is_final False) or final text for [start, end]; speech_final marks the end of the caller's turn."""

    text: str
    is_final: bool
    speech_final: bool
    start: float
    end: float
    confidence: float | None = None


@dataclass(frozen=True)
class UtteranceEnd:
    """The provider saw a gap after the last word (Deepgram's UtteranceEnd): the turn is over."""

    last_word_end: float


@dataclass(frozen=True)
class STTFailed:
    """The stream died (dropped connection, provider error); no more results will come."""

    error: ProviderError


STTEvent = Transcript | UtteranceEnd | STTFailed
ResultCallback = Callable[[STTEvent], None]


class STTStream(ABC):
    def __init__(self, on_result: ResultCallback | None = None):
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._on_result = on_result or self._queue.put
        self.closed = False

    def emit(self, event: STTEvent) -> None:
        self._on_result(event)

    def get(self, timeout: float | None = None) -> STTEvent | None:
        """Next queued result (only when no on_result callback was given); None after `timeout` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except gevent.queue.Empty:
            return None

    @abstractmethod
    def send(self, pcm: bytes) -> None:
        """Push audio (any length, at the stream's sample rate). Raises ProviderError if the stream is dead."""

    @abstractmethod
    def finalize(self) -> None:
        """Ask for final results for all audio sent so far (the pipeline's own endpointer decided the turn ended)."""

    @abstractmethod
    def close(self) -> None:
        """Flush, release the connection/decoder. Idempotent; bounded in time."""

    def __enter__(self) -> STTStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class STT(ABC):
    name = "stt"

    @abstractmethod
    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        """Start a stream for one call leg; raises ProviderError/ProviderTimeout if it cannot start."""

"""Listening while an answering machine is being detected: the callee's audio also goes to the call's STT.

The gate (pipeline/machine_detection.py) feeds every detection frame to a stream of the call's own recognizer
(pocketsphinx offline, Deepgram when the agent uses it); interim and final text is offered to the detector's
`hear`, so a greeting's "please leave a message" decides before its cadence would. The stream then either
goes on into the conversation (a person, or no decision: their "Hello?" is not lost and the recognizer is not
started twice) or is closed (a machine). It never outlives the gate: every path ends in `hand_over` or `close`.

Results arrive on the provider's own greenlet; they are only stored here. The gate reads them on the audio
path (`take_words`), so a decision from words is made where every other decision is, one writer at a time.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gevent

from pipeline.interfaces import STT, ProviderError, STTEvent, STTFailed, STTStream, Transcript

log = logging.getLogger(__name__)


class DetectionListener:
    """One call's recognizer during detection. Not thread-safe: driven from the gate's audio path."""

    def __init__(self, stt: STT, sample_rate: int):
        self.stt, self.sample_rate = stt, sample_rate
        self.stream: STTStream | None = None
        self.closer: gevent.Greenlet | None = None  # the close in progress (tests join it)
        self._finals: list[str] = []
        self._interim = ""
        self._fresh = False  # words came since take_words() last looked
        self._sent_ms = 0.0  # audio the stream has had: its result times count from its first byte
        self._forward: Callable[[STTEvent], None] | None = None  # after hand-over: the session's handler

    def open(self) -> bool:
        """Start the stream; on failure detection goes on without words (cadence and beep still decide)."""
        try:
            self.stream = self.stt.open(self.sample_rate, on_result=self._on_result)
        except ProviderError as exc:
            log.warning("no words during answering-machine detection: STT could not start: %s", exc)
            return False
        return True

    def send(self, pcm: bytes) -> None:
        if self.stream is None:
            return
        try:
            self.stream.send(pcm)
        except ProviderError as exc:
            log.warning("STT failed during answering-machine detection: %s", exc)
            self.close()
            return
        self._sent_ms += len(pcm) / 2 / self.sample_rate * 1000  # PCM16 mono

    def take_words(self) -> str | None:
        """Everything recognized so far (finals, then the latest interim) when it changed since the last look."""
        if not self._fresh:
            return None
        self._fresh = False
        return " ".join([*self._finals, self._interim]).strip()

    @property
    def heard(self) -> str:
        """The final text so far: what the callee is sure to have said."""
        return " ".join(self._finals).strip()

    def hand_over(self, session: Any) -> None:
        """A person (or no decision): the session takes the stream as it is, with the words already final.

        A session without `adopt_stt` (one that opens its own) gets nothing and the stream is closed."""
        adopt = getattr(session, "adopt_stt", None)
        if self.stream is None:
            return
        if adopt is None:
            self.close()
            return
        stream, self.stream = self.stream, None
        # The session's audio clock starts at 0 now; the stream's started `_sent_ms` ago.
        self._forward = adopt(stream, -self._sent_ms, self.heard)

    def close(self) -> None:
        """A machine, the call's end or a broken stream: release the recognizer, off the audio path (a
        process's close waits for it to exit; and a failure reported on the stream's own greenlet must not
        join that greenlet)."""
        stream, self.stream = self.stream, None
        if stream is not None:
            self.closer = gevent.spawn(stream.close)

    def _on_result(self, event: STTEvent) -> None:
        if self._forward is not None:
            self._forward(event)
        elif self.stream is None:
            return  # closed: what was still on its way is not needed
        elif isinstance(event, Transcript):
            text = event.text.strip()
            if event.is_final:
                self._interim = ""
                if text:
                    self._finals.append(text)
            else:
                self._interim = text
            self._fresh = True
        elif isinstance(event, STTFailed):
            log.warning("STT failed during answering-machine detection: %s", event.error)
            self.close()

"""Early generation: the LLM's answer (and its first piece's audio) prepared while the caller may still go on.

Started on a stable interim transcript once the caller has gone quiet (pipeline/caller_input.py), before the
end of the turn is decided and before the STT's final text. Nothing of it is heard or recorded until the turn is
committed with the same words; if the caller goes on, or the final text differs, it is cancelled and discarded.
Customer tools and control events are only acted on by the reply that adopts it (no side effect runs early).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.queue

from observability.context import spawn
from pipeline.clauses import ClauseAggregator
from pipeline.interfaces import ProviderError, TextDelta

log = logging.getLogger("pipeline.session")

_END = object()
_WORDS = re.compile(r"[a-z0-9']+")


def normalize(text: str) -> str:
    """Words only: recognizers punctuate and case their interims and finals differently."""
    return " ".join(_WORDS.findall(text.lower()))


class Speculation:
    """One early answer. llm_call() starts the LLM's stream; synthesize(text) the TTS."""

    def __init__(self, text: str, llm_call: Callable[[], Iterator[Any]],
                 synthesize: Callable[[str], Iterator[bytes]], first_clause_words: int = 3):
        self.text = text
        self.key = normalize(text)
        self._llm_call, self._synthesize = llm_call, synthesize
        self._first_clause_words = first_clause_words
        self.events: gevent.queue.Queue = gevent.queue.Queue()
        self.first_piece: str | None = None
        self._audio: gevent.queue.Queue = gevent.queue.Queue()
        self._tts: gevent.Greenlet | None = None
        self.adopted = False
        self._llm = spawn(self._run)

    def matches(self, text: str) -> bool:
        return bool(self.key) and normalize(text) == self.key

    def cancel(self) -> None:
        for greenlet, queue in ((self._llm, self.events), (self._tts, self._audio)):
            if greenlet is not None and not greenlet.dead and greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)
                queue.put(_END)  # whoever still reads it stops there rather than waiting forever

    def _run(self) -> None:
        aggregator = ClauseAggregator(first_clause_words=self._first_clause_words)
        try:
            for event in self._llm_call():
                self.events.put(event)
                if self.first_piece is None and isinstance(event, TextDelta):
                    pieces = aggregator.push(event.text)
                    if pieces:
                        self._prepare(pieces[0])
            if self.first_piece is None:
                pieces = aggregator.flush()
                if pieces:
                    self._prepare(pieces[0])
        except ProviderError as exc:
            self.events.put(exc)  # raised in the adopting reply: its retry and apology rules apply
        except Exception as exc:  # a bug: the adopting reply reports it as it would its own
            self.events.put(exc)
        self.events.put(_END)

    def _prepare(self, piece: str) -> None:
        self.first_piece = piece
        self._tts = spawn(self._synth, piece)

    def _synth(self, piece: str) -> None:
        try:
            for chunk in self._synthesize(piece):
                self._audio.put(chunk)
        except Exception as exc:  # ProviderError (or a bug): raised where the audio is read
            self._audio.put(exc)
        self._audio.put(_END)

    def replay(self) -> Iterator[Any]:
        """The LLM's events as they come (already queued ones at once); its error, if any, is raised here."""
        while True:
            event = self.events.get()
            if event is _END:
                return
            if isinstance(event, Exception):
                raise event
            yield event

    def audio(self) -> Iterator[bytes]:
        """The first piece's audio chunks as the TTS produces them."""
        while True:
            chunk = self._audio.get()
            if chunk is _END:
                return
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

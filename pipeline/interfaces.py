"""The small interfaces the session is written against, structurally typed.

The provider layer (pipeline/providers/) defines the event types and ABCs; any object with these methods works,
so tests and benches pass fakes. Event types are re-exported from the provider layer so there is one definition.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from pipeline.providers.errors import ProviderError, ProviderTimeout
from pipeline.providers.llm import TextDelta, ToolCall, Turn
from pipeline.providers.stt import STTEvent, STTFailed, Transcript, UtteranceEnd

__all__ = [
    "LLM", "STT", "TTS", "ProviderError", "ProviderTimeout", "STTEvent", "STTFailed", "STTStream", "TextDelta",
    "ToolCall", "Transcript", "Turn", "UtteranceEnd",
]


@runtime_checkable
class STTStream(Protocol):
    closed: bool

    def send(self, pcm: bytes) -> None: ...

    def finalize(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class STT(Protocol):
    def open(self, sample_rate: int, on_result: Callable[[STTEvent], None] | None = None) -> STTStream: ...


@runtime_checkable
class LLM(Protocol):
    def stream(self, system_prompt: str, context: Mapping[str, Any] | None, turns: Sequence[Any],
               tools: Sequence[dict] = ...) -> Iterator[TextDelta | ToolCall]: ...


@runtime_checkable
class TTS(Protocol):
    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]: ...

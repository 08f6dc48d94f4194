"""In-process providers with fixed, injected latencies, implementing the real interfaces.

For pipeline tests and benches that need to subtract known provider latency from a measurement: no network,
no CPU-heavy decoding, deterministic output.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gevent

from pipeline.providers.errors import ProviderError
from pipeline.providers.llm import DEFAULT_TOOLS, LLM, LLMEvent, TextDelta, ToolCall
from pipeline.providers.stt import STT, ResultCallback, STTStream, Transcript
from pipeline.providers.tts import TTS, check_rate
from tests.fakes.elevenlabs import tone_pcm


class FixedLatencySTT(STT):
    """finalize() yields the next scripted utterance as a final, speech_final result after `latency_s`."""

    name = "fixed"

    def __init__(self, utterances: Sequence[str] = ("hello",), latency_s: float = 0.0):
        self.utterances = list(utterances)
        self.latency_s = latency_s
        self.streams: list[FixedLatencyStream] = []

    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        stream = FixedLatencyStream(self, sample_rate, on_result)
        self.streams.append(stream)
        return stream


class FixedLatencyStream(STTStream):
    def __init__(self, owner: FixedLatencySTT, sample_rate: int, on_result: ResultCallback | None):
        super().__init__(on_result)
        self.owner, self.sample_rate = owner, sample_rate
        self.audio_bytes = 0
        self._turn_start = 0.0

    def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("stream is closed", provider="fixed", retryable=False)
        self.audio_bytes += len(pcm)

    def finalize(self) -> None:
        now = self.audio_bytes / (2 * self.sample_rate)
        text = self.owner.utterances.pop(0) if self.owner.utterances else ""
        start, self._turn_start = self._turn_start, now
        gevent.spawn_later(self.owner.latency_s, self.emit, Transcript(text, True, True, start, now, 1.0))

    def close(self) -> None:
        self.closed = True


class FixedLatencyLLM(LLM):
    """Replies in order (text, optional tool calls); `first_token_s` before the first delta."""

    name = "fixed"

    def __init__(self, replies: Sequence[str | tuple[str, Sequence[ToolCall]]] = ("OK.",), first_token_s: float = 0.0,
                 token_delay_s: float = 0.0):
        self.replies = list(replies)
        self.first_token_s, self.token_delay_s = first_token_s, token_delay_s
        self.requests: list[dict[str, Any]] = []

    def stream(self, system_prompt: str, context: Mapping[str, Any] | None, turns: Sequence[Any],
               tools: Sequence[dict] = DEFAULT_TOOLS) -> Iterator[LLMEvent]:
        self.requests.append({"system_prompt": system_prompt, "context": context, "turns": list(turns)})
        reply = self.replies.pop(0) if self.replies else "OK."
        text, calls = (reply, ()) if isinstance(reply, str) else reply
        gevent.sleep(self.first_token_s)
        for i, word in enumerate(text.split(" ")):
            if i and self.token_delay_s:
                gevent.sleep(self.token_delay_s)
            yield TextDelta(word if i == 0 else " " + word)
        yield from calls

    def complete_json(self, system_prompt: str, user_text: str) -> dict:
        return {}


class FixedLatencyTTS(TTS):
    """A 440 Hz tone as long as the text would take to say; `first_chunk_s` before the first 100 ms chunk."""

    name = "fixed"

    def __init__(self, first_chunk_s: float = 0.0):
        self.first_chunk_s = first_chunk_s
        self.texts: list[str] = []

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        check_rate(sample_rate, self.name)
        self.texts.append(text)
        pcm = tone_pcm(text, sample_rate)
        gevent.sleep(self.first_chunk_s)
        size = sample_rate // 10 * 2
        for start in range(0, len(pcm), size):
            yield pcm[start:start + size]

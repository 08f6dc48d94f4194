"""In-process providers with fixed, injected latencies, implementing the real interfaces.

For pipeline tests and benches that need to subtract known provider latency from a measurement: no network,
no CPU-heavy decoding, deterministic output.
"""
from __future__ import annotations

import array
import math
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


class TimedWordsSTT(STT):
    """Scripted words on the audio's own timeline (an offline stand-in for a recognizer's interim and final
    results): each (seconds, text, is_final) is emitted once the stream has had `seconds` of audio after the
    speech began (its first frame louder than `onset_rms`), on a greenlet of its own as a provider's results
    come. finalize() emits the next of `finals` (as FixedLatencySTT does), so a conversation goes on after."""

    name = "timed"

    def __init__(self, script: Sequence[tuple[float, str, bool]], finals: Sequence[str] = (), onset_rms: float = 1000):
        self.script, self.finals, self.onset_rms = list(script), list(finals), onset_rms
        self.streams: list[TimedWordsStream] = []

    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        stream = TimedWordsStream(self, sample_rate, on_result)
        self.streams.append(stream)
        return stream


class TimedWordsStream(STTStream):
    def __init__(self, owner: TimedWordsSTT, sample_rate: int, on_result: ResultCallback | None):
        super().__init__(on_result)
        self.owner, self.sample_rate = owner, sample_rate
        self.script = list(owner.script)
        self.audio_s = 0.0
        self.onset_s: float | None = None
        self.emitted: list[Transcript] = []

    def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("stream is closed", provider="timed", retryable=False)
        if self.onset_s is None and pcm:
            samples = array.array("h", pcm[:len(pcm) // 2 * 2])
            if math.sqrt(sum(s * s for s in samples) / max(1, len(samples))) >= self.owner.onset_rms:
                self.onset_s = self.audio_s
        self.audio_s += len(pcm) / 2 / self.sample_rate
        while self.script and self.onset_s is not None and self.audio_s - self.onset_s >= self.script[0][0]:
            _, text, final = self.script.pop(0)
            self._emit(Transcript(text, final, final, self.onset_s, self.audio_s, 0.9))

    def finalize(self) -> None:
        if self.owner.finals:
            self._emit(Transcript(self.owner.finals.pop(0), True, True, self.audio_s, self.audio_s, 0.9))

    def _emit(self, event: Transcript) -> None:
        self.emitted.append(event)
        gevent.spawn(self.emit, event)

    def close(self) -> None:
        self.closed = True

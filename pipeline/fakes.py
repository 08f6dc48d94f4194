"""Deterministic fake providers and a scripted call timeline, for tests and benches (never used in production).

The fakes satisfy pipeline.interfaces; their latencies are spent on the injected clock, so under a VirtualClock
"the LLM answers after 0.1 s" is exact, and under the real clock it is a real fixed delay (the bench).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import gevent
import numpy as np

from pipeline.clock import Clock, VirtualClock
from pipeline.frames import Frame, TTSAudio
from pipeline.interfaces import ProviderError, TextDelta, ToolCall, Transcript, UtteranceEnd

VOICE_LEVEL = 3000


class EnergyVAD:
    """Voiced when the frame is not near-silent: the scripted caller's "speech" is a loud tone."""

    def is_speech(self, pcm: bytes, sample_rate: int) -> bool:
        return bool(pcm) and int(np.abs(np.frombuffer(pcm, dtype="<i2")).max()) > VOICE_LEVEL // 2


def voice(ms: int, sample_rate: int = 16000) -> bytes:
    t = np.arange(sample_rate * ms // 1000) / sample_rate
    return (np.sin(2 * np.pi * 220 * t) * VOICE_LEVEL).astype("<i2").tobytes()


def silence(ms: int, sample_rate: int = 16000) -> bytes:
    return bytes(sample_rate * ms // 1000 * 2)


@dataclass
class Utterance:
    text: str
    start: float  # seconds of call audio
    end: float
    pcm: bytes | None = None  # real speech to send instead of the tone (e.g. espeak-ng), at the call's rate


class FakeSTTStream:
    """Like a real streaming STT: its times start at 0 when it opens, whatever the call's audio clock says."""

    def __init__(self, stt: FakeSTT, sample_rate: int, on_result, offset_s: float = 0.0):
        self.stt, self.sample_rate, self.on_result = stt, sample_rate, on_result
        self.offset_s = offset_s  # call audio sent to earlier streams: this stream's time 0
        self.closed = False
        self.audio_s = 0.0
        self.finalizes = 0
        self._interim_words: dict[int, int] = {}  # id(utterance) -> words already given as interims

    def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("stream closed", provider="fake-stt")
        self.audio_s += len(pcm) / 2 / self.sample_rate
        if self.stt.fail_at is not None and self.audio_s >= self.stt.fail_at:
            self.stt.fail_at = None
            raise ProviderError("fake STT dropped", provider="fake-stt")
        if self.stt.interims is not None:
            self._interim()
        if self.stt.endpointing is not None:
            self._endpoint()

    def _interim(self) -> None:
        """Interim text as the words are said: the share of the line's words its elapsed time covers."""
        for u in self.stt.utterances:
            start, end = u.start - self.offset_s, u.end - self.offset_s
            if self.audio_s <= start + 1e-6:
                continue
            words = u.text.split()
            share = min(1.0, (self.audio_s - start) / max(end - start, 1e-6))
            count = len(words) if share >= 1.0 - 1e-6 else int(len(words) * share)
            if count > self._interim_words.get(id(u), 0):
                self._interim_words[id(u)] = count
                heard_to = min(self.audio_s, end)
                self._later(self.stt.interims, Transcript(" ".join(words[:count]), False, False, max(0.0, start),
                                                          heard_to))

    def _later(self, delay: float, event) -> None:
        def deliver() -> None:
            if delay:
                self.stt.clock.sleep(delay)
            if not self.closed:
                self.on_result(event)

        gevent.spawn(deliver)

    def _endpoint(self) -> None:
        """The provider's own end of utterance, `endpointing` s after the words end (Deepgram's endpointing)."""
        ready = self._take(lambda u: u.end - self.offset_s + self.stt.endpointing <= self.audio_s + 1e-6)
        if ready:
            self._deliver(ready, self.audio_s, speech_final=not self.stt.utterance_end, utterance_end=True)

    def _take(self, due) -> list[Utterance]:
        ready = [u for u in self.stt.utterances if due(u)]
        self.stt.utterances = [u for u in self.stt.utterances if u not in ready]
        return ready

    def finalize(self) -> None:
        self.finalizes += 1
        ready = self._take(lambda u: u.end - self.offset_s <= self.audio_s + 1e-6)
        self._deliver(ready, self.audio_s, speech_final=self.stt.speech_final, utterance_end=self.stt.utterance_end,
                      empty=True)

    def _deliver(self, ready: list[Utterance], at: float, speech_final: bool, utterance_end: bool,
                 empty: bool = False) -> None:
        def deliver() -> None:
            if self.stt.latency:
                self.stt.clock.sleep(self.stt.latency)
            if not ready and empty:
                self.on_result(Transcript("", True, speech_final, at, at))
            lines = ready
            if ready and self.stt.interims is not None:
                # A recognizer that streams interims finalizes what it heard as one result.
                lines = [Utterance(" ".join(u.text for u in ready), ready[0].start, ready[-1].end)]
            for u in lines:
                start = max(0.0, u.start - self.offset_s)
                self.on_result(Transcript(u.text, True, speech_final, start, max(u.end - self.offset_s, at)))
            if utterance_end:
                self.on_result(UtteranceEnd(at))

        gevent.spawn(deliver)

    def close(self) -> None:
        self.closed = True


class FakeSTT:
    """Knows what the scripted caller says when; the final text arrives `latency` after finalize().

    speech_final=False: finals without the end-of-turn flag (a provider that only answers what was asked).
    endpointing=s: the provider also ends utterances itself, s after the words end (speech_final, or an
    UtteranceEnd when utterance_end is set), without waiting for finalize().
    interims=s: interim transcripts too, s after the audio they cover (the words spread evenly over the line).
    """

    def __init__(self, clock: Clock, latency: float = 0.0, utterance_end: bool = False, speech_final: bool = True,
                 endpointing: float | None = None, interims: float | None = None):
        self.clock, self.latency, self.utterance_end = clock, latency, utterance_end
        self.speech_final, self.endpointing = speech_final, endpointing
        self.interims = interims  # s after the audio: interim transcripts of the words said so far (None: none)
        self.utterances: list[Utterance] = []
        self.streams: list[FakeSTTStream] = []
        self.fail_at: float | None = None
        self.fail_open = 0  # how many open() calls fail next

    def open(self, sample_rate: int, on_result=None) -> FakeSTTStream:
        if self.fail_open:
            self.fail_open -= 1
            raise ProviderError("fake STT refused to open", provider="fake-stt")
        stream = FakeSTTStream(self, sample_rate, on_result, offset_s=sum(s.audio_s for s in self.streams))
        self.streams.append(stream)
        return stream


Reply = list  # TextDelta/ToolCall events; or an Exception to raise; or "hang" to never answer


class FakeLLM:
    """Answers from a list of scripted replies (or a function of the turns) after a fixed first-token latency."""

    name = "fake-llm"

    def __init__(self, clock: Clock, replies: list | Callable[[list], Reply], latency: float = 0.1):
        self.clock, self.replies, self.latency = clock, replies, latency
        self.calls: list[list] = []

    def stream(self, system_prompt, context, turns, tools=()) -> Iterator:
        self.calls.append(list(turns))
        reply = self.replies(list(turns)) if callable(self.replies) else self.replies.pop(0)
        self.clock.sleep(self.latency)
        if isinstance(reply, Exception):
            raise reply
        if reply == "hang":
            self.clock.sleep(3600)
        yield from reply


def say(text: str, *tools: ToolCall) -> list:
    """A reply streamed word by word, then its tool calls."""
    words = text.split(" ")
    return [TextDelta(w if i == 0 else " " + w) for i, w in enumerate(words)] + list(tools)


class FakeTTS:
    """Each word is `ms_per_word` of audio; the first chunk comes after `latency`."""

    name = "fake-tts"

    def __init__(self, clock: Clock, latency: float = 0.05, ms_per_word: int = 300, fail_on: str | None = None):
        self.clock, self.latency, self.ms_per_word, self.fail_on = clock, latency, ms_per_word, fail_on
        self.spoken: list[str] = []

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        if self.fail_on is not None and self.fail_on in text:
            raise ProviderError("fake TTS refused", provider="fake-tts")
        self.clock.sleep(self.latency)
        self.spoken.append(text)
        ms = self.ms_per_word * len(text.split())
        yield bytes(sample_rate * ms // 1000 * 2)


@dataclass
class Sent:
    t_ms: float
    frame: Frame


@dataclass
class CallScript:
    """Caller lines (spoken as tone + scripted transcript) and keypresses on a call timeline in seconds."""

    lines: list[Utterance] = field(default_factory=list)
    keys: list[tuple[float, str]] = field(default_factory=list)

    def say(self, at: float, text: str, duration: float = 1.0, pcm: bytes | None = None,
            sample_rate: int = 16000) -> CallScript:
        """A caller line; with pcm, that audio is sent (and its length is the line's duration)."""
        if pcm is not None:
            duration = len(pcm) / 2 / sample_rate
        self.lines.append(Utterance(text, at, at + duration, pcm))
        return self

    def press(self, at: float, digits: str) -> CallScript:
        self.keys += [(at, d) for d in digits]
        return self

    def voiced(self, t: float) -> bool:
        return any(u.start <= t < u.end for u in self.lines)

    def line_at(self, t: float) -> Utterance | None:
        return next((u for u in self.lines if u.start <= t < u.end), None)


class Timeline:
    """Runs a session against a CallScript on a virtual clock, 20 ms of audio per step, recording its output."""

    def __init__(self, clock: VirtualClock, script: CallScript, stt: FakeSTT, sample_rate: int = 16000,
                 rtp: str = "continuous", held_until: float = 0.0):
        self.clock, self.script, self.stt, self.sample_rate = clock, script, stt, sample_rate
        # Frames said before `held_until` reach the session all at once then: the switch flushing what it
        # buffered before the WebSocket was up.
        self.held_until, self._held = held_until, []
        # "suppress": like mod_audio_fork behind a carrier that suppresses silence, no frame at all while the
        # caller is silent; "continuous": a frame every 20 ms.
        self.rtp = rtp
        self.stt.utterances = list(script.lines)
        self.sent: list[Sent] = []
        self.session = None
        self.t = 0.0
        self._voice = voice(20, sample_rate)
        self._silence = silence(20, sample_rate)

    def sink(self, frame: Frame) -> None:
        self.sent.append(Sent(self.clock.now() * 1000.0, frame))

    def run(self, until: float) -> None:
        keys = sorted(self.script.keys, key=lambda key: key[0])
        while self.t < until - 1e-9 and not self.session.ended:
            # A frame reaches the pipeline once it has been spoken: at the end of its 20 ms.
            self.clock.advance(0.02)
            for at, digit in keys:
                if self.t <= at < self.t + 0.02:
                    self.session.push_dtmf(digit)
            if self.rtp == "continuous" or self.script.voiced(self.t):
                self._held.append(self._frame_at(self.t))
            if self.t + 0.02 >= self.held_until - 1e-9:
                for frame in self._held:
                    self.session.push_audio(frame)
                self._held = []
            self.t = round(self.t + 0.02, 6)

    def _frame_at(self, t: float) -> bytes:
        line = self.script.line_at(t)
        if line is None:
            return self._silence
        if line.pcm is None:
            return self._voice
        size = len(self._silence)
        offset = int(round((t - line.start) / 0.02)) * size
        return line.pcm[offset:offset + size].ljust(size, b"\0")

    def audio(self) -> list[Sent]:
        return [s for s in self.sent if isinstance(s.frame, TTSAudio)]

    def kinds(self) -> list[str]:
        return [type(s.frame).__name__ for s in self.sent]

"""Typed frames: everything that flows through the pipeline, one dataclass per kind.

Audio and text travel one way (caller audio in -> turns -> reply audio out); each processor takes a frame and
returns the frames it produced. Times are milliseconds since the session started (the session's clock).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Frame:
    """Base class, so processors and sinks can be typed against any frame."""


@dataclass(frozen=True)
class AudioIn(Frame):
    """One 20 ms frame of caller audio (16-bit LE mono PCM) starting at t_ms."""

    pcm: bytes
    sample_rate: int
    t_ms: float


@dataclass(frozen=True)
class VoicedAudio(Frame):
    """AudioIn annotated by the VAD."""

    audio: AudioIn
    voiced: bool


@dataclass(frozen=True)
class SpeechStarted(Frame):
    """The endpointer saw enough voiced frames: the caller is talking (onset_ms = first voiced frame)."""

    t_ms: float
    onset_ms: float


@dataclass(frozen=True)
class SpeechStopped(Frame):
    """The caller stopped. end_of_turn is False when the utterance was too short to count (a cough, a click)."""

    t_ms: float
    last_voiced_ms: float
    speech_ms: float
    end_of_turn: bool
    by_stt: bool = False


@dataclass(frozen=True)
class Transcript(Frame):
    text: str
    final: bool
    speech_final: bool = False


@dataclass(frozen=True)
class UserTurn(Frame):
    """What the caller said (or typed on the keypad) in one turn."""

    text: str
    start_ms: float
    end_ms: float
    source: str = "speech"  # "speech" | "dtmf"


@dataclass(frozen=True)
class LLMText(Frame):
    text: str


@dataclass(frozen=True)
class ToolCall(Frame):
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TTSAudio(Frame):
    """Reply audio for (part of) one sentence; text is set on the first chunk of the sentence."""

    pcm: bytes
    sample_rate: int
    text: str = ""
    stream: bool = False  # True: send as binary frames (bidirectional mode); False: one playAudio file

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate * 1000.0


@dataclass(frozen=True)
class PlaybackStarted(Frame):
    t_ms: float


@dataclass(frozen=True)
class PlaybackStopped(Frame):
    t_ms: float
    interrupted: bool


@dataclass(frozen=True)
class Interrupt(Frame):
    """Stop what is playing now (killAudio to mod_audio_fork, uuid_break through the call controller)."""

    t_ms: float


@dataclass(frozen=True)
class DTMF(Frame):
    digit: str


@dataclass(frozen=True)
class EndCall(Frame):
    reason: str


@dataclass(frozen=True)
class Transfer(Frame):
    destination: str
    reason: str = ""


@dataclass(frozen=True)
class AgentEvent(Frame):
    """A JSON notification for the call controller (mod_audio_fork relays it as a mod_audio_fork::json event)."""

    data: dict[str, Any]


@dataclass(frozen=True)
class TurnRecord(Frame):
    """One line of the transcript, reported to the app through on_turn as it happens."""

    speaker: str  # "agent" | "caller"
    text: str
    start_ms: int
    end_ms: int
    interrupted: bool = False
    source: str = "speech"  # "speech" | "dtmf" | "tool"
    data: dict[str, Any] | None = None  # a tool line's call and result (pipeline/tools/turns.py)
    latency: dict[str, float | None] | None = None  # agent turns: pipeline.latency.TurnLatency.as_dict()

"""Where an agent turn's time went: the latency breakdown stored with the turn and summarised on the call.

All marks are session milliseconds read from the session's clock (pipeline/clock.py), so a scripted timeline on a
VirtualClock yields exactly the latencies the fakes were given. The components, each in ms (None when the turn
had no such step, e.g. a keypad turn has no voiced end, a pre-synthesised line no TTS):

  eou_ms             caller's last voiced frame -> the end of the caller's turn was decided (end-of-turn wait)
  stt_final_ms       caller's last voiced frame -> the final transcript arrived (0 when it came before)
  llm_first_token_ms reply started (turn committed) -> the LLM's first token or tool call
  tts_first_audio_ms first sentence handed to the TTS -> its first audio chunk
  delivery_ms        that first audio chunk -> the first agent audio handed to the switch (playAudio or a
                     streamed frame; in playAudio mode this includes synthesising the rest of the sentence)
  total_ms           caller's last voiced frame -> first agent audio handed to the switch

As in LiveKit Agents' metrics, end-of-turn wait and STT final both count from the end of speech, so they
overlap; total is measured, not summed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

COMPONENTS = ("eou_ms", "stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms", "delivery_ms", "total_ms")


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 1)


@dataclass
class TurnLatency:
    """The breakdown of one agent turn, as stored in its transcript entry under "latency"."""

    eou_ms: float | None = None
    stt_final_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_audio_ms: float | None = None
    delivery_ms: float | None = None
    total_ms: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class LatencyMarks:
    """The moments one reply passed through, in session ms; the session sets each once (the first time)."""

    voiced_end: float | None = None  # the caller's last voiced frame (None: a keypad turn, a re-prompt)
    turn_ended: float | None = None
    final_at: float | None = None
    reply_started: float | None = None
    llm_first: float | None = None
    tts_requested: float | None = None
    tts_first: float | None = None
    delivered: float | None = None

    def mark(self, name: str, at: float) -> None:
        if getattr(self, name) is None:
            setattr(self, name, at)

    def latency(self) -> TurnLatency:
        return TurnLatency(
            eou_ms=_span(self.voiced_end, self.turn_ended),
            stt_final_ms=_span(self.voiced_end, self.final_at),
            llm_first_token_ms=_span(self.reply_started, self.llm_first),
            tts_first_audio_ms=_span(self.tts_requested, self.tts_first),
            delivery_ms=_span(self.tts_first, self.delivered),
            total_ms=_span(self.voiced_end, self.delivered),
        )


def _p50(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return round((ordered[middle - 1] + ordered[middle]) / 2, 1)


def summarize(turns: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Per component: p50, max and how many agent turns measured it, over a call's transcript entries."""
    samples: dict[str, list[float]] = {name: [] for name in COMPONENTS}
    for turn in turns:
        latency = turn.get("latency") if isinstance(turn, Mapping) else None
        if not isinstance(latency, Mapping):
            continue
        for name in COMPONENTS:
            value = latency.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                samples[name].append(float(value))
    return {name: {"p50": _p50(values) if values else None, "max": max(values) if values else None,
                   "count": len(values)} for name, values in samples.items()}

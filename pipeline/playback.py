"""What the caller actually heard: the agent's sentences laid out on the playback timeline.

An interrupted turn is truncated to the words whose share of their sentence's audio had played by the moment of
the interruption (words are assumed evenly spread over the sentence's audio: a good estimate for TTS speech).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Segment:
    start_ms: float
    end_ms: float
    text: str


class PlayedSegments:
    def __init__(self) -> None:
        self.segments: list[Segment] = []

    def __bool__(self) -> bool:
        return bool(self.segments)

    @property
    def start_ms(self) -> float:
        return self.segments[0].start_ms if self.segments else 0.0

    def add(self, start_ms: float, end_ms: float, text: str) -> None:
        """A chunk of audio; a chunk without text continues the previous sentence (streamed audio)."""
        if not text and self.segments:
            self.segments[-1].end_ms = max(self.segments[-1].end_ms, end_ms)
        else:
            self.segments.append(Segment(start_ms, end_ms, text))

    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()

    def played_text(self, at_ms: float) -> str:
        words: list[str] = []
        for segment in self.segments:
            if at_ms >= segment.end_ms:
                words += segment.text.split()
            elif at_ms > segment.start_ms:
                share = (at_ms - segment.start_ms) / (segment.end_ms - segment.start_ms)
                sentence = segment.text.split()
                words += sentence[: int(len(sentence) * share)]
        return " ".join(words)

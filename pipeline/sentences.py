"""LLMText deltas -> one LLMText per speakable sentence (the provider layer's splitter does the parsing)."""
from __future__ import annotations

from pipeline.frames import LLMText
from pipeline.providers.sentences import SentenceSplitter


class SentenceAggregator:
    def __init__(self, max_chars: int = 200):
        self._splitter = SentenceSplitter(max_chars=max_chars)

    def push(self, delta: str) -> list[str]:
        return self._splitter.push(delta)

    def flush(self) -> list[str]:
        return self._splitter.flush()

    def process(self, frame: LLMText) -> list[LLMText]:
        return [LLMText(s) for s in self.push(frame.text)]

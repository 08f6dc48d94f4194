"""Turn streamed LLM text deltas into speakable sentences as soon as each one is complete.

A sentence is complete when terminal punctuation (. ! ? ...) is followed by whitespace, or at a newline; the
whitespace proves the token stream has moved on ("3.5", "e.g." and "Dr." are not ends). A run-on reply without
punctuation is cut at a comma or space once it gets long, so the caller never waits on one huge sentence.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "no", "approx"}
_END = re.compile(r"([.!?\u2026]+[\"')\]]*)(\s+)|(\n+)")


class SentenceSplitter:
    """push() deltas, get back the sentences they completed; flush() at the end of the reply."""

    def __init__(self, max_chars: int = 200):
        self.max_chars = max_chars
        self._buffer = ""

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while True:
            sentence = self._take_sentence()
            if sentence is None:
                break
            if sentence:
                out.append(sentence)
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _take_sentence(self) -> str | None:
        for match in _END.finditer(self._buffer):
            end = match.end(1) if match.group(1) else match.start(3)
            candidate = self._buffer[:end]
            if match.group(1) and _ends_with_abbreviation(candidate):
                continue
            self._buffer = self._buffer[match.end() :]
            return candidate.strip()
        if len(self._buffer) > self.max_chars:
            return self._cut_long()
        return None

    def _cut_long(self) -> str:
        window = self._buffer[: self.max_chars]
        cut = max(window.rfind(", "), window.rfind("; "))
        cut = cut + 1 if cut > 0 else window.rfind(" ")
        if cut <= 0:
            cut = self.max_chars
        sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
        return sentence


def _ends_with_abbreviation(text: str) -> bool:
    word = text.rstrip(".!?\u2026\"')]").rsplit(None, 1)[-1] if text.strip() else ""
    if not text.rstrip("\"')]").endswith("."):
        return False
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def iter_sentences(deltas: Iterable[str], max_chars: int = 200) -> Iterator[str]:
    """Yield each sentence the moment the delta completing it arrives, then whatever remains."""
    splitter = SentenceSplitter(max_chars=max_chars)
    for delta in deltas:
        yield from splitter.push(delta)
    yield from splitter.flush()

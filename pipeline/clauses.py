"""LLM text deltas -> speakable pieces: the reply's first clause on its own, then whole sentences.

The caller waits for the first piece only: cutting it at a clause ("Sure, | I can book that for you.") puts the
first audio out as soon as a few words are ready; later pieces stay whole sentences, which TTS voices say
better and which cost one request each.
"""
from __future__ import annotations

import re

from pipeline.providers.sentences import SentenceSplitter

_CLAUSE = re.compile(r"[,;:\u2014](?=\s)")


class ClauseAggregator:
    """push() deltas, get back the pieces they completed; flush() at the end of the reply."""

    def __init__(self, max_chars: int = 200, first_clause_words: int = 3):
        self.max_chars, self.first_clause_words = max_chars, first_clause_words
        self._splitter = SentenceSplitter(max_chars=max_chars)
        self._first = first_clause_words > 0
        self._seen = ""  # the text pushed while the first piece is still open

    def push(self, delta: str) -> list[str]:
        pieces = self._splitter.push(delta)
        if not self._first:
            return pieces
        if pieces:
            self._first = False
            return pieces
        self._seen += delta
        for match in _CLAUSE.finditer(self._seen):
            clause = self._seen[: match.end()].strip()
            if len(clause.split()) >= self.first_clause_words:
                rest = self._seen[match.end():].lstrip()
                self._first = False
                self._splitter = SentenceSplitter(max_chars=self.max_chars)
                return [clause, *self._splitter.push(rest)]
        return []

    def flush(self) -> list[str]:
        return self._splitter.flush()

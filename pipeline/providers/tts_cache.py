"""A process-wide, byte-bounded LRU cache of synthesized speech (PCM at the call's rate).

Why: the scripted agent says the same greeting, questions and closing on every call, and an offline TTS such
as espeak-ng spends a subprocess and tens of CPU-ms on each sentence; with many calls per core that repeated
work is most of the TTS's cost. A TTS opts in by calling `cached()` with a key naming everything that changes
the audio (its name, voice settings, rate of speech, the text, the output sample rate); cloud TTS do not opt
in (their output may carry per-request variation, and their terms may not allow keeping it).

Bounded by TTS_CACHE_MB (config.py; 0 disables). A failed synthesis raises through `cached()` and stores
nothing. Safe under gevent and threads: one lock around the dict, never held while synthesizing. Calls started
together all miss the greeting at once: the first synthesizes it and the others wait for that result instead
of each running espeak-ng (if it fails, one of them tries in its turn).
"""
from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable

from observability.metrics import count_tts_cache

DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # TTS_CACHE_MB's default: ~17 minutes of 16 kHz speech


class TTSCache:
    """Keys to PCM, least recently used evicted first once the stored bytes pass `max_bytes` (0: off)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._items: collections.OrderedDict[Hashable, bytes] = collections.OrderedDict()
        self._lock = threading.Lock()  # gevent-patched in the app: a greenlet lock, never held across I/O
        self._pending: dict[Hashable, threading.Event] = {}  # keys being synthesized now
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            pcm = self._items.get(key)
            if pcm is not None:
                self._items.move_to_end(key)
            return pcm

    def put(self, key: Hashable, pcm: bytes) -> None:
        if len(pcm) > self.max_bytes:  # also the disabled case (0); one huge text must not flush the rest
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._items[key] = pcm
            self.bytes += len(pcm)
            while self.bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.bytes -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

    def cached(self, key: tuple, provider: str, synthesize: Callable[[], bytes]) -> bytes:
        """The PCM for `key`: stored, or made by `synthesize()` (whose errors propagate, nothing stored)."""
        if self.max_bytes <= 0:
            return synthesize()
        while True:
            pcm, pending, mine = self._lookup(key)
            if pending is None:
                break
            # Another caller is synthesizing this key: its result, not a second run. If it failed (or was
            # too large to keep), the next lookup makes one of the waiters the one that synthesizes.
            pending.wait()
        with self._lock:
            if pcm is not None:
                self.hits += 1
            else:
                self.misses += 1
        count_tts_cache(provider, hit=pcm is not None)
        if pcm is not None:
            return pcm
        try:
            pcm = synthesize()
            if pcm:  # an empty result (blank text) costs nothing to redo
                self.put(key, pcm)
            return pcm
        finally:
            if mine is not None:
                with self._lock:
                    self._pending.pop(key, None)
                mine.set()

    def _lookup(self, key: Hashable) -> tuple[bytes | None, threading.Event | None, threading.Event | None]:
        """(stored PCM, the event of a synthesis under way to wait for, or the event this caller now owns)."""
        with self._lock:
            pcm = self._items.get(key)
            if pcm is not None:
                self._items.move_to_end(key)
                return pcm, None, None
            pending = self._pending.get(key)
            if pending is not None:
                return None, pending, None
            mine = self._pending[key] = threading.Event()
            return None, None, mine


_shared = TTSCache()


def shared_cache() -> TTSCache:
    """The process's cache (every opted-in TTS of every call shares it)."""
    return _shared


def configure(max_bytes: int) -> TTSCache:
    """Resize the process's cache (serve, from TTS_CACHE_MB); what no longer fits is dropped."""
    global _shared
    _shared = TTSCache(max_bytes)
    return _shared

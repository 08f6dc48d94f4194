"""One call's stream on the offline recognizer pool (pocketsphinx_pool): its bounded outbox, and how audio is
thinned when a worker falls behind. Split from the pool so each file reads on its own."""
from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

import gevent.event
import numpy as np

from observability.metrics import count_stt_pool_overflow
from pipeline.providers.errors import ProviderError
from pipeline.providers.pocketsphinx_recognizer import RecognizerOptions
from pipeline.providers.stt import ResultCallback, STTFailed, STTStream

if TYPE_CHECKING:
    from pipeline.providers.pocketsphinx_pool import RecognizerPool, _Worker

log = logging.getLogger("pipeline.providers.pocketsphinx_pool")  # the pool's logger, as before the split


QUIET_RMS = 300.0  # about -40 dBFS: below it a 20 ms frame is a pause or line noise, not a word


def _thin(pcm: bytes, frame: int, excess: int, quiet_only: bool) -> tuple[list, int]:
    """Take up to `excess` bytes out of `pcm`, whole frames, oldest first (only quiet ones when quiet_only).
    Returns the pieces left, as [b"A", bytearray] and [b"S", skipped byte count], and the bytes taken."""
    count = len(pcm) // frame
    if quiet_only and count:
        samples = np.frombuffer(pcm[:count * frame], dtype="<i2").astype(np.float32).reshape(count, -1)
        droppable = np.sqrt((samples * samples).mean(axis=1)) < QUIET_RMS
    else:
        droppable = np.ones(count, dtype=bool)
    budget = excess // frame + (1 if excess % frame else 0)
    pieces: list = []
    taken = 0
    for i in range(count):
        drop = budget > 0 and bool(droppable[i])
        if drop:
            budget -= 1
            taken += frame
            if pieces and pieces[-1][0] == b"S":
                pieces[-1][1] += frame
            else:
                pieces.append([b"S", frame])
        elif pieces and pieces[-1][0] == b"A":
            pieces[-1][1].extend(pcm[i * frame:(i + 1) * frame])
        else:
            pieces.append([b"A", bytearray(pcm[i * frame:(i + 1) * frame])])
    tail = pcm[count * frame:]
    if tail:
        if pieces and pieces[-1][0] == b"A":
            pieces[-1][1].extend(tail)
        else:
            pieces.append([b"A", bytearray(tail)])
    return pieces, taken


class PooledStream(STTStream):
    """One call's recognizer stream on a pool worker. send/finalize never block."""

    def __init__(self, pool: RecognizerPool, sid: int, options: RecognizerOptions,
                 on_result: ResultCallback | None):
        super().__init__(on_result)
        self.pool, self.sid, self.options = pool, sid, options
        self.worker: _Worker | None = None
        self.outbox: collections.deque = collections.deque()  # [kind, bytearray | int], oldest first
        self.queued_audio = 0  # audio bytes in the outbox
        self.limit = max(3200, int(pool.max_backlog_s * options.input_rate) * 2)
        self.dropped_bytes = 0
        self.crashes = 0
        self.failed: ProviderError | None = None
        self.acked = gevent.event.Event()  # the worker answered our close

    def send(self, pcm: bytes) -> None:
        if self.failed:
            raise self.failed
        if self.closed:
            raise ProviderError("stream is closed", provider="pocketsphinx", retryable=False)
        if not pcm:
            return
        self.pool.stats.frames_accepted += 1
        if self.outbox and self.outbox[-1][0] == b"A":
            self.outbox[-1][1].extend(pcm)  # merged: one message however many frames queued up
        else:
            self.outbox.append([b"A", bytearray(pcm)])
        self.queued_audio += len(pcm)
        if self.queued_audio > self.limit:
            self._overflow()
        self._wake()

    def finalize(self) -> None:
        if not (self.closed or self.failed):
            self.outbox.append([b"F", b""])
            self._wake()

    def close(self, timeout: float = 10.0) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.failed and self.worker is not None:
            self.outbox.append([b"C", b""])
            self._wake()
            if not self.acked.wait(timeout):
                log.warning("pocketsphinx stream %d: no answer to close within %.1f s", self.sid, timeout)
        self.pool._forget(self)

    def _overflow(self) -> None:
        """Bring the queued audio down to half the limit: the quiet 20 ms frames first (pauses, line
        silence: the words survive a short overload), then the oldest audio. A skip marker stays where audio
        was taken, so the worker's clock (the results' times) stays right."""
        target = self.limit // 2
        before = self.queued_audio
        frame = max(2, self.options.input_rate // 50 * 2)
        for quiet_only in (True, False):
            rebuilt: collections.deque = collections.deque()
            for kind, payload in self.outbox:
                excess = self.queued_audio - target
                if kind != b"A" or excess <= 0:
                    rebuilt.append([kind, payload])
                    continue
                kept, dropped = _thin(bytes(payload), frame, excess, quiet_only)
                self.queued_audio -= dropped
                for piece_kind, piece in kept:
                    if piece_kind == b"S" and rebuilt and rebuilt[-1][0] == b"S":
                        rebuilt[-1][1] += piece
                    else:
                        rebuilt.append([piece_kind, piece])
            self.outbox = rebuilt
            if self.queued_audio <= target:
                break
        dropped = before - self.queued_audio
        self.dropped_bytes += dropped
        self.pool.stats.overflows += 1
        self.pool.stats.bytes_dropped += dropped
        count_stt_pool_overflow(dropped / 2 / self.options.input_rate)
        log.warning("pocketsphinx stream %d: recognizer behind, dropped %.2f s of queued audio, quiet frames "
                    "first (%.2f s so far)", self.sid, dropped / 2 / self.options.input_rate,
                    self.dropped_bytes / 2 / self.options.input_rate)

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake.set()

    def _fail(self, message: str) -> None:
        if self.failed is None and not self.closed:
            self.failed = ProviderError(message, provider="pocketsphinx")
            log.warning("pocketsphinx stream %d failed: %s", self.sid, message)
            self.emit(STTFailed(self.failed))
        self.acked.set()

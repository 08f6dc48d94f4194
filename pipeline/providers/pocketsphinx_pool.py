"""A shared, pre-started pool of pocketsphinx worker processes: the offline recognizer of every call.

Why a pool: a process per call costs ~0.5 CPU-s and ~90 MiB to load the model before the call hears
anything, and caps a core at a few calls. Here `size` workers (one per core by default) each hold
`decoders` decoders; a stream is assigned to the least-loaded worker for its life and its utterances borrow
that worker's decoders, made as overlapping speech needs them (pocketsphinx_recognizer says how the words
stay good without re-decoding).

Why the queues never block: send() only appends to the stream's outbox (consecutive audio merged into one
message); one writer greenlet per worker drains the outboxes round-robin into the pipe. A worker that falls
behind (or stops) fills the pipe and parks only its writer; each outbox is bounded (`max_backlog_s` of
audio): past that its quiet frames, then its oldest audio, are dropped, counted (PoolStats, the stream's
`dropped_bytes`) and logged, and the worker is told how much was skipped so result times stay right. The
call's audio loop goes on, and words queued behind a pause still reach the recognizer.

A worker that dies is restarted and its streams opened again on it (the utterance it was decoding is lost);
a stream that was on a worker through `max_crashes` crashes is failed (STTFailed), since it may be the cause.
"""
from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import pathlib
import sys
import threading
from dataclasses import dataclass

import gevent
import gevent.event
from gevent import subprocess

from observability.metrics import count_stt_pool_restart, count_stt_pool_stream, set_stt_pool_state
from pipeline.providers.errors import ProviderError, ProviderTimeout
from pipeline.providers.pocketsphinx_recognizer import DEFAULT_SEARCH, SEARCHES, RecognizerOptions
from pipeline.providers.pocketsphinx_stream import QUIET_RMS, PooledStream, _thin  # noqa: F401 - re-exported
from pipeline.providers.pocketsphinx_worker import HEADER, SKIP
from pipeline.providers.stt import ResultCallback, Transcript

log = logging.getLogger(__name__)
ROOT = str(pathlib.Path(__file__).resolve().parents[2])
CHUNK = 32_000  # most audio bytes one stream writes per turn of the round-robin (1 s at 16 kHz)
PUBLISH_EVERY_S = 1.0  # how often the queued-audio gauge is refreshed between the pool's events


def default_size() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@dataclass
class PoolStats:
    """Counters for the whole pool (bench figures, tests, logs)."""

    streams_opened: int = 0
    frames_accepted: int = 0
    overflows: int = 0  # times an outbox was full and its oldest audio was dropped
    bytes_dropped: int = 0
    worker_starts: int = 0
    worker_crashes: int = 0


class _Worker:
    """One worker process, its streams, and the two greenlets that talk to it."""

    def __init__(self, pool: RecognizerPool, index: int):
        self.pool, self.index = pool, index
        self.streams: dict[int, PooledStream] = {}
        self.wake = gevent.event.Event()
        self.ready = gevent.event.Event()
        self.proc = None
        self.reader = self.writer = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        env = {"PYTHONPATH": ROOT, "PATH": os.environ.get("PATH", "")}  # no secrets for the worker
        settings = json.dumps({"decoders": self.pool.decoders, "max_decoders": self.pool.max_decoders,
                               "search": self.pool.search})
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.providers.pocketsphinx_worker", settings],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         env=env, cwd=ROOT)
        except OSError as exc:
            raise ProviderError(f"cannot start a decoder process: {exc}", provider="pocketsphinx") from exc
        self.pool.stats.worker_starts += 1
        self.reader = gevent.spawn(self._read, self.proc)

    def _read(self, proc) -> None:
        for line in proc.stdout:
            message = json.loads(line)
            kind = message.pop("type", None)
            stream = self.streams.get(message.pop("stream", None))
            if kind == "ready":
                for s in self.streams.values():  # reopened here after a crash: opened again before their audio
                    s.outbox.appendleft([b"O", json.dumps(s.options.to_dict()).encode()])
                self.ready.set()
                self.writer = gevent.spawn(self._write, proc)
                self.pool.publish()
            elif stream is None:
                if kind == "error":
                    log.warning("pocketsphinx worker %d: %s", self.index, message.get("message"))
            elif kind == "transcript":
                stream.emit(Transcript(**message))
            elif kind == "closed":
                stream.acked.set()
            elif kind == "error":
                stream._fail(f"decoder failed: {message.get('message')}")
        gevent.spawn(self.pool._worker_exited, self, proc)

    def _write(self, proc) -> None:
        """Round-robin over the streams' outboxes; only this greenlet waits when the pipe is full."""
        try:
            while True:
                self.wake.wait()
                self.wake.clear()
                busy = True
                while busy:
                    busy = False
                    for stream in list(self.streams.values()):
                        if not stream.outbox:
                            continue
                        busy = True
                        proc.stdin.write(self._take(stream))
                    proc.stdin.flush()
        except (OSError, ValueError) as exc:  # the process died: the reader sees its end and restarts it
            log.debug("pocketsphinx worker %d: write failed: %s", self.index, exc)

    @staticmethod
    def _take(stream: PooledStream) -> bytes:
        item = stream.outbox[0]
        kind, payload = item
        if kind == b"A":
            data = bytes(payload[:CHUNK])
            del payload[:CHUNK]
            stream.queued_audio -= len(data)
            if not payload:
                stream.outbox.popleft()
        else:
            stream.outbox.popleft()
            data = SKIP.pack(payload) if kind == b"S" else payload
        return HEADER.pack(kind, stream.sid, len(data)) + data

    def stop(self, timeout: float) -> None:
        proc, self.proc = self.proc, None
        if self.writer is not None:
            self.writer.kill(block=True, timeout=timeout)
        if proc is None:
            return
        try:
            proc.stdin.close()  # end of input: the worker finishes and exits
        except (OSError, RuntimeError):
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # The reader must be gone before its pipe is closed (libev must not watch a dead descriptor).
        if self.reader is not None:
            self.reader.kill(block=True, timeout=timeout)
        try:
            proc.stdout.close()
        except (OSError, RuntimeError):
            pass


class RecognizerPool:
    """`size` worker processes (default: the cores this process may use), `decoders` decoders each made at
    start, up to `max_decoders` each when that many utterances overlap on one worker."""

    def __init__(self, size: int | None = None, decoders: int = 2, max_decoders: int | None = 6,
                 max_backlog_s: float = 8.0, start_timeout_s: float = 60.0, max_crashes: int = 2,
                 search: str = DEFAULT_SEARCH):
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {sorted(SEARCHES)}")
        self.search = search
        self.size = size or default_size()
        self.decoders, self.max_backlog_s = decoders, max_backlog_s
        self.max_decoders = max(decoders, max_decoders or decoders)
        self.start_timeout_s, self.max_crashes = start_timeout_s, max_crashes
        self.stats = PoolStats()
        self.workers = [_Worker(self, i) for i in range(self.size)]
        self.closed = False
        self.publish_every_s = PUBLISH_EVERY_S
        self._publisher: gevent.Greenlet | None = None
        self._next_sid = 0
        self._started = False

    def start(self) -> RecognizerPool:
        """Start every worker and wait until each has loaded its model (done once, before the first call)."""
        first = not self._started
        if first:
            self._started = True
            for worker in self.workers:
                worker.start()
            self.publish()
            self._publisher = gevent.spawn(self._publish_periodically)
        with gevent.Timeout(self.start_timeout_s, False):
            if first:
                for worker in self.workers:
                    worker.ready.wait()
            while not any(w.ready.is_set() for w in self.workers):  # all restarting at once (rare)
                gevent.sleep(0.05)
        if not any(w.ready.is_set() for w in self.workers):
            raise ProviderTimeout(f"no decoder process started within {self.start_timeout_s}s",
                                  provider="pocketsphinx")
        return self

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    def load(self) -> list[int]:
        return [len(w.streams) for w in self.workers]

    def open(self, options: RecognizerOptions, on_result: ResultCallback | None = None) -> PooledStream:
        if self.closed:
            raise ProviderError("the recognizer pool is closed", provider="pocketsphinx", retryable=False)
        self.start()
        self._next_sid += 1
        stream = PooledStream(self, self._next_sid, options, on_result)
        # Least-loaded of the ready workers (a restarting one takes no new streams meanwhile).
        worker = min((w for w in self.workers if w.ready.is_set()), key=lambda w: len(w.streams))
        stream.outbox.append([b"O", json.dumps(options.to_dict()).encode()])
        stream.worker = worker
        worker.streams[stream.sid] = stream
        worker.wake.set()
        self.stats.streams_opened += 1
        count_stt_pool_stream()
        self.publish()
        return stream

    def _forget(self, stream: PooledStream) -> None:
        if stream.worker is not None:
            stream.worker.streams.pop(stream.sid, None)
        self.publish()

    def publish(self) -> None:
        """Set the pool's gauges (voxbridge_stt_pool_*, observability/metrics.py) from its state now."""
        ready = sum(1 for w in self.workers if w.ready.is_set()) if not self.closed else 0
        streams = [s for w in self.workers for s in w.streams.values()]
        queued_s = sum(s.queued_audio / 2 / s.options.input_rate for s in streams)
        set_stt_pool_state(ready, 0 if self.closed else self.size - ready, len(streams), queued_s)

    def _publish_periodically(self) -> None:
        # The queued audio changes with every 20 ms frame of every call: a gauge write per frame (a file write
        # in multiprocess mode) would cost more than the recognition it describes, so it is sampled instead.
        while not self.closed:
            gevent.sleep(self.publish_every_s)
            self.publish()

    def _worker_exited(self, worker: _Worker, proc) -> None:
        if proc is not worker.proc or self.closed:
            return  # stopped on purpose
        code = proc.wait()
        worker.ready.clear()
        if worker.writer is not None:
            worker.writer.kill(block=True)
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except (OSError, RuntimeError):
                pass
        self.stats.worker_crashes += 1
        count_stt_pool_restart()
        log.warning("pocketsphinx worker %d (pid %s) exited (%s): restarting it; %d stream(s) reopen on it",
                    worker.index, proc.pid, code, len(worker.streams))
        for stream in list(worker.streams.values()):
            stream.crashes += 1
            # What was queued before the crash is kept; what the dead worker held (an open utterance) is lost.
            stream.outbox = collections.deque(i for i in stream.outbox if i[0] != b"O")
            if stream.crashes >= self.max_crashes or stream.closed:
                worker.streams.pop(stream.sid, None)
                stream._fail(f"decoder process exited ({code})")
        self.publish()
        if not self.closed:
            worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker (streams still open get STTFailed); idempotent."""
        if self.closed:
            return
        self.closed = True
        for worker in self.workers:
            for stream in list(worker.streams.values()):
                stream._fail("the recognizer pool was closed")
            worker.streams.clear()
            worker.stop(timeout)
        if self._publisher is not None:
            self._publisher.kill(block=False)
        self.publish()


_shared: RecognizerPool | None = None
_shared_lock = threading.Lock()
_shared_settings: dict = {"size": None, "search": DEFAULT_SEARCH}  # configure(): STT_POOL_WORKERS, STT_POOL_SEARCH


def configure(size: int | None = None, search: str = DEFAULT_SEARCH) -> None:
    """The settings the process's pool is made with (serve calls this from STT_POOL_WORKERS / STT_POOL_SEARCH
    before anything opens a stream). size None or 0: the cores this process may use."""
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {sorted(SEARCHES)}")
    if size is not None and size < 0:
        raise ValueError("size must be 0 (the usable cores) or more")
    with _shared_lock:
        _shared_settings.update(size=size or None, search=search)


def shared_pool(size: int | None = None, decoders: int = 2, search: str | None = None) -> RecognizerPool:
    """The process's pool, made (not started) on first use with these settings (else configure()'s); stopped
    at exit."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = RecognizerPool(size=size or _shared_settings["size"], decoders=decoders,
                                     search=search or _shared_settings["search"])
            atexit.register(_shared.close, 2.0)
        return _shared


def prestart() -> RecognizerPool:
    """Start the shared pool now (a server's start-up), so the first call does not wait for the models."""
    return shared_pool().start()

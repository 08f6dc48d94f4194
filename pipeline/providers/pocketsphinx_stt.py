"""Offline STT: pocketsphinx 5 with the English model its PyPI package ships (no network, no key).

Audio is cut into utterances by pocketsphinx's own endpointer (a final result with speech_final=True after
`endpointing_ms` of non-speech) or by finalize() from the pipeline's endpointer.

Where the decoding runs (`isolation`):
- "process" (default): one worker process per stream (pocketsphinx_worker), fed over a pipe. pocketsphinx
  holds the GIL inside its C calls, so in-process decoding would stall the gevent hub (and every other call's
  audio) for as long as each call runs; a process uses the second core and lets each final result be decoded
  again in one batch pass (much better words). Costs ~0.3 s to start and one process per call.
- "thread": decoding in gevent's thread pool, one 30 ms frame per C call (stalls of a few tens of ms), no
  final rescoring by default. For environments where spawning processes is not wanted.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import sys

import gevent
import gevent.queue
from gevent import subprocess

from pipeline.providers.errors import ProviderConfigError, ProviderError, ProviderTimeout
from pipeline.providers.pocketsphinx_recognizer import Recognizer, RecognizerOptions
from pipeline.providers.pocketsphinx_worker import HEADER
from pipeline.providers.stt import STT, ResultCallback, STTEvent, STTFailed, STTStream, Transcript

log = logging.getLogger(__name__)
ROOT = str(pathlib.Path(__file__).resolve().parents[2])
_FINALIZE = object()
_CLOSE = object()


class PocketsphinxSTT(STT):
    name = "pocketsphinx"

    def __init__(self, endpointing_ms: int = 500, interim_results: bool = True, vad_mode: int = 2,
                 interim_every_s: float = 0.3, isolation: str = "process", rescore_final: bool | None = None,
                 start_timeout_s: float = 15.0, narrowband_fill: float = 0.0):
        try:
            import pocketsphinx  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the package is in requirements.txt
            raise ProviderConfigError("pocketsphinx is not installed", provider=self.name) from exc
        if isolation not in ("process", "thread"):
            raise ProviderConfigError("isolation must be 'process' or 'thread'", provider=self.name)
        if vad_mode not in (0, 1, 2, 3):
            raise ProviderConfigError("vad_mode must be 0-3", provider=self.name)
        if not isinstance(narrowband_fill, (int, float)) or not 0 <= narrowband_fill <= 2000:
            raise ProviderConfigError("narrowband_fill must be a number from 0 to 2000", provider=self.name)
        self.isolation = isolation
        self.narrowband_leg = False  # set per call when the leg's codec is narrowband (calls/media.py)
        self.start_timeout_s = start_timeout_s
        self.options = RecognizerOptions(
            endpointing_s=max(0.09, endpointing_ms / 1000), interim_results=bool(interim_results),
            vad_mode=vad_mode, interim_every_s=interim_every_s,
            rescore_final=(isolation == "process") if rescore_final is None else bool(rescore_final),
            narrowband_fill=float(narrowband_fill))

    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        options = RecognizerOptions(**{**self.options.to_dict(), "input_rate": int(sample_rate),
                                       "narrowband": self.narrowband_leg})
        if self.isolation == "process":
            return ProcessStream(options, on_result, self.start_timeout_s)
        return ThreadStream(options, on_result)


class ProcessStream(STTStream):
    def __init__(self, options: RecognizerOptions, on_result: ResultCallback | None, start_timeout_s: float):
        super().__init__(on_result)
        self._failed: ProviderError | None = None
        # The worker gets no secrets: only what it needs to find Python packages and run.
        env = {"PYTHONPATH": ROOT, "PATH": os.environ.get("PATH", "")}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline.providers.pocketsphinx_worker", json.dumps(options.to_dict())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        except OSError as exc:
            raise ProviderError(f"cannot start the decoder process: {exc}", provider="pocketsphinx") from exc
        ready = None
        try:
            with gevent.Timeout(start_timeout_s, False):
                ready = self._proc.stdout.readline()
        except BaseException:
            # Killed while the decoder starts (the call hung up, the server is stopping): the process and
            # its pipes must not outlive this stream.
            self._reap()
            raise
        if not ready or json.loads(ready or b"{}").get("type") != "ready":
            self._reap()
            if ready is None:
                raise ProviderTimeout(f"decoder did not start within {start_timeout_s}s", provider="pocketsphinx")
            raise ProviderError(f"decoder failed to start: {ready[:200]!r}", provider="pocketsphinx",
                                retryable=False)
        self._reader = gevent.spawn(self._read)

    def send(self, pcm: bytes) -> None:
        if pcm:
            self._write(b"A", pcm)

    def finalize(self) -> None:
        if not (self.closed or self._failed):
            self._write(b"F", b"")

    def close(self, timeout: float = 10.0) -> None:
        if self.closed:
            return
        if not self._failed:
            try:
                self._write(b"C", b"")
            except ProviderError:
                pass
        self.closed = True
        self._reader.join(timeout=timeout)
        # The reader must be gone before its pipe is closed: a greenlet still parked on a closed
        # descriptor leaves libev watching a dead fd (it aborts the process on the next epoll_ctl).
        self._reader.kill(block=True, timeout=timeout)
        self._reap()

    def _reap(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except (OSError, RuntimeError):  # RuntimeError: a read still in progress elsewhere
                pass

    def _write(self, kind: bytes, payload: bytes) -> None:
        if self._failed:
            raise self._failed
        if self.closed:
            raise ProviderError("stream is closed", provider="pocketsphinx", retryable=False)
        try:
            self._proc.stdin.write(HEADER.pack(kind, len(payload)) + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise self._fail(f"decoder process is gone: {exc}") from exc

    def _read(self) -> None:
        for line in self._proc.stdout:
            message = json.loads(line)
            if message.get("type") == "transcript":
                message.pop("type")
                self.emit(Transcript(**message))
            elif message.get("type") == "error":
                self._fail(f"decoder failed: {message.get('message')}")
                return
        if not self.closed:
            self._fail(f"decoder process exited ({self._proc.poll()})")

    def _fail(self, message: str) -> ProviderError:
        if self._failed is None:
            self._failed = ProviderError(message, provider="pocketsphinx")
            log.warning("pocketsphinx stream failed: %s", message)
            self.emit(STTFailed(self._failed))
        return self._failed


class ThreadStream(STTStream):
    """Decoder in gevent's thread pool; one worker greenlet per stream keeps it single-threaded, in order."""

    def __init__(self, options: RecognizerOptions, on_result: ResultCallback | None):
        super().__init__(on_result)
        self._inbox: gevent.queue.Queue = gevent.queue.Queue()
        self._pool = gevent.get_hub().threadpool
        try:
            self._recognizer = self._pool.apply(Recognizer, (options,))
        except Exception as exc:
            raise ProviderError(f"cannot load the pocketsphinx model: {exc}", provider="pocketsphinx",
                                retryable=False) from exc
        self._worker = gevent.spawn(self._run)

    def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("stream is closed", provider="pocketsphinx", retryable=False)
        if pcm:
            self._inbox.put(pcm)

    def finalize(self) -> None:
        if not self.closed:
            self._inbox.put(_FINALIZE)

    def close(self, timeout: float = 10.0) -> None:
        if self.closed:
            return
        self.closed = True
        self._inbox.put(_CLOSE)
        self._worker.join(timeout=timeout)
        self._worker.kill(block=False)

    def _run(self) -> None:
        try:
            while True:
                item = self._inbox.get()
                if item is _CLOSE or item is _FINALIZE:
                    self._emit_all(self._pool.apply(self._recognizer.finalize))
                    if item is _CLOSE:
                        return
                    continue
                batch = [item]  # whatever has queued up is decoded in one thread hop
                while not self._inbox.empty() and isinstance(self._inbox.peek(), bytes):
                    batch.append(self._inbox.get())
                self._emit_all(self._pool.apply(self._recognizer.feed, (b"".join(batch),)))
        except Exception as exc:  # a decoder crash ends this stream only, reported as an event
            log.warning("pocketsphinx stream failed: %s", exc)
            self.closed = True
            self.emit(STTFailed(ProviderError(f"decoder failed: {exc}", provider="pocketsphinx")))

    def _emit_all(self, events: list[STTEvent]) -> None:
        for event in events:
            self.emit(event)

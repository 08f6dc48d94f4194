"""Offline STT: pocketsphinx 5 with the English model its PyPI package ships (no network, no key).

Audio is cut into utterances by pocketsphinx's own endpointer (a final result with speech_final=True after
`endpointing_ms` of non-speech) or by finalize() from the pipeline's endpointer.

Where the decoding runs (`isolation`):
- "pool" (default; "process" is the same): the process's shared pool of worker processes, one per core,
  started once (pocketsphinx_pool). pocketsphinx holds the GIL inside its C calls, so in-process decoding
  would stall the gevent hub (and every other call's audio) for as long as each call runs. A stream is a few
  bytes of state on a worker; send() never blocks (bounded outbox, counted drops when a worker lags).
- "thread": decoding in gevent's thread pool, one 30 ms frame per C call (stalls of a few tens of ms), no
  final rescoring by default. For environments where spawning processes is not wanted.
"""
from __future__ import annotations

import logging

import gevent
import gevent.queue

from pipeline.providers.errors import ProviderConfigError, ProviderError
from pipeline.providers.pocketsphinx_pool import RecognizerPool, shared_pool
from pipeline.providers.pocketsphinx_recognizer import Recognizer, RecognizerOptions
from pipeline.providers.stt import STT, ResultCallback, STTEvent, STTFailed, STTStream

log = logging.getLogger(__name__)
_FINALIZE = object()
_CLOSE = object()


class PocketsphinxSTT(STT):
    name = "pocketsphinx"

    def __init__(self, endpointing_ms: int = 500, interim_results: bool = True, vad_mode: int = 2,
                 interim_every_s: float = 0.3, isolation: str = "pool", rescore_final: bool | str | None = None,
                 narrowband_fill: float = 0.0, pool: RecognizerPool | None = None):
        try:
            import pocketsphinx  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the package is in requirements.txt
            raise ProviderConfigError("pocketsphinx is not installed", provider=self.name) from exc
        if isolation not in ("pool", "process", "thread"):
            raise ProviderConfigError("isolation must be 'pool' or 'thread'", provider=self.name)
        if rescore_final not in (None, True, False, "always", "first", "never"):
            raise ProviderConfigError("rescore_final must be always, first or never", provider=self.name)
        if vad_mode not in (0, 1, 2, 3):
            raise ProviderConfigError("vad_mode must be 0-3", provider=self.name)
        if not isinstance(narrowband_fill, (int, float)) or not 0 <= narrowband_fill <= 2000:
            raise ProviderConfigError("narrowband_fill must be a number from 0 to 2000", provider=self.name)
        self.isolation = "pool" if isolation == "process" else isolation
        self.narrowband_leg = False  # set per call when the leg's codec is narrowband (calls/media.py)
        self._pool = pool  # None: the process's shared pool, made on the first open()
        self.options = RecognizerOptions(
            endpointing_s=max(0.09, endpointing_ms / 1000), interim_results=bool(interim_results),
            vad_mode=vad_mode, interim_every_s=interim_every_s,
            # A thread would stall the hub for a whole batch pass: no rescoring there unless asked for.
            rescore_final=("never" if isolation == "thread" else "first") if rescore_final is None else rescore_final,
            narrowband_fill=float(narrowband_fill))

    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        options = RecognizerOptions(**{**self.options.to_dict(), "input_rate": int(sample_rate),
                                       "narrowband": self.narrowband_leg})
        if self.isolation == "pool":
            return (self._pool or shared_pool()).open(options, on_result)
        return ThreadStream(options, on_result)


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

"""Offline STT: pocketsphinx 5 with the English model its PyPI package ships (no network, no key).

Audio is resampled to 16 kHz, cut into utterances by pocketsphinx's own endpointer (a final result with
speech_final=True after `endpointing_ms` of non-speech), or by finalize() from the pipeline's endpointer.
Decoding is CPU work in C: it runs in gevent's native thread pool, one worker greenlet per stream keeping the
decoder single-threaded, so the hub keeps serving other calls' frames meanwhile. pocketsphinx holds the GIL
inside each C call, so calls are kept short: one 30 ms frame at a time, and the second "fwdflat" search pass
(a 100-150 ms stall at every end of utterance, for no accuracy gain measured on phone-style prompts) is off
unless `second_pass=True`.
"""
from __future__ import annotations

import logging

import gevent
import gevent.queue

from pipeline.providers.audio import resample
from pipeline.providers.errors import ProviderConfigError, ProviderError
from pipeline.providers.stt import STT, ResultCallback, STTEvent, STTFailed, STTStream, Transcript

log = logging.getLogger(__name__)
RATE = 16000
_FINALIZE = object()
_CLOSE = object()


class PocketsphinxSTT(STT):
    name = "pocketsphinx"

    def __init__(self, endpointing_ms: int = 500, interim_results: bool = True, vad_mode: int = 2,
                 interim_every_s: float = 0.3, second_pass: bool = False):
        try:
            import pocketsphinx  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the package is in requirements.txt
            raise ProviderConfigError("pocketsphinx is not installed", provider=self.name) from exc
        self.endpointing_s = max(0.09, endpointing_ms / 1000)
        self.interim_results = interim_results
        self.vad_mode = vad_mode
        self.interim_every_s = interim_every_s
        self.second_pass = second_pass

    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        return PocketsphinxStream(self, sample_rate, on_result)


class _Recognizer:
    """Decoder + endpointer; only ever touched by one thread-pool job at a time."""

    def __init__(self, options: PocketsphinxSTT):
        from pocketsphinx import Decoder, Endpointer

        self.decoder = Decoder(samprate=RATE, loglevel="FATAL", fwdflat=options.second_pass)
        self.endpointer = Endpointer(window=options.endpointing_s, vad_mode=options.vad_mode, sample_rate=RATE)
        self.options = options
        self.pending = b""
        self.samples = 0  # audio seen, in 16 kHz samples
        self.utt_open = False
        self.utt_start = 0.0
        self.last_interim = ""
        self.last_interim_at = 0.0

    def feed(self, pcm: bytes) -> list[STTEvent]:
        events: list[STTEvent] = []
        self.pending += pcm
        size = self.endpointer.frame_bytes
        while len(self.pending) >= size:
            frame, self.pending = self.pending[:size], self.pending[size:]
            self.samples += size // 2
            was_speaking = self.endpointer.in_speech
            speech = self.endpointer.process(frame)
            if speech is not None:
                if not self.utt_open:
                    self._start(self.endpointer.speech_start)
                self.decoder.process_raw(speech, False, False)
            if was_speaking and not self.endpointer.in_speech and self.utt_open:
                events += self.end(self.endpointer.speech_end)
            events += self._interim()
        return events

    def _start(self, at: float) -> None:
        self.decoder.start_utt()
        self.utt_open = True
        self.utt_start = at
        self.last_interim, self.last_interim_at = "", at

    def _interim(self) -> list[STTEvent]:
        now = self.samples / RATE
        if not (self.utt_open and self.options.interim_results) or now - self.last_interim_at < \
                self.options.interim_every_s:
            return []
        self.last_interim_at = now
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp else ""
        if not text or text == self.last_interim:
            return []
        self.last_interim = text
        return [Transcript(text=text, is_final=False, speech_final=False, start=self.utt_start, end=now)]

    def end(self, at: float | None = None) -> list[STTEvent]:
        """Close the open utterance: one final result (speech_final) even when nothing was recognised."""
        if not self.utt_open:
            return []
        self.decoder.end_utt()
        self.utt_open = False
        hyp = self.decoder.hyp()
        end = at if at else self.samples / RATE
        return [Transcript(text=hyp.hypstr.strip() if hyp else "", is_final=True, speech_final=True,
                           start=self.utt_start, end=max(end, self.utt_start),
                           confidence=None)]

    def finalize(self) -> list[STTEvent]:
        # Audio still buffered in the endpointer belongs to this turn: decode it before closing the utterance.
        if self.endpointer.in_speech and self.pending:
            tail = self.endpointer.end_stream(self.pending)
            self.pending = b""
            if tail:
                if not self.utt_open:
                    self._start(self.endpointer.speech_start)
                self.decoder.process_raw(tail, False, False)
        return self.end()


class PocketsphinxStream(STTStream):
    def __init__(self, options: PocketsphinxSTT, sample_rate: int, on_result: ResultCallback | None):
        super().__init__(on_result)
        self.sample_rate = sample_rate
        self._inbox: gevent.queue.Queue = gevent.queue.Queue()
        self._pool = gevent.get_hub().threadpool
        try:
            self._recognizer = self._pool.apply(_Recognizer, (options,))
        except Exception as exc:
            raise ProviderError(f"cannot load the pocketsphinx model: {exc}", provider="pocketsphinx",
                                retryable=False) from exc
        self._worker = gevent.spawn(self._run)

    def send(self, pcm: bytes) -> None:
        if self.closed:
            raise ProviderError("stream is closed", provider="pocketsphinx", retryable=False)
        if pcm:
            self._inbox.put(resample(pcm, self.sample_rate, RATE))

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
                if item is _CLOSE:
                    self._emit_all(self._pool.apply(self._recognizer.finalize))
                    return
                if item is _FINALIZE:
                    self._emit_all(self._pool.apply(self._recognizer.finalize))
                    continue
                # Batch whatever has queued up so one thread hop decodes it all.
                batch = [item]
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

"""The pocketsphinx decoding itself (no gevent, no I/O): endpointer + decoder over 16 kHz linear16 frames.

Used inside a pool worker process (the default, pocketsphinx_pool), a per-stream worker process or a
thread-pool thread; see pocketsphinx_stt for why.

A pocketsphinx Decoder costs ~90 MiB and ~0.5 CPU-s to make, so a worker process holds a few (DecoderSet)
and lends one to an utterance for its length, not to a stream for the call's length. Each stream keeps its
own cepstral mean (CMN) between its utterances and sets it on whichever decoder it borrows: decoded live
with the default initial mean the words are poor, with the stream's own mean they are close to a batch pass.
So only a stream's first utterance needs the second, batch pass over the whole utterance (`rescore_final`
"first"); later ones are final as soon as the decoder's live search ends (a few ms after the turn ends).
An utterance that finds every decoder busy is kept as audio and decoded when one frees (`resume`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.providers.audio import resample
from pipeline.providers.band_fill import BandFill
from pipeline.providers.stt import STTEvent, Transcript

RATE = 16000
RESCORE = ("always", "first", "never")


# The decoder's search (bench/bench_stt_wer.py --search S for the words, bench/bench_offline_calls.py for the
# CPU). CPU-s per second of speech on one core of the 2-vCPU VM: "wide" (pocketsphinx's own beams, no cap)
# 0.30-0.33; "bounded" (at most 3,000 active HMMs a frame) 0.15, the same word error rate over the WER tables
# (78.9% against 78.5% on average); "narrow" (tighter beams as well) 0.11-0.12, 2.6 points more word errors.
SEARCHES = {"wide": {}, "bounded": {"maxhmmpf": 3000}, "narrow": {"beam": 1e-40, "wbeam": 1e-30, "maxhmmpf": 3000}}
DEFAULT_SEARCH = "bounded"


def make_decoder(search: str = DEFAULT_SEARCH):
    from pocketsphinx import Decoder

    # fwdflat (the second search pass) stalls every end of utterance for ~120 ms with no gain measured here.
    return Decoder(samprate=RATE, loglevel="FATAL", fwdflat=False, **SEARCHES[search])


class DecoderSet:
    """The decoders of one process, each lent to one utterance at a time (not thread-safe). `count` are made
    up front; when more utterances overlap, one more is made per waiting utterance, up to `limit` (each
    costs ~90 MiB for the process's life and ~0.5 CPU-s once, so memory follows the peak of overlapping
    speech rather than the number of calls)."""

    def __init__(self, count: int = 1, limit: int | None = None, search: str = DEFAULT_SEARCH):
        self.search = search
        self.free = [make_decoder(search) for _ in range(max(1, count))]
        self.count = len(self.free)
        self.limit = max(self.count, limit or self.count)
        self.default_cmn = self.free[0].get_cmn(False)

    def acquire(self):
        if not self.free and self.count < self.limit:
            self.free.append(make_decoder(self.search))
            self.count += 1
        return self.free.pop() if self.free else None

    def release(self, decoder) -> None:
        self.free.append(decoder)


@dataclass(frozen=True)
class RecognizerOptions:
    """endpointing_s: non-speech that ends an utterance. rescore_final: decode a finished utterance again in
    one batch pass (utterance-level cepstral normalisation): "always" (a full second decode after every
    turn), "first" (only while the stream has no cepstral mean of its own yet: its first utterance), "never";
    True/False mean "always"/"never". narrowband_fill: level (sample standard deviation) of the noise put
    above 4 kHz for the decoder of a narrowband stream (an 8 kHz one, or `narrowband`: a G.711 leg streamed at
    16 kHz; band_fill.py says why); 0, the default, turns it off (on the demo's caller voice the fill
    sometimes lost a short first answer altogether)."""

    input_rate: int = RATE
    endpointing_s: float = 0.5
    interim_results: bool = True
    vad_mode: int = 2
    interim_every_s: float = 0.3
    rescore_final: str = "first"
    narrowband_fill: float = 0.0
    narrowband: bool = False  # the call's leg is narrowband (G.711) even if the stream is 16 kHz

    def __post_init__(self) -> None:
        value = self.rescore_final
        if isinstance(value, bool):
            object.__setattr__(self, "rescore_final", "always" if value else "never")
        elif value not in RESCORE:
            raise ValueError(f"rescore_final must be one of {RESCORE}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Ended:
    """An utterance that ended while no decoder was free: decoded in one batch pass when one is."""

    audio: bytes
    start: float
    end: float


class Recognizer:
    """Feed audio, get Transcript events; not thread-safe (one caller at a time)."""

    def __init__(self, options: RecognizerOptions, decoders: DecoderSet | None = None):
        from pocketsphinx import Endpointer

        self.decoders = decoders or DecoderSet(1)
        self.endpointer = Endpointer(window=max(0.09, options.endpointing_s), vad_mode=options.vad_mode,
                                     sample_rate=RATE)
        self.options = options
        # Only the decoder hears the fill: the endpointer gets the call's audio as it is.
        narrowband = options.narrowband or options.input_rate < RATE
        self.band_fill = BandFill(options.narrowband_fill) if narrowband and options.narrowband_fill > 0 else None
        self.decoder = None  # borrowed from `decoders` while an utterance is being decoded live
        self.cmn: str | None = None  # this stream's own cepstral mean, once an utterance taught it one
        self.backlog: list[_Ended] = []  # ended utterances still waiting for a decoder, oldest first
        self.pending = b""
        self.samples = 0  # audio seen, in 16 kHz samples
        self.utt_open = False
        self.utt_audio: list[bytes] = []  # the open utterance's audio (as the decoder hears it)
        self.utt_start = 0.0
        self.last_interim = ""
        self.last_interim_at = 0.0

    @property
    def waiting(self) -> bool:
        """Audio is waiting for a decoder (resume() will decode it when one is free)."""
        return bool(self.backlog) or (self.utt_open and self.decoder is None)

    def skip(self, pcm_bytes: int) -> None:
        """Audio the caller sent that was dropped before it got here: time moves on without it."""
        self.samples += int(pcm_bytes * RATE / self.options.input_rate) // 2

    def feed(self, pcm: bytes) -> list[STTEvent]:
        """`pcm` at options.input_rate."""
        events: list[STTEvent] = []
        self.pending += resample(pcm, self.options.input_rate, RATE)
        size = self.endpointer.frame_bytes
        while len(self.pending) >= size:
            frame, self.pending = self.pending[:size], self.pending[size:]
            self.samples += size // 2
            was_speaking = self.endpointer.in_speech
            speech = self.endpointer.process(frame)
            if speech is not None:
                self._decode(speech)
            if was_speaking and not self.endpointer.in_speech and self.utt_open:
                events += self.end(self.endpointer.speech_end)
            events += self._interim()
        return events

    def finalize(self) -> list[STTEvent]:
        """End the current utterance now (the pipeline's endpointer decided), decoding what is buffered."""
        if self.endpointer.in_speech:
            # The endpointer holds back up to a window of speech; end_stream releases it (it needs >= 1 sample)
            # and leaves the endpointer usable for the next utterance.
            tail = self.endpointer.end_stream(self.pending or b"\0\0")
            if tail:
                self._decode(tail)
        self.pending = b""
        return self.end()

    def resume(self) -> list[STTEvent]:
        """Decode what waited for a decoder, if one is free now: ended utterances first, then the open one."""
        events: list[STTEvent] = []
        while self.backlog:
            decoder = self.decoders.acquire()
            if decoder is None:
                return events
            ended = self.backlog.pop(0)
            events.append(self._final(decoder, ended.audio, ended.start, ended.end, batch=True))
        if self.utt_open and self.decoder is None:
            self._borrow()
        return events

    def release(self) -> None:
        """Give the borrowed decoder back (the stream is closing)."""
        if self.decoder is not None:
            self.decoder.end_utt()
            self.decoders.release(self.decoder)
            self.decoder = None

    def _borrow(self) -> bool:
        """Take a free decoder for the open utterance and catch it up on the audio buffered so far."""
        if self.backlog:
            return False  # earlier utterances first: finals stay in order
        decoder = self.decoders.acquire()
        if decoder is None:
            return False
        decoder.set_cmn(self.cmn or self.decoders.default_cmn)
        decoder.start_utt()
        if self.utt_audio:
            decoder.process_raw(b"".join(self.utt_audio), False, False)
        self.decoder = decoder
        return True

    def _decode(self, speech: bytes) -> None:
        if self.band_fill is not None:
            speech = self.band_fill.apply(speech)
        if not self.utt_open:
            self.utt_open = True
            self.utt_audio = []
            self.utt_start = self.endpointer.speech_start
            self.last_interim, self.last_interim_at = "", self.samples / RATE
        self.utt_audio.append(speech)
        if self.decoder is not None:
            self.decoder.process_raw(speech, False, False)
        else:
            self._borrow()

    def _interim(self) -> list[STTEvent]:
        now = self.samples / RATE
        if not (self.utt_open and self.options.interim_results and self.decoder is not None):
            return []
        if now - self.last_interim_at < self.options.interim_every_s:
            return []
        self.last_interim_at = now
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp else ""
        if not text or text == self.last_interim:
            return []
        self.last_interim = text
        return [Transcript(text=text, is_final=False, speech_final=False, start=self.utt_start, end=now)]

    def end(self, at: float | None = None) -> list[STTEvent]:
        """Close the open utterance: one final result (speech_final) even when nothing was recognised; later
        (from resume) when no decoder was free for it."""
        if not self.utt_open:
            return []
        self.utt_open = False
        end = max(at if at else self.samples / RATE, self.utt_start)
        audio, self.utt_audio = b"".join(self.utt_audio), []
        decoder, self.decoder = self.decoder, None
        if decoder is None:
            self.backlog.append(_Ended(audio, self.utt_start, end))
            return self.resume()
        decoder.end_utt()
        rescore = self.options.rescore_final
        batch = bool(audio) and (rescore == "always" or (rescore == "first" and self.cmn is None))
        return [self._final(decoder, audio, self.utt_start, end, batch=batch, decoded=True)]

    def _final(self, decoder, audio: bytes, start: float, end: float, batch: bool,
               decoded: bool = False) -> Transcript:
        """The final result from `decoder` (its live search ended, `decoded`), after a batch pass over the
        whole utterance when `batch`; learns the stream's cepstral mean and gives the decoder back."""
        try:
            if batch:
                decoder.start_utt()
                decoder.process_raw(audio, False, True)
                decoder.end_utt()
                self.cmn = decoder.get_cmn(False)
            elif decoded:
                self.cmn = decoder.get_cmn(True)
            hyp = decoder.hyp()
        finally:
            self.decoders.release(decoder)
        return Transcript(text=hyp.hypstr.strip() if hyp else "", is_final=True, speech_final=True,
                          start=start, end=end)

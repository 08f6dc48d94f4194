"""The pocketsphinx decoding itself (no gevent, no I/O): endpointer + decoder over 16 kHz linear16 frames.

Used inside the worker process (the default) or a thread-pool thread; see pocketsphinx_stt for why.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.providers.audio import resample
from pipeline.providers.band_fill import BandFill
from pipeline.providers.stt import STTEvent, Transcript

RATE = 16000


@dataclass(frozen=True)
class RecognizerOptions:
    """endpointing_s: non-speech that ends an utterance. rescore_final: decode the finished utterance again in
    one batch pass (utterance-level cepstral normalisation): far better words on a call's first utterances,
    at the cost of a second decode (fine in a worker process, a hub stall in a thread). narrowband_fill: level
    (sample standard deviation) of the noise put above 4 kHz for the decoder of a narrowband stream (an 8 kHz
    one, or `narrowband`: a G.711 leg streamed at 16 kHz; band_fill.py says why); 0, the default, turns it off
    (on the demo's caller voice the fill sometimes lost a short first answer altogether)."""

    input_rate: int = RATE
    endpointing_s: float = 0.5
    interim_results: bool = True
    vad_mode: int = 2
    interim_every_s: float = 0.3
    rescore_final: bool = True
    narrowband_fill: float = 0.0
    narrowband: bool = False  # the call's leg is narrowband (G.711) even if the stream is 16 kHz

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer:
    """Feed audio, get Transcript events; not thread-safe (one caller at a time)."""

    def __init__(self, options: RecognizerOptions):
        from pocketsphinx import Decoder, Endpointer

        # fwdflat (the second search pass) stalls every end of utterance for ~120 ms with no gain measured here.
        self.decoder = Decoder(samprate=RATE, loglevel="FATAL", fwdflat=False)
        self.endpointer = Endpointer(window=max(0.09, options.endpointing_s), vad_mode=options.vad_mode,
                                     sample_rate=RATE)
        self.options = options
        # Only the decoder hears the fill: the endpointer gets the call's audio as it is.
        narrowband = options.narrowband or options.input_rate < RATE
        self.band_fill = BandFill(options.narrowband_fill) if narrowband and options.narrowband_fill > 0 else None
        self.pending = b""
        self.samples = 0  # audio seen, in 16 kHz samples
        self.utt_open = False
        self.utt_audio: list[bytes] = []
        self.utt_start = 0.0
        self.last_interim = ""
        self.last_interim_at = 0.0

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

    def _decode(self, speech: bytes) -> None:
        if not self.utt_open:
            self.decoder.start_utt()
            self.utt_open = True
            self.utt_audio = []
            self.utt_start = self.endpointer.speech_start
            self.last_interim, self.last_interim_at = "", self.samples / RATE
        self.utt_audio.append(speech)
        if self.band_fill is not None:
            speech = self.band_fill.apply(speech)
        self.decoder.process_raw(speech, False, False)

    def _interim(self) -> list[STTEvent]:
        now = self.samples / RATE
        if not (self.utt_open and self.options.interim_results):
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
        """Close the open utterance: one final result (speech_final) even when nothing was recognised."""
        if not self.utt_open:
            return []
        self.decoder.end_utt()
        self.utt_open = False
        if self.options.rescore_final and self.utt_audio:
            self.decoder.start_utt()
            utterance = b"".join(self.utt_audio)
            if self.band_fill is not None:
                utterance = self.band_fill.apply(utterance)
            self.decoder.process_raw(utterance, False, True)
            self.decoder.end_utt()
        self.utt_audio = []
        hyp = self.decoder.hyp()
        end = at if at else self.samples / RATE
        return [Transcript(text=hyp.hypstr.strip() if hyp else "", is_final=True, speech_final=True,
                           start=self.utt_start, end=max(end, self.utt_start))]

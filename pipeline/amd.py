"""Answering-machine detection: person, machine or unknown, early in an outbound call, from its audio.

The detector is fed the callee's 20 ms frames from the moment of answer (gaps on a silence-suppressing
line must arrive as silence frames) and decides from what the pipeline already has:
- cadence: a person says something short ("Hello?") and waits for an answer; a greeting talks on for
  seconds with only sentence-length pauses;
- a beep: a steady tone between 400 and 2,000 Hz lasting 100 ms or more (voicemail's "after the tone");
- words, when a transcript is offered (`hear`): "leave a message", "not available", "after the tone"...
It is pure bookkeeping over audio time, so it gives the same answer under a virtual clock, at 8 or 16 kHz.
A call with no decision by `timeout_ms` is "unknown", which callers treat as a person.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from pipeline.vad import VoiceDetector, WebRtcVad

HUMAN, MACHINE, UNKNOWN = "human", "machine", "unknown"

# Phrases that only recorded greetings and call screeners say; matched on a lower-cased transcript. Never
# a person's answer ("Hello? Who is this?", "Yes, speaking"): words only ever decide "machine".
MACHINE_WORDS = re.compile(
    r"leave (?:me |us )?(?:a |your )?(?:message|name)|(?:not |un)available|after the (?:tone|beep)"
    r"|at the (?:tone|beep)|voice ?mail|mailbox|record (?:your|a) (?:name|message)"
    r"|(?:can'?t|cannot) (?:come to|take|get to) (?:the|your) (?:phone|call)"
    r"|(?:you'?ve|you have) reached|messaging system|not (?:at )?home right now")


@dataclass(frozen=True)
class AmdConfig:
    frame_ms: int = 20
    start_frames: int = 3  # 60 ms of voice before an utterance counts as begun
    min_answer_ms: int = 200  # a shorter burst is a click or line noise, not an answer (as the endpointer)
    human_silence_ms: int = 800  # a person stops after a short answer and waits this long for us
    machine_speech_ms: int = 1600  # voiced time in one burst a short answer does not reach (Asterisk AMD: 1,500)
    beep_ms: int = 100  # a steady tone this long is a beep
    beep_low_hz: float = 400.0
    beep_high_hz: float = 2000.0
    beep_purity: float = 0.9  # share of the 300-3,400 Hz energy at the tone's frequency
    beep_floor_dbfs: float = -40.0
    timeout_ms: int = 5000


@dataclass(frozen=True)
class AmdDecision:
    answered_by: str  # human / machine / unknown
    at_ms: int  # audio time from answer to the decision
    reason: str


class MachineDetector:
    """Feed `push(pcm, sample_rate)` 20 ms frames of PCM16 from answer; the first decision is final."""

    def __init__(self, config: AmdConfig | None = None, detector: VoiceDetector | None = None):
        self.config = config or AmdConfig()
        self.vad = detector or WebRtcVad(2)
        self.decision: AmdDecision | None = None
        self._now_ms = 0
        self._voiced_run = 0  # consecutive voiced frames (onset)
        self._burst_voiced_ms = 0  # voiced time since the burst began
        self._quiet_ms = 0  # unvoiced time since the last voiced frame
        self._in_burst = False
        self._tone_hz: float | None = None
        self._tone_ms = 0

    def push(self, pcm: bytes, sample_rate: int) -> AmdDecision | None:
        if self.decision is not None:
            return self.decision
        self._now_ms += self.config.frame_ms
        if self._beep(pcm, sample_rate):
            return self._decide(MACHINE, f"a {self._tone_hz:.0f} Hz tone for {self._tone_ms} ms")
        return self._cadence(self.vad.is_speech(pcm, sample_rate)) or self._timeout()

    def hear(self, transcript: str) -> AmdDecision | None:
        """Words recognized so far: a greeting's phrase decides "machine" at once."""
        if self.decision is None and (match := MACHINE_WORDS.search(transcript.lower())):
            return self._decide(MACHINE, f'said "{match.group(0)}"')
        return self.decision

    def _cadence(self, voiced: bool) -> AmdDecision | None:
        cfg = self.config
        if voiced:
            self._voiced_run += 1
            self._quiet_ms = 0
            if not self._in_burst and self._voiced_run >= cfg.start_frames:
                self._in_burst = True
                self._burst_voiced_ms = self._voiced_run * cfg.frame_ms
            elif self._in_burst:
                self._burst_voiced_ms += cfg.frame_ms
            if self._in_burst and self._burst_voiced_ms >= cfg.machine_speech_ms:
                return self._decide(MACHINE, f"{self._burst_voiced_ms} ms of speech without waiting for a reply")
            return None
        self._voiced_run = 0
        self._quiet_ms += cfg.frame_ms
        if self._in_burst and self._quiet_ms >= cfg.human_silence_ms and self._burst_voiced_ms < cfg.min_answer_ms:
            self._in_burst = False  # too short to be anyone's answer: a click or line noise
        if self._in_burst and self._quiet_ms >= cfg.human_silence_ms:
            return self._decide(HUMAN, f"a {self._burst_voiced_ms} ms answer, then {self._quiet_ms} ms of waiting")
        return None  # a shorter quiet is a pause within the burst: a greeting's sentences run on

    def _timeout(self) -> AmdDecision | None:
        if self._now_ms >= self.config.timeout_ms:
            return self._decide(UNKNOWN, f"no decision in {self.config.timeout_ms} ms")
        return None

    def _beep(self, pcm: bytes, sample_rate: int) -> bool:
        hz = tone_frequency(pcm, sample_rate, self.config)
        if hz is None or (self._tone_hz is not None and abs(hz - self._tone_hz) > 60):
            self._tone_hz, self._tone_ms = hz, (self.config.frame_ms if hz is not None else 0)
            return False
        self._tone_hz = hz
        self._tone_ms += self.config.frame_ms
        return self._tone_ms >= self.config.beep_ms

    def _decide(self, answered_by: str, reason: str) -> AmdDecision:
        self.decision = AmdDecision(answered_by, self._now_ms, reason)
        return self.decision


def tone_frequency(pcm: bytes, sample_rate: int, config: AmdConfig) -> float | None:
    """The frequency of a steady tone in beep range filling the frame's voice band, or None."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    if samples.size < 64:
        return None
    # np.mean's own arithmetic (a pairwise float64 sum, then / n) without its Python overhead: this runs on every
    # frame while detection lasts (tests/pipeline/test_frame_cost.py holds it to the old results bit for bit).
    if 10 * np.log10(_sum(samples * samples) / samples.size + 1e-12) < config.beep_floor_dbfs:
        return None
    window, freqs, band, beep = _bins(samples.size, sample_rate, config.beep_low_hz, config.beep_high_hz)
    spectrum = np.abs(np.fft.rfft(samples * window)) ** 2
    total = spectrum[band].sum()
    if total <= 0 or beep.start == beep.stop:
        return None
    peak = beep.start + int(np.argmax(spectrum[beep]))
    around = spectrum[max(peak - 1, 0):peak + 2].sum()  # a Hann window spreads a tone over 3 bins
    if around / total < config.beep_purity:
        return None
    return float(freqs[peak])


_sum = np.add.reduce


@functools.lru_cache(maxsize=32)
def _bins(size: int, sample_rate: int, low_hz: float, high_hz: float) -> tuple[np.ndarray, np.ndarray, slice, slice]:
    """The frame's window, bin frequencies, voice band (300-3,400 Hz) and beep range, made once per frame size
    and rate rather than on every frame. The bands are slices: the frequencies ascend, so each is one run."""
    window = np.hanning(size)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    window.flags.writeable = freqs.flags.writeable = False  # shared by every call: read only
    return window, freqs, _run(freqs, 300, 3400), _run(freqs, low_hz, high_hz)


def _run(freqs: np.ndarray, low: float, high: float) -> slice:
    inside = np.flatnonzero((freqs >= low) & (freqs <= high))
    return slice(int(inside[0]), int(inside[-1]) + 1) if inside.size else slice(0, 0)

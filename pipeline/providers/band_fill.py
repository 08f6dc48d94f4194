"""Quiet noise in the band a telephone call does not carry, for a recognizer trained on wideband speech.

pocketsphinx's only packaged acoustic model is a 16 kHz one: its mel filters reach 6.8 kHz. A G.711 call is
band-limited to ~3.4 kHz, so after upsampling the filters above 4 kHz see digital silence, a feature value the
model never met in training, and the words fall apart (the same espeak sentences: 89% word error rate at 8 kHz
against 65% at 16 kHz, bench/bench_stt_wer.py). Filling that empty band with low, steady noise (about -40 dBFS)
gives those filters an ordinary value again and recovers most of it. Above 4 kHz the noise is also invisible
to webrtcvad and the endpointer (they look at 0-4 kHz only), and nothing of it reaches the caller or the agent.
Wideband audio (a 16 kHz stream with real energy above 4 kHz) is left alone: there the fill only costs words.
"""
from __future__ import annotations

import numpy as np

RATE = 16000
LOW_HZ = 4200.0  # above the G.711 band and the resampler's transition
LOOP_S = 4.0
LOUD_RMS = 300.0  # a chunk this loud is speech enough to tell the band from
DECIDE_AFTER_S = 0.5  # of loud audio: then the stream is known narrowband or not, for good
NARROWBAND_SHARE = 0.003  # energy above LOW_HZ under this share: nothing up there but resampling images


class BandFill:
    """Adds a looped, seeded noise (LOW_HZ..8 kHz, standard deviation `level`) to 16 kHz linear16 audio when the
    stream is narrowband: known (an 8 kHz stream, `narrowband=True`) or found from its first half second of
    speech (a 16 kHz stream may carry a G.711 leg or real wideband audio, which is left alone)."""

    def __init__(self, level: float, narrowband: bool | None = None, seed: int = 0):
        count = int(RATE * LOOP_S)
        spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(count))
        spectrum[np.fft.rfftfreq(count, 1 / RATE) < LOW_HZ] = 0
        noise = np.fft.irfft(spectrum, count)  # periodic: the loop has no seam
        self.noise = (noise * (level / (noise.std() or 1.0))).astype(np.float32)
        self.at = 0
        self.narrowband = narrowband
        self._loud_samples = 0
        self._high = self._all = 0.0

    def observe(self, pcm: bytes) -> None:
        """Learn from speech audio whether the stream carries anything above 4 kHz (until decided)."""
        if self.narrowband is not None or len(pcm) < 64:
            return
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float64)
        if np.sqrt(np.mean(samples ** 2)) < LOUD_RMS:
            return
        power = np.abs(np.fft.rfft(samples)) ** 2
        self._high += float(power[np.fft.rfftfreq(len(samples), 1 / RATE) >= LOW_HZ].sum())
        self._all += float(power.sum())
        self._loud_samples += len(samples)
        if self._loud_samples >= DECIDE_AFTER_S * RATE:
            self.narrowband = self._high < NARROWBAND_SHARE * self._all

    def apply(self, pcm: bytes) -> bytes:
        """`pcm` with the fill when the stream is narrowband; unchanged otherwise (or while undecided)."""
        if not self.narrowband:
            return pcm
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
        index = (self.at + np.arange(len(samples))) % len(self.noise)
        self.at = (self.at + len(samples)) % len(self.noise)
        return np.clip(np.round(samples + self.noise[index]), -32768, 32767).astype("<i2").tobytes()

"""Quiet noise in the band a telephone call does not carry, for a recognizer trained on wideband speech.

pocketsphinx's only packaged acoustic model is a 16 kHz one: its mel filters reach 6.8 kHz. A G.711 call is
band-limited to ~3.4 kHz, so after upsampling the filters above 4 kHz see digital silence, a feature value the
model never met in training, and the words fall apart (the same espeak sentences: 89% word error rate at 8 kHz
against 65% at 16 kHz, bench/bench_stt_wer.py). Filling that empty band with low, steady noise (about -40 dBFS)
gives those filters an ordinary value again and recovers most of it. Above 4 kHz the noise is also invisible
to webrtcvad and the endpointer (they look at 0-4 kHz only), and nothing of it reaches the caller or the agent.
A 16 kHz stream gets it too: mod_audio_fork's 16k stream of a G.711 leg is just as empty up there, and the
share of energy above 4 kHz does not tell such a stream from wideband speech reliably (resampling images
and soft speech overlap), so an agent on a wideband leg (G.722, Opus) sets narrowband_fill to 0.
"""
from __future__ import annotations

import numpy as np

RATE = 16000
LOW_HZ = 4200.0  # above the G.711 band and the resampler's transition
LOOP_S = 4.0


class BandFill:
    """Adds a looped, seeded noise (LOW_HZ..8 kHz, standard deviation `level`) to 16 kHz linear16 audio."""

    def __init__(self, level: float, seed: int = 0):
        count = int(RATE * LOOP_S)
        spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(count))
        spectrum[np.fft.rfftfreq(count, 1 / RATE) < LOW_HZ] = 0
        noise = np.fft.irfft(spectrum, count)  # periodic: the loop has no seam
        self.noise = (noise * (level / (noise.std() or 1.0))).astype(np.float32)
        self.at = 0

    def apply(self, pcm: bytes) -> bytes:
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
        index = (self.at + np.arange(len(samples))) % len(self.noise)
        self.at = (self.at + len(samples)) % len(self.noise)
        return np.clip(np.round(samples + self.noise[index]), -32768, 32767).astype("<i2").tobytes()

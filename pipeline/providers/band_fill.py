"""Quiet noise in the band a telephone call does not carry, for a recognizer trained on wideband speech.

pocketsphinx's only packaged acoustic model is a 16 kHz one: its mel filters reach 6.8 kHz. A G.711 call is
band-limited to ~3.4 kHz, so after upsampling the filters above 4 kHz see digital silence, a feature value the
model never met in training, and the words suffer. Filling that empty band with low, steady noise (about
-30 dBFS) gives those filters an ordinary value again and recovers part of it (bench/bench_stt_wer.py).
Above 4 kHz the noise is invisible to webrtcvad and the endpointer (they look at 0-4 kHz only), and nothing
of it reaches the caller or the agent.
Only narrowband streams get it: an 8 kHz stream, or mod_audio_fork's 16k stream of a leg whose codec runs at
8 kHz (the controller reads the leg's read_rate at answer and says so in the stream's metadata). Wideband audio
(a G.722 or Opus leg, a browser's microphone) has real energy up there and would only lose words to the fill.
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

"""The far end's voice as a real SIP leg carries it: 8 kHz G.711 μ-law (PCMU), then resampled by the switch.

Measured on FreeSWITCH 1.10.12 (tests/data/freeswitch/README.md, "Measured facts of the real stream"): an 8k fork
gets the μ-law round trip of the far end's audio (the ±1 LSB dither of a WAV's silence becomes digital zero), a
16k fork gets that 8 kHz signal band-limited (nothing above 4 kHz but ~-75 dB), not linearly interpolated.
"""
from __future__ import annotations

import numpy as np

_BIAS = 0x84
LEG_RATE = 8000


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> G.711 μ-law bytes (uint8), as FreeSWITCH's g711.h (from spandsp) does it: 16-bit
    arithmetic, so -1 encodes to zero like +1 (audioop's 14-bit version turns -1 into -8). The real 8k stream
    of speech-immediate.wav is 99 % sample-identical to this round trip (91 % to audioop's)."""
    x = pcm.astype(np.int32)
    negative = x < 0
    linear = np.where(negative, _BIAS - x - 1, _BIAS + x)
    segment = np.floor(np.log2(linear | 0xFF)).astype(np.int32) - 7
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((linear >> (np.minimum(segment, 7) + 3)) & 0x0F))
    return ((code ^ np.where(negative, 0x7F, 0xFF)) & 0xFF).astype(np.uint8)


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 μ-law bytes -> int16 samples."""
    c = (~codes.astype(np.int32)) & 0xFF
    exponent, mantissa = (c >> 4) & 0x07, c & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(c & 0x80, -magnitude, magnitude).astype(np.int16)


def pcmu_round_trip(pcm: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(pcm))


def _lowpass(taps: int = 161, cutoff_hz: float = 3600.0, rate: int = 16000, beta: float = 10.0) -> np.ndarray:
    """A Kaiser-windowed sinc low-pass at the 16 kHz rate, unity gain at DC."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff_hz / rate * n) * np.kaiser(taps, beta)
    return h / h.sum()


_FILTER = _lowpass()


class Upsampler:
    """8 kHz -> 16 kHz, frame by frame (the filter's history carries over between frames): zero-stuffing and a
    low-pass that removes the images of the 8 kHz band above 4 kHz."""

    def __init__(self) -> None:
        self._history = np.zeros(len(_FILTER) - 1)

    def process(self, pcm8k: np.ndarray) -> np.ndarray:
        stuffed = np.zeros(2 * len(pcm8k))
        stuffed[::2] = pcm8k * 2.0  # zero-stuffing halves the level
        signal = np.concatenate([self._history, stuffed])
        self._history = signal[-(len(_FILTER) - 1):]
        out = np.convolve(signal, _FILTER, mode="valid")
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def to_leg(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Any-rate int16 audio -> the 8 kHz leg (band-limited first when it is 16 kHz; others linearly resampled)."""
    if rate == LEG_RATE:
        return pcm.astype(np.int16)
    if rate != 2 * LEG_RATE:
        count = int(round(len(pcm) * 2 * LEG_RATE / rate))
        positions = np.arange(count) * (rate / (2 * LEG_RATE))
        pcm = np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float64))
    filtered = np.convolve(pcm.astype(np.float64), _FILTER, mode="same")[::2]
    return np.clip(np.round(filtered), -32768, 32767).astype(np.int16)

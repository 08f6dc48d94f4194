"""PCM helpers the providers need: resampling, mu-law decoding, WAV parsing, byte-aligned chunking.

All audio crossing a provider interface is 16-bit little-endian mono PCM ("linear16").
"""
from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import numpy as np

SAMPLE_WIDTH = 2


def _lowpass(samples: np.ndarray, cutoff: float) -> np.ndarray:
    """Windowed-sinc FIR; cutoff is a fraction of the source Nyquist. Stops aliasing when downsampling."""
    taps = 31
    n = np.arange(taps) - (taps - 1) / 2
    kernel = cutoff * np.sinc(cutoff * n) * np.hamming(taps)
    kernel /= kernel.sum()
    return np.convolve(samples, kernel, mode="same")


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample a whole buffer of linear16 PCM (linear interpolation, low-pass first when downsampling)."""
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
    if dst_rate < src_rate:
        samples = _lowpass(samples, dst_rate / src_rate)
    count = int(round(len(samples) * dst_rate / src_rate))
    positions = np.arange(count, dtype=np.float64) * (src_rate / dst_rate)
    out = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


def _ulaw_table() -> np.ndarray:
    # ITU-T G.711 mu-law expansion for all 256 codes.
    codes = ~np.arange(256, dtype=np.uint8)
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    values = np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84)
    return values.astype("<i2")


_ULAW = _ulaw_table()


def ulaw_to_pcm(data: bytes) -> bytes:
    """Decode G.711 mu-law bytes to linear16."""
    return _ULAW[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """Encode linear16 to G.711 mu-law (used by the fakes and for round-trip tests)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def wav_to_pcm(data: bytes) -> tuple[bytes, int]:
    """(linear16 mono PCM, sample rate) from a WAV file's bytes; stereo is mixed down."""
    with wave.open(io.BytesIO(data)) as reader:
        if reader.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"unsupported WAV sample width {reader.getsampwidth()}")
        rate, channels = reader.getframerate(), reader.getnchannels()
        frames = reader.readframes(reader.getnframes())
    if channels > 1:
        stereo = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).astype(np.int32)
        frames = stereo.mean(axis=1).astype("<i2").tobytes()
    return frames, rate


def chunks(pcm: bytes, sample_rate: int, chunk_ms: int) -> Iterator[bytes]:
    """Split PCM into chunk_ms pieces (the last may be shorter)."""
    size = max(SAMPLE_WIDTH, sample_rate * SAMPLE_WIDTH * chunk_ms // 1000)
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


class ByteAligner:
    """Streams may split a 16-bit sample across two network chunks; carry the odd byte to the next one."""

    def __init__(self) -> None:
        self._carry = b""

    def push(self, data: bytes) -> bytes:
        data = self._carry + data
        cut = len(data) - len(data) % SAMPLE_WIDTH
        self._carry = data[cut:]
        return data[:cut]

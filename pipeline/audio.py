"""Caller audio hygiene: validate PCM, re-chunk arbitrary-length writes into 20 ms frames, resample.

mod_audio_fork writes whatever has built up, so a binary frame may hold 10 ms, 640 bytes or 3 s of audio; the VAD
needs exact 10/20/30 ms frames. All audio is 16-bit little-endian mono PCM.
"""
from __future__ import annotations

import numpy as np

SAMPLE_WIDTH = 2
SUPPORTED_RATES = (8000, 16000, 24000, 32000, 44100, 48000)


class AudioFormatError(ValueError):
    """The bytes cannot be 16-bit mono PCM at the announced rate."""


def frame_bytes(sample_rate: int, frame_ms: int = 20) -> int:
    if sample_rate not in SUPPORTED_RATES:
        raise AudioFormatError(f"unsupported sample rate {sample_rate!r}; supported: {SUPPORTED_RATES}")
    if frame_ms <= 0 or (sample_rate * frame_ms) % 1000:
        raise AudioFormatError(f"{frame_ms} ms is not a whole number of samples at {sample_rate} Hz")
    return sample_rate * frame_ms // 1000 * SAMPLE_WIDTH


def validate_pcm(data: bytes) -> None:
    """16-bit samples come in pairs of bytes: an odd count means a corrupted or non-PCM stream."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AudioFormatError(f"audio must be bytes, got {type(data).__name__}")
    if len(data) % SAMPLE_WIDTH:
        raise AudioFormatError(f"odd byte count {len(data)}: not 16-bit PCM")


class Rechunker:
    """push() any even-length PCM, get back whole frames of frame_ms; the remainder waits for the next push."""

    def __init__(self, sample_rate: int, frame_ms: int = 20, max_buffer_ms: int = 10_000):
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.size = frame_bytes(sample_rate, frame_ms)
        self._max = frame_bytes(sample_rate, 10) * max_buffer_ms // 10
        self._buffer = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        validate_pcm(data)
        if not self._buffer and len(data) == self.size:
            return [data if type(data) is bytes else bytes(data)]  # the usual write: one whole frame, no copies
        if len(self._buffer) + len(data) > self._max:
            raise AudioFormatError(f"more than {self._max} bytes of audio in one write")
        self._buffer += data
        whole = len(self._buffer) - len(self._buffer) % self.size
        frames = [bytes(self._buffer[i : i + self.size]) for i in range(0, whole, self.size)]
        del self._buffer[:whole]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> bytes:
        """The incomplete tail (at shutdown), zero-padded to a whole frame, or b"" when there is none."""
        if not self._buffer:
            return b""
        tail = bytes(self._buffer) + bytes(self.size - len(self._buffer))
        self._buffer.clear()
        return tail


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample linear16 (linear interpolation; a short low-pass first when downsampling, against aliasing)."""
    validate_pcm(pcm)
    if src_rate == dst_rate or not pcm:
        return bytes(pcm)
    if src_rate <= 0 or dst_rate <= 0:
        raise AudioFormatError(f"bad sample rates {src_rate} -> {dst_rate}")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if dst_rate < src_rate:
        samples = _lowpass(samples, dst_rate / src_rate)
    count = int(round(len(samples) * dst_rate / src_rate))
    positions = np.arange(count, dtype=np.float64) * (src_rate / dst_rate)
    out = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


def _lowpass(samples: np.ndarray, cutoff: float) -> np.ndarray:
    taps = 31
    n = np.arange(taps) - (taps - 1) / 2
    kernel = cutoff * np.sinc(cutoff * n) * np.hamming(taps)
    kernel /= kernel.sum()
    return np.convolve(samples, kernel, mode="same").astype(np.float32)


def duration_ms(pcm_len: int, sample_rate: int) -> float:
    return pcm_len / SAMPLE_WIDTH / sample_rate * 1000.0

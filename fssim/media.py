"""Audio the simulated far end produces (a WAV or silence) and a record of what it hears."""
from __future__ import annotations

import array
import wave
from collections.abc import Callable

import gevent.lock


def load_wav(path: str, rate: int) -> bytes:
    """16-bit mono PCM at `rate`, from a 16-bit WAV (channels averaged, linear resampling)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        nch, src_rate, raw = w.getnchannels(), w.getframerate(), w.readframes(w.getnframes())
    samples = array.array("h", raw)
    if nch > 1:
        samples = array.array("h", (sum(samples[i:i + nch]) // nch for i in range(0, len(samples), nch)))
    return resample(samples.tobytes(), src_rate, rate)


def resample(pcm: bytes, src: int, dst: int) -> bytes:
    if src == dst or not pcm:
        return pcm
    s = array.array("h", pcm)
    n = max(1, len(s) * dst // src)
    out = array.array("h", bytes(2 * n))
    step = (len(s) - 1) / max(1, n - 1)
    for i in range(n):
        pos = i * step
        j = int(pos)
        frac = pos - j
        nxt = s[j + 1] if j + 1 < len(s) else s[j]
        out[i] = int(s[j] + (nxt - s[j]) * frac)
    return out.tobytes()


class AudioSource:
    """Endless 20 ms frames: the WAV once, then whatever the far end is told to say (Simulator.say),
    else silence (a caller who said their piece)."""

    def __init__(self, path: str | None, rate: int, live: bytearray | None = None):
        self.pcm = load_wav(path, rate) if path else b""
        self.rate = rate
        self.frame_bytes = rate // 50 * 2
        self.pos = 0
        self.live = live if live is not None else bytearray()  # 16 kHz PCM queued by say()
        self._live_pcm = b""

    def next_frame(self) -> bytes:
        if self.pos < len(self.pcm):
            chunk = self.pcm[self.pos:self.pos + self.frame_bytes]
            self.pos += self.frame_bytes
            return chunk + b"\x00" * (self.frame_bytes - len(chunk))
        if self.live:
            self._live_pcm += resample(bytes(self.live), 16000, self.rate)
            self.live.clear()
        chunk, self._live_pcm = self._live_pcm[:self.frame_bytes], self._live_pcm[self.frame_bytes:]
        return chunk + b"\x00" * (self.frame_bytes - len(chunk))


class HeardAudio:
    """What each call's far end heard, as 16 kHz 16-bit mono PCM, kept after the call ends.

    Sources: files played into the call (uuid_broadcast, sendmsg playback) and binary frames a
    bidirectional mod_audio_fork stream sent back while the channel was writing audio.
    """

    RATE = 16000

    def __init__(self, limit_bytes: int = 32 * 1024 * 1024):
        self.buffers: dict[str, bytearray] = {}
        self.listeners: list[Callable[[str, bytes], None]] = []
        self.limit = limit_bytes
        self.lock = gevent.lock.RLock()

    def add(self, uuid: str, pcm16k: bytes) -> None:
        with self.lock:
            buf = self.buffers.setdefault(uuid, bytearray())
            if len(buf) + len(pcm16k) <= self.limit:
                buf.extend(pcm16k)
        for fn in list(self.listeners):
            fn(uuid, pcm16k)

    def get(self, uuid: str) -> bytes:
        with self.lock:
            return bytes(self.buffers.get(uuid, b""))


def file_pcm16k(path: str) -> bytes | None:
    """PCM of a file FreeSWITCH could play: .r16 / .r8 raw, or .wav; None for streams and unknowns."""
    try:
        if path.endswith(".r16"):
            with open(path, "rb") as fh:
                return fh.read()
        if path.endswith(".r8"):
            with open(path, "rb") as fh:
                return resample(fh.read(), 8000, 16000)
        if path.endswith(".wav"):
            return load_wav(path, 16000)
    except (OSError, ValueError, EOFError, wave.Error):
        return None
    return None


def play_duration(arg: str) -> float | None:
    """Seconds a playback of `arg` lasts; None for endless (silence_stream://-1) or unknown streams."""
    if arg.startswith("silence_stream://"):
        ms = arg.split("://", 1)[1].split(",")[0]
        try:
            n = int(ms)
        except ValueError:
            return 0.0
        return None if n < 0 else n / 1000
    if arg.startswith("tone_stream://"):
        return 0.3 if "loops=-1" not in arg else None
    pcm = file_pcm16k(arg)
    return None if pcm is None else len(pcm) / 32000

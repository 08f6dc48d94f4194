"""Audio the simulated far end produces (a WAV or silence) and a record of what it hears."""
from __future__ import annotations

import array
import wave
from collections.abc import Callable

import gevent.lock
import numpy as np

from fssim.g711 import LEG_RATE, Upsampler, pcmu_round_trip, to_leg

RTP_MODES = ("continuous", "suppress")
CODECS = ("PCMU", "L16")  # the far end's leg: G.711 μ-law at 8 kHz (what the captures had), or wideband 16 kHz


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
    """What mod_audio_fork gets from the far end, 20 ms at a time: the far end's audio (the WAV once, then what
    Simulator.say queues, else silence) as the call's 8 kHz PCMU leg carries it (μ-law quantised: a WAV's
    dither becomes digital zero) and as the switch resamples it for the fork (band-limited to 16 kHz).

    codec "L16": a wideband leg instead (16 kHz linear, as with G.722 or Opus: no μ-law, nothing band-limited).

    rtp "continuous": the far end sends RTP all the time (silence included), one frame per 20 ms until hang-up.
    rtp "suppress": a carrier that suppresses silence sends no RTP while the far end is quiet (after a short
    hangover), and the real module then sends nothing: next_frame() returns None for those 20 ms.
    """

    HANGOVER_FRAMES = 10  # a carrier's VAD keeps sending ~200 ms past the last sound
    QUIET_RMS = 10.0  # about -70 dBFS: μ-law's smallest steps, no sound

    def __init__(self, path: str | None, rate: int, live: bytearray | None = None, rtp: str = "continuous",
                 codec: str = "PCMU"):
        if rtp not in RTP_MODES:
            raise ValueError(f"rtp must be one of {', '.join(RTP_MODES)}")
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}")
        self.wideband = codec == "L16"
        self.leg_rate = 2 * LEG_RATE if self.wideband else LEG_RATE
        if not path:
            self.leg = np.zeros(0, np.int16)
        elif self.wideband:
            self.leg = np.frombuffer(load_wav(path, self.leg_rate), "<i2")
        else:
            self.leg = pcmu_round_trip(leg_from_wav(path))
        self.rate, self.rtp = rate, rtp
        self.frame_bytes = rate // 50 * 2
        self.pos = 0  # in leg samples
        self.live = live if live is not None else bytearray()  # 16 kHz PCM queued by say()
        self._live_leg = np.zeros(0, np.int16)
        self._quiet_frames = self.HANGOVER_FRAMES + 1
        self._upsampler = Upsampler() if rate == 2 * LEG_RATE and not self.wideband else None

    def next_frame(self) -> bytes | None:
        """The next 20 ms at the fork's rate, or None when the far end sends no RTP for them."""
        chunk = self._next_leg_chunk()
        quiet = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) < self.QUIET_RMS
        self._quiet_frames = self._quiet_frames + 1 if quiet else 0
        frame = self._to_fork_rate(chunk)  # always: the resampler's history runs on through the silence
        if self.rtp == "suppress" and self._quiet_frames > self.HANGOVER_FRAMES:
            return None
        return frame

    def _next_leg_chunk(self) -> np.ndarray:
        size = self.leg_rate // 50
        if self.pos < len(self.leg):
            chunk = self.leg[self.pos:self.pos + size]
            self.pos += size
        else:
            if self.live:
                pcm = np.frombuffer(bytes(self.live), "<i2")
                self.live.clear()
                leg = pcm if self.wideband else pcmu_round_trip(to_leg(pcm, 16000))
                self._live_leg = np.concatenate([self._live_leg, leg])
            chunk, self._live_leg = self._live_leg[:size], self._live_leg[size:]
        return np.pad(chunk, (0, size - len(chunk)))

    def _to_fork_rate(self, chunk: np.ndarray) -> bytes:
        if self.rate == self.leg_rate:
            return chunk.astype("<i2").tobytes()
        if self._upsampler is not None:
            return self._upsampler.process(chunk).astype("<i2").tobytes()
        return resample(chunk.astype("<i2").tobytes(), self.leg_rate, self.rate)[:self.frame_bytes].ljust(
            self.frame_bytes, b"\0")


def leg_from_wav(path: str) -> np.ndarray:
    """A 16-bit WAV (channels averaged) as 8 kHz samples, band-limited when it had to be downsampled."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        nch, rate, raw = w.getnchannels(), w.getframerate(), w.readframes(w.getnframes())
    samples = np.frombuffer(raw, "<i2")
    if nch > 1:
        samples = samples[: len(samples) // nch * nch].reshape(-1, nch).mean(axis=1)
    return to_leg(np.asarray(samples), rate)


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

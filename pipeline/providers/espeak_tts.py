"""Offline TTS: the espeak-ng program (Debian package espeak-ng).

The text goes to espeak-ng on stdin (never a shell, never an argv element it could parse as an option), plain
text mode (no SSML), and the WAV it writes is resampled to the call's rate with numpy. gevent's subprocess
(monkey patched) keeps the hub free while it runs. The result goes through the process's TTS cache
(tts_cache, TTS_CACHE_MB): a scripted agent's greeting is synthesized once per process, not once per call.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

from pipeline.providers.audio import chunks, resample, wav_to_pcm
from pipeline.providers.errors import ProviderConfigError, ProviderError, ProviderTimeout
from pipeline.providers.tts import TTS, check_rate
from pipeline.providers.tts_cache import shared_cache

_VOICE = re.compile(r"[A-Za-z0-9_\-+]{1,40}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_CHARS = 2000


class EspeakTTS(TTS):
    name = "espeak"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 165, binary: str = "espeak-ng",
                 timeout_s: float = 10.0, chunk_ms: int = 100):
        if not _VOICE.fullmatch(voice):
            raise ProviderConfigError(f"invalid espeak-ng voice name {voice!r}", provider=self.name)
        path = shutil.which(binary)
        if path is None:
            raise ProviderConfigError(f"{binary} not found; install the espeak-ng Debian package",
                                      provider=self.name)
        self.binary = path
        self.voice = voice
        self.words_per_minute = max(80, min(450, int(words_per_minute)))
        self.timeout_s = timeout_s
        self.chunk_ms = chunk_ms

    def render(self, text: str) -> tuple[bytes, int]:
        """(PCM, espeak's native rate) for `text`."""
        clean = _CONTROL.sub(" ", text)[:MAX_CHARS].strip()
        if not clean:
            return b"", 22050
        argv = [self.binary, "-v", self.voice, "-s", str(self.words_per_minute), "--stdout", "--stdin"]
        try:
            done = subprocess.run(argv, input=clean.encode("utf-8"), capture_output=True, timeout=self.timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise ProviderTimeout(f"espeak-ng took longer than {self.timeout_s}s", provider=self.name) from exc
        if done.returncode != 0 or not done.stdout:
            detail = done.stderr.decode("utf-8", "replace").strip()[:200]
            raise ProviderError(f"espeak-ng failed (exit {done.returncode}): {detail}", provider=self.name)
        try:
            return wav_to_pcm(done.stdout)
        except Exception as exc:
            raise ProviderError(f"espeak-ng wrote unreadable audio: {exc}", provider=self.name) from exc

    def cache_key(self, text: str, sample_rate: int) -> tuple:
        """Everything that changes the audio: another voice, speed, binary or output rate is another entry."""
        return (self.name, self.binary, self.voice, self.words_per_minute, text, sample_rate)

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        check_rate(sample_rate, self.name)

        def make() -> bytes:
            pcm, rate = self.render(text)
            return resample(pcm, rate, sample_rate)

        pcm = shared_cache().cached(self.cache_key(text, sample_rate), self.name, make)
        yield from chunks(pcm, sample_rate, self.chunk_ms)

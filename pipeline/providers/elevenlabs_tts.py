"""ElevenLabs streaming TTS through the elevenlabs SDK's sync client (httpx sync: cooperative under gevent).

POST /v1/text-to-speech/{voice}/stream with a low-latency model; the audio is requested directly at the call's
rate as raw PCM (pcm_8000 / pcm_16000), or as ulaw_8000 and decoded here. Chunks are yielded as they arrive,
with samples split across network chunks re-aligned. base_url is configurable so tests use a local fake.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError

from pipeline.providers.audio import ByteAligner, resample, ulaw_to_pcm
from pipeline.providers.errors import ProviderConfigError, ProviderError, ProviderTimeout
from pipeline.providers.tts import TTS, check_rate

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
_VOICE_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class ElevenLabsTTS(TTS):
    name = "elevenlabs"

    def __init__(self, api_key: str, voice_id: str, base_url: str = "", model_id: str = "eleven_flash_v2_5",
                 output_format: str = "pcm", timeout_s: float = 10.0, optimize_streaming_latency: int | None = None):
        if not _VOICE_ID.fullmatch(voice_id or ""):
            raise ProviderConfigError(f"invalid ElevenLabs voice id {voice_id!r}", provider=self.name)
        if output_format not in ("pcm", "ulaw_8000"):
            raise ProviderConfigError("output_format must be 'pcm' or 'ulaw_8000'", provider=self.name)
        self.voice_id = voice_id
        self.model_id = model_id
        self.output_format = output_format
        self.timeout_s = timeout_s
        self.optimize_streaming_latency = optimize_streaming_latency
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._client = ElevenLabs(api_key=api_key, base_url=self.base_url,
                                  httpx_client=httpx.Client(timeout=httpx.Timeout(timeout_s, connect=3.0)))

    def __repr__(self) -> str:  # never show the key
        return f"ElevenLabsTTS(base_url={self.base_url!r}, voice_id={self.voice_id!r}, model_id={self.model_id!r})"

    def _format(self, sample_rate: int) -> tuple[str, int]:
        if self.output_format == "ulaw_8000":
            return "ulaw_8000", 8000
        return f"pcm_{sample_rate}", sample_rate

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        check_rate(sample_rate, self.name)
        if not text.strip():
            return
        fmt, rate = self._format(sample_rate)
        aligner = ByteAligner()
        try:
            audio = self._client.text_to_speech.stream(
                self.voice_id, text=text, model_id=self.model_id, output_format=fmt,
                optimize_streaming_latency=self.optimize_streaming_latency,
                request_options={"max_retries": 0, "timeout_in_seconds": int(max(1, self.timeout_s))})
            for chunk in audio:
                pcm = ulaw_to_pcm(chunk) if fmt.startswith("ulaw") else aligner.push(chunk)
                if pcm:
                    yield resample(pcm, rate, sample_rate)
        except ApiError as exc:
            status = exc.status_code or 0
            raise ProviderError("synthesis refused", provider=self.name, status=status or None,
                                retryable=status >= 500 or status == 429) from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeout("no audio in time", provider=self.name) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"stream failed: {type(exc).__name__}", provider=self.name) from exc

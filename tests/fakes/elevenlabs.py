"""An ElevenLabs streaming TTS server: POST /v1/text-to-speech/{voice_id}/stream?output_format=...

Like the real API: `xi-api-key` header, JSON body {text, model_id, ...}, the audio streamed back chunked as
raw bytes (pcm_8000/pcm_16000/... little-endian 16-bit, or ulaw_8000). The "speech" is a deterministic tone
whose length follows the text, so tests can check rate, length and decoding. Chunks are an odd number of bytes
on purpose: real streams split samples across chunks too.
"""
from __future__ import annotations

import json
import re

import numpy as np

from pipeline.providers.audio import pcm_to_ulaw
from tests.fakes.http import FakeHTTPServer, Request, Writer

_PATH = re.compile(r"/v1/text-to-speech/([A-Za-z0-9_\-]+)/stream")
SECONDS_PER_CHAR = 0.05
TONE_HZ = 440.0


def tone_pcm(text: str, rate: int) -> bytes:
    seconds = max(0.2, len(text) * SECONDS_PER_CHAR)
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * TONE_HZ * t) * 8000).astype("<i2").tobytes()


class FakeElevenLabs(FakeHTTPServer):
    def __init__(self, api_key: str = "xi-test", voices: tuple[str, ...] = ("voice123",), chunk_bytes: int = 1601):
        super().__init__()
        self.api_key = api_key
        self.voices = set(voices)
        self.chunk_bytes = chunk_bytes

    def handle(self, request: Request, writer: Writer) -> None:
        match = _PATH.fullmatch(request.path)
        if request.method != "POST" or not match:
            return writer.send_body(404, _detail("not_found", "Not found"))
        if request.headers.get("xi-api-key") != self.api_key:
            return writer.send_body(401, _detail("invalid_api_key", "Invalid API key"))
        if writer.fault.status:
            return writer.send_body(writer.fault.status, _detail("internal_error", "injected failure"))
        if match.group(1) not in self.voices:
            return writer.send_body(404, _detail("voice_not_found", "A voice with that ID does not exist."))
        body = request.json() or {}
        text = body.get("text") or ""
        fmt = request.query.get("output_format", "mp3_44100_128")
        audio = self._render(text, fmt)
        if audio is None:
            return writer.send_body(422, json.dumps({"detail": [{"loc": ["query", "output_format"],
                                                                 "msg": f"unsupported format {fmt}",
                                                                 "type": "value_error"}]}).encode())
        writer.start_chunked(200, "audio/basic" if fmt.startswith("ulaw") else "audio/pcm")
        for start in range(0, len(audio), self.chunk_bytes):
            writer.chunk(audio[start:start + self.chunk_bytes])
        writer.end_chunked()

    @staticmethod
    def _render(text: str, fmt: str) -> bytes | None:
        if fmt == "ulaw_8000":
            return pcm_to_ulaw(tone_pcm(text, 8000))
        match = re.fullmatch(r"pcm_(\d+)", fmt)
        if match and int(match.group(1)) in (8000, 16000, 22050, 24000, 44100):
            return tone_pcm(text, int(match.group(1)))
        return None


def _detail(status: str, message: str) -> bytes:
    return json.dumps({"detail": {"status": status, "message": message}}).encode()

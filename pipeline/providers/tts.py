"""The streaming TTS interface: text in, linear16 mono PCM chunks out at the requested rate (8000 or 16000)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from pipeline.providers.errors import ProviderConfigError

SUPPORTED_RATES = (8000, 16000)


class TTS(ABC):
    name = "tts"

    @abstractmethod
    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        """Yield PCM chunks (even byte counts) as soon as they are available; raises ProviderError/Timeout."""


def check_rate(sample_rate: int, provider: str) -> None:
    if sample_rate not in SUPPORTED_RATES:
        raise ProviderConfigError(f"unsupported sample rate {sample_rate}; use 8000 or 16000", provider=provider)

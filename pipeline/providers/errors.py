"""Typed provider failures, so the pipeline can apologise and retry, or end the call cleanly."""
from __future__ import annotations


class ProviderError(Exception):
    """A speech or language provider failed (refused, crashed, dropped the stream, bad answer).

    `provider` names the implementation ("deepgram", "openai"...); `status` is the HTTP status when there was one;
    `retryable` tells the pipeline whether trying the same request again may help.
    """

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retryable = retryable

    def __str__(self) -> str:
        prefix = f"{self.provider}: " if self.provider else ""
        suffix = f" (HTTP {self.status})" if self.status else ""
        return f"{prefix}{super().__str__()}{suffix}"


class ProviderTimeout(ProviderError):
    """The provider did not answer (connect, first byte or next chunk) within its configured limit."""


class ProviderConfigError(ProviderError):
    """The agent asks for a provider that cannot be built here (unknown name, missing key, missing binary)."""

    def __init__(self, message: str, *, provider: str = ""):
        super().__init__(message, provider=provider, retryable=False)

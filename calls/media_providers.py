"""What one call's conversation runs on: its speech-to-text, language model and voice, built from the agent's
provider settings with the deployment's keys, wrapped so that a failing provider falls back instead of
leaving the caller in silence; every fallback is kept on the call's timeline."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import Config
from models import Agent, Call, CallEvent
from pipeline.providers import LLM, STT, TTS, FallbackTTS, ProviderError, ResilientLLM, build_llm
from pipeline.providers.registry import OFFLINE
from pipeline.server import StreamInfo
from pipeline.vad import VoiceDetector

log = logging.getLogger(__name__)


@dataclass
class MediaProviders:
    """What one call's Session runs on. vad=None: webrtcvad with the agent's aggressiveness."""

    stt: STT
    llm: LLM
    tts: TTS
    vad: VoiceDetector | None = None


ProviderFactory = Callable[[Agent, StreamInfo], MediaProviders]
AnalysisLLMFactory = Callable[[Agent], LLM]


def resilient_providers(llm: LLM, tts: TTS, offline_tts: TTS | None,
                        on_fallback: Callable[[str, str], None] | None = None) -> tuple[LLM, TTS]:
    """How every call's providers are wrapped: a failed LLM turn is retried, then apologised for; a cloud voice
    that fails before any audio speaks the sentence in the offline voice. The Session's dead-air watchdog
    bounds the time all of this may take (SessionConfig.provider_timeout). on_fallback(kind, detail) hears
    of every fallback that happens."""
    def report(kind: str) -> Callable[[str], None] | None:
        return None if on_fallback is None else (lambda detail: on_fallback(kind, detail))

    if offline_tts is not None:
        tts = FallbackTTS(tts, offline_tts, on_fallback=report("tts"))
    return ResilientLLM(llm, on_fallback=report("llm")), tts


def build_or_offline(build: Callable[..., Any], settings: dict, config: Config, call_id: str,
                      on_fallback: Callable[[str], None] | None = None) -> Any:
    """build(settings), or the offline default when the agent's provider cannot be built on this deployment.

    Agents are checked at save and at start, so this only happens when the deployment changed under a
    running process; it is logged and reported through on_fallback (recorded on the call), never silent.
    """
    provider = str(settings.get("provider") or "").lower()
    if not provider or provider in OFFLINE.values():
        return build(settings, config)
    try:
        return build(settings, config)
    except (ProviderError, ImportError) as exc:
        log.warning("call %s: %s; using the offline provider instead", call_id, exc)
        if on_fallback is not None:
            on_fallback(f"{provider} could not be built ({exc}); using the offline provider")
    if build is build_llm:  # the scripted agent runs the agent's own script (greeting, questions, closing)
        return build({key: value for key, value in settings.items() if key != "provider"}, config)
    return build(None, config)  # a cloud voice id or model name means nothing to espeak-ng / pocketsphinx


def record_provider_fallback(call_id: str, kind: str, why: str) -> None:
    """A provider fallback, kept on the call's timeline (GET /v1/calls/{id}/events) as well as in the log."""
    call = Call.get_or_none(Call.id == call_id)
    if call is None:
        return
    CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                     reason=f"provider fallback: {kind}", data={"kind": kind, "detail": why[:300]})

"""Build the STT / LLM / TTS an agent asks for, by name, from its settings dicts.

settings["provider"] picks the implementation ("deepgram"|"pocketsphinx", "openai"|"scripted",
"elevenlabs"|"espeak"); without one the offline default is used. Keys and base URLs come only from the
deployment (a config object's attributes, else the environment), never from agent settings: an agent must not
be able to point the server at an arbitrary host or read another key.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pipeline.providers.errors import ProviderConfigError
from pipeline.providers.llm import LLM
from pipeline.providers.stt import STT
from pipeline.providers.tts import TTS

OFFLINE = {"stt": "pocketsphinx", "llm": "scripted", "tts": "espeak"}


@dataclass(frozen=True)
class ProviderKeys:
    """Deployment-level credentials and endpoints. Env names are the upper-case field names."""

    deepgram_api_key: str = ""
    deepgram_base_url: str = ""
    openai_api_key: str = ""
    openai_base_url: str = ""
    llm_model: str = ""
    elevenlabs_api_key: str = ""
    elevenlabs_base_url: str = ""

    def __repr__(self) -> str:
        shown = {f.name: ("***" if f.name.endswith("_key") and getattr(self, f.name) else getattr(self, f.name))
                 for f in fields(self)}
        return "ProviderKeys(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def resolve(cls, config: Any = None, env: Mapping[str, str] | None = None) -> ProviderKeys:
        """Each value from `config` (attribute or mapping key) when set there, else from the environment."""
        env = os.environ if env is None else env
        if isinstance(config, ProviderKeys):
            return config
        values = {}
        for f in fields(cls):
            value = config.get(f.name) if isinstance(config, Mapping) else getattr(config, f.name, None)
            values[f.name] = str(value if value else env.get(f.name.upper(), "") or "")
        return cls(**values)


def _get(settings: Mapping[str, Any], key: str, kind: Callable, default: Any, provider: str) -> Any:
    value = settings.get(key, default)
    if value is None:
        return default
    try:
        if kind is bool and isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ProviderConfigError(f"setting {key!r} must be {kind.__name__}, got {value!r}",
                                  provider=provider) from exc


def _require(value: str, what: str, provider: str) -> str:
    if not value:
        raise ProviderConfigError(f"{what} is not configured", provider=provider)
    return value


def _provider(settings: Mapping[str, Any] | None, kind: str) -> tuple[str, Mapping[str, Any]]:
    settings = settings or {}
    return str(settings.get("provider") or OFFLINE[kind]).lower(), settings


def build_stt(settings: Mapping[str, Any] | None, config: Any = None) -> STT:
    name, s = _provider(settings, "stt")
    if name == "pocketsphinx":
        from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT

        return PocketsphinxSTT(endpointing_ms=_get(s, "endpointing_ms", int, 500, name),
                               interim_results=_get(s, "interim_results", bool, True, name),
                               vad_mode=_get(s, "vad_mode", int, 2, name),
                               isolation=_get(s, "isolation", str, "pool", name),
                               rescore_final=_get(s, "rescore_final", str, None, name),
                               narrowband_fill=_get(s, "narrowband_fill", float, 0.0, name))
    if name == "deepgram":
        from pipeline.providers.deepgram_stt import DeepgramSTT

        keys = ProviderKeys.resolve(config)
        return DeepgramSTT(api_key=_require(keys.deepgram_api_key, "DEEPGRAM_API_KEY", name),
                           base_url=keys.deepgram_base_url, model=_get(s, "model", str, "nova-3", name),
                           language=_get(s, "language", str, "en-US", name),
                           interim_results=_get(s, "interim_results", bool, True, name),
                           endpointing_ms=_get(s, "endpointing_ms", int, 300, name),
                           utterance_end_ms=_get(s, "utterance_end_ms", int, 1000, name),
                           smart_format=_get(s, "smart_format", bool, True, name),
                           connect_timeout_s=_get(s, "connect_timeout_s", float, 5.0, name))
    raise ProviderConfigError(f"unknown STT provider {name!r} (deepgram, pocketsphinx)", provider=name)


def build_llm(settings: Mapping[str, Any] | None, config: Any = None) -> LLM:
    """For "scripted", settings carry the script: greeting, questions, closing (and analysis_schema for types)."""
    name, s = _provider(settings, "llm")
    if name == "scripted":
        from pipeline.providers.scripted import ScriptedAgent

        return ScriptedAgent.from_settings(s)
    if name == "openai":
        from pipeline.providers.openai_llm import OpenAICompatibleLLM

        keys = ProviderKeys.resolve(config)
        model = _get(s, "model", str, "", name) or keys.llm_model
        # Local servers (Ollama, vLLM) need no key, but then a base URL must say where they are.
        if not keys.openai_api_key:
            _require(keys.openai_base_url, "OPENAI_API_KEY (or OPENAI_BASE_URL of a keyless server)", name)
        return OpenAICompatibleLLM(api_key=keys.openai_api_key, base_url=keys.openai_base_url,
                                   model=_require(model, "LLM_MODEL", name),
                                   temperature=_get(s, "temperature", float, 0.3, name),
                                   max_tokens=_get(s, "max_tokens", int, 300, name),
                                   timeout_s=_get(s, "timeout_s", float, 10.0, name))
    raise ProviderConfigError(f"unknown LLM provider {name!r} (openai, scripted)", provider=name)


def build_tts(settings: Mapping[str, Any] | None, config: Any = None) -> TTS:
    name, s = _provider(settings, "tts")
    if name == "espeak":
        from pipeline.providers.espeak_tts import EspeakTTS

        return EspeakTTS(voice=_get(s, "voice", str, "en-us", name) or "en-us",
                         words_per_minute=_get(s, "words_per_minute", int, 165, name))
    if name == "elevenlabs":
        from pipeline.providers.elevenlabs_tts import ElevenLabsTTS

        keys = ProviderKeys.resolve(config)
        return ElevenLabsTTS(api_key=_require(keys.elevenlabs_api_key, "ELEVENLABS_API_KEY", name),
                             base_url=keys.elevenlabs_base_url,
                             voice_id=_get(s, "voice_id", str, "", name) or _get(s, "voice", str, "", name),
                             model_id=_get(s, "model_id", str, "eleven_flash_v2_5", name),
                             output_format=_get(s, "output_format", str, "pcm", name),
                             timeout_s=_get(s, "timeout_s", float, 10.0, name))
    raise ProviderConfigError(f"unknown TTS provider {name!r} (elevenlabs, espeak)", provider=name)


def agent_llm_settings(agent: Any) -> dict[str, Any]:
    """The settings build_llm needs for an Agent row: its llm dict plus the script from greeting/settings."""
    extra = dict(getattr(agent, "settings", None) or {})
    merged: dict[str, Any] = {"greeting": getattr(agent, "greeting", "") or "",
                              "analysis_schema": getattr(agent, "analysis_schema", None)}
    for key in ("questions", "closing", "max_retries"):
        if key in extra:
            merged[key] = extra[key]
    merged.update(dict(getattr(agent, "llm", None) or {}))
    return merged


BUILDERS: dict[str, Callable[..., Any]] = {"stt": build_stt, "llm": build_llm, "tts": build_tts}


def agent_provider_settings(agent: Any) -> dict[str, dict[str, Any]]:
    """The settings each of build_stt / build_llm / build_tts gets for an Agent row (one place, for the
    call path, the API's check at save and the check at start alike)."""
    stt = dict(getattr(agent, "stt", None) or {})
    stt.setdefault("language", getattr(agent, "language", None) or "en-US")
    tts = dict(getattr(agent, "tts", None) or {})
    if getattr(agent, "voice", None):
        tts.setdefault("voice", agent.voice)
    return {"stt": stt, "llm": agent_llm_settings(agent), "tts": tts}


def unavailable_providers(agent: Any, config: Any = None) -> dict[str, str]:
    """{kind: why} for each provider of the agent that cannot be built on this deployment (missing key,
    unknown name, missing SDK). Builds each one as a call would, without touching the network."""
    from pipeline.providers.voices import voice_problem

    problems: dict[str, str] = {}
    for kind, settings in agent_provider_settings(agent).items():
        try:
            BUILDERS[kind](settings, config)
        except (ProviderConfigError, ImportError) as exc:
            name = str(settings.get("provider") or OFFLINE[kind])
            problems[kind] = f"{kind}.provider {name}: {exc}"
    voice = voice_problem(getattr(agent, "voice", None), getattr(agent, "tts", None))
    if voice is not None and "tts" not in problems:  # a voice this machine's TTS cannot speak (issue 12, #8)
        problems["tts"] = voice[1]
    return problems

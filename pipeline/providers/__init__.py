"""Speech and language providers behind one small interface per kind, each with an offline default.

STT: DeepgramSTT (cloud) | PocketsphinxSTT (offline). LLM: OpenAICompatibleLLM | ScriptedAgent (offline).
TTS: ElevenLabsTTS | EspeakTTS (offline). Build them by name with build_stt / build_llm / build_tts.
Cloud implementations are imported lazily by the registry so the offline path needs no cloud SDK at import.
"""
from pipeline.providers.analysis import AnalysisResult, analyze_call, validate
from pipeline.providers.errors import ProviderConfigError, ProviderError, ProviderTimeout
from pipeline.providers.fallback import FallbackTTS, ResilientLLM
from pipeline.providers.llm import DEFAULT_TOOLS, END_CALL, LLM, TRANSFER_CALL, LLMEvent, TextDelta, ToolCall, Turn
from pipeline.providers.registry import ProviderKeys, agent_llm_settings, build_llm, build_stt, build_tts
from pipeline.providers.sentences import SentenceSplitter, iter_sentences
from pipeline.providers.stt import STT, STTEvent, STTFailed, STTStream, Transcript, UtteranceEnd
from pipeline.providers.tts import TTS

__all__ = [
    "DEFAULT_TOOLS", "END_CALL", "LLM", "FallbackTTS", "ResilientLLM", "STT", "TRANSFER_CALL", "TTS",
    "AnalysisResult", "LLMEvent",
    "ProviderConfigError", "ProviderError", "ProviderKeys", "ProviderTimeout", "STTEvent", "STTFailed", "STTStream",
    "SentenceSplitter", "TextDelta", "ToolCall", "Transcript", "Turn", "UtteranceEnd", "agent_llm_settings",
    "analyze_call", "build_llm", "build_stt", "build_tts", "iter_sentences", "validate",
]

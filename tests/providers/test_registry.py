import logging
from types import SimpleNamespace

import pytest

from pipeline.providers import (
    ProviderConfigError,
    ProviderKeys,
    TextDelta,
    agent_llm_settings,
    build_llm,
    build_stt,
    build_tts,
)
from pipeline.providers.deepgram_stt import DeepgramSTT
from pipeline.providers.elevenlabs_tts import ElevenLabsTTS
from pipeline.providers.espeak_tts import EspeakTTS
from pipeline.providers.openai_llm import OpenAICompatibleLLM
from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT
from pipeline.providers.scripted import ScriptedAgent


def test_offline_defaults_need_no_settings_and_no_keys(monkeypatch):
    for name in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(build_stt(None), PocketsphinxSTT)
    assert isinstance(build_llm({}), ScriptedAgent)
    assert isinstance(build_tts({"provider": "espeak", "voice": "en-gb"}), EspeakTTS)


def test_cloud_providers_take_keys_and_urls_from_config_then_env(monkeypatch, fake_openai):
    monkeypatch.setenv("DEEPGRAM_API_KEY", "env-dg")
    monkeypatch.setenv("DEEPGRAM_BASE_URL", "ws://127.0.0.1:1")
    config = SimpleNamespace(openai_api_key="sk-test", openai_base_url=fake_openai.base_url, llm_model="fake-gpt",
                             elevenlabs_api_key="xi", elevenlabs_base_url="http://127.0.0.1:2")
    stt = build_stt({"provider": "deepgram", "model": "nova-2", "endpointing_ms": "400"}, config)
    assert isinstance(stt, DeepgramSTT) and stt.ws_url == "ws://127.0.0.1:1"
    assert stt.options["model"] == "nova-2" and stt.options["endpointing"] == 400
    llm = build_llm({"provider": "openai"}, config)
    assert isinstance(llm, OpenAICompatibleLLM) and llm.model == "fake-gpt"
    assert [e.text for e in llm.stream("", None, [{"speaker": "caller", "text": "ping"}])
            if isinstance(e, TextDelta)] == ["You", " said:", " ping."]
    tts = build_tts({"provider": "ElevenLabs", "voice_id": "v1", "output_format": "ulaw_8000"}, config)
    assert isinstance(tts, ElevenLabsTTS) and tts.base_url == "http://127.0.0.1:2" and tts.voice_id == "v1"


def test_missing_keys_unknown_names_and_bad_values_are_config_errors():
    empty = ProviderKeys()
    with pytest.raises(ProviderConfigError, match="DEEPGRAM_API_KEY"):
        build_stt({"provider": "deepgram"}, empty)
    with pytest.raises(ProviderConfigError, match="OPENAI_API_KEY"):
        build_llm({"provider": "openai", "model": "m"}, empty)
    with pytest.raises(ProviderConfigError, match="LLM_MODEL"):
        build_llm({"provider": "openai"}, ProviderKeys(openai_api_key="k"))
    with pytest.raises(ProviderConfigError, match="ELEVENLABS_API_KEY"):
        build_tts({"provider": "elevenlabs", "voice_id": "v"}, empty)
    with pytest.raises(ProviderConfigError, match="unknown STT provider"):
        build_stt({"provider": "whisper"})
    with pytest.raises(ProviderConfigError, match="endpointing_ms"):
        build_stt({"provider": "pocketsphinx", "endpointing_ms": "soon"})


def test_keyless_local_llm_server_is_allowed_with_a_base_url(fake_openai):
    llm = build_llm({"provider": "openai", "model": "llama"}, {"openai_base_url": fake_openai.base_url})
    assert isinstance(llm, OpenAICompatibleLLM)


def test_agent_settings_cannot_override_endpoints_and_keys_never_show(caplog):
    keys = ProviderKeys.resolve({"openai_api_key": "sk-secret", "openai_base_url": "http://127.0.0.1:9/v1"},
                                env={"ELEVENLABS_API_KEY": "xi-secret"})
    assert keys.elevenlabs_api_key == "xi-secret"
    assert "secret" not in repr(keys) and "127.0.0.1:9" in repr(keys)
    llm = build_llm({"provider": "openai", "model": "m", "base_url": "http://169.254.169.254/"}, keys)
    assert llm.base_url == "http://127.0.0.1:9/v1"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("built %r %r", llm, keys)
    assert "secret" not in caplog.text


def test_agent_llm_settings_merges_the_script_for_the_scripted_agent():
    agent = SimpleNamespace(greeting="Hi!", llm={"provider": "scripted"},
                            settings={"questions": [{"key": "ok", "text": "All good?"}], "closing": "Bye.",
                                      "barge_in": True},
                            analysis_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}})
    scripted = build_llm(agent_llm_settings(agent))
    assert scripted.greeting == "Hi!" and scripted.closing == "Bye."
    assert scripted.answers([{"speaker": "caller", "text": "yep"}]) == {"ok": True}

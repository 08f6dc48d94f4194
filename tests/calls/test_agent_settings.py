"""An agent's settings: the keys something reads are checked by name and type, and the pipeline's
SessionConfig is built from them, clamped to ranges that work on a phone line."""
import pytest

from calls.agent_settings import check_agent_settings, session_config
from models import Agent, Call, utcnow

SCHEMA = {"type": "object", "properties": {"confirmed": {"type": "boolean"}}, "required": ["confirmed"]}
QUESTION = "Can you confirm your appointment?"


@pytest.fixture
def agent(org):
    return Agent.create(organization=org, name="Reminder", direction="outbound", greeting="Hello.",
                        settings={"questions": [{"key": "confirmed", "text": QUESTION}], "silence_reprompt_s": 30},
                        analysis_schema=SCHEMA)


def live_call(org, agent, **fields):
    values = {"organization": org, "agent": agent, "direction": "outbound", "to_number": "+14155550100",
              "status": "in-progress", "answered_at": utcnow(), "context": {"name": "Ada"}}
    return Call.create(**{**values, **fields})


def test_session_config_from_agent_settings(db, org, agent):
    call = live_call(org, agent)
    agent.settings = {"barge_in": False, "silence_reprompt_s": 0.1, "max_duration_s": 10_000, "max_reprompts": "x",
                      "end_silence_ms": 700}
    config = session_config(agent, call, 8000, max_call_s=3600)
    assert config.barge_in is False and config.reprompt_after == 2 and config.max_duration == 3600
    assert config.max_reprompts == 2 and config.end_silence_ms == 700 and config.tts_sample_rate == 8000
    assert config.greeting is None and config.context == {"name": "Ada"}  # scripted: the script opens
    agent.llm = {"provider": "openai"}
    agent.settings = {}
    config = session_config(agent, call, 16000, max_call_s=3600, provider_timeout_s=3)
    assert config.greeting == "Hello." and config.barge_in is True and config.max_duration == 600
    assert config.provider_timeout == 3  # the deployment's PROVIDER_TIMEOUT
    agent.settings = {"provider_timeout_s": 2.5}
    assert session_config(agent, call, 16000, max_call_s=3600, provider_timeout_s=3).provider_timeout == 2.5
    agent.settings = {"provider_timeout_s": 500}
    assert session_config(agent, call, 16000, max_call_s=3600).provider_timeout == 30


@pytest.mark.parametrize("direction, setting, expected", [
    ("outbound", None, "auto"), ("inbound", None, "immediate"), ("outbound", "immediate", "immediate"),
    ("inbound", "after_caller", "after_caller"), ("inbound", "auto", "immediate")])
def test_greeting_start_waits_for_the_callee_on_outbound_calls_by_default(db, org, agent, direction, setting,
                                                                          expected):
    call = live_call(org, agent)
    call.direction = direction
    agent.settings = {} if setting is None else {"greeting_start": setting}
    assert check_agent_settings(agent.settings) == []
    assert session_config(agent, call, 8000, max_call_s=3600).greeting_start == expected
    assert check_agent_settings({"greeting_start": "later"}) == [
        "setting 'greeting_start' must be one of auto, immediate, after_caller"]


def test_unknown_or_mistyped_agent_settings_are_reported_by_name():
    assert check_agent_settings({"silence_reprompt_s": 8, "barge_in": False, "questions": []}) == []
    problems = check_agent_settings({"reprompt_after_s": 8, "barge_in": "no", "max_reprompts": True})
    assert problems[0].startswith("unknown setting 'reprompt_after_s' (known: audio_return, barge_in,")
    assert problems[1:] == ["setting 'barge_in' must be bool", "setting 'max_reprompts' must be int"]
    assert check_agent_settings(["x"]) == ["settings must be an object"]


def test_turn_taking_settings_are_per_agent_with_defaults_and_clamped(db, org, agent):
    from calls.media import check_agent_settings

    call = live_call(org, agent)
    agent.settings = {}
    config = session_config(agent, call, 16000, max_call_s=3600)
    assert (config.smart_turn, config.end_silence_short_ms, config.end_silence_long_ms, config.early_llm) == (
        True, 300, 1200, True)
    agent.settings = {"smart_turn": False, "end_silence_short_ms": 50, "end_silence_long_ms": 9000,
                      "early_llm": False}
    assert check_agent_settings(agent.settings) == []
    config = session_config(agent, call, 16000, max_call_s=3600)
    assert (config.smart_turn, config.end_silence_short_ms, config.end_silence_long_ms, config.early_llm) == (
        False, 150, 5000, False)
    assert check_agent_settings({"early_llm": "yes"}) == ["setting 'early_llm' must be bool"]

import pytest

from pipeline.providers.errors import ProviderConfigError
from pipeline.providers.llm import TextDelta, ToolCall, Turn
from pipeline.providers.scripted import ScriptedAgent, interpret_yes_no

SETTINGS = {
    "greeting": "Hi, this is Acme Dental.",
    "questions": [
        {"key": "confirmed", "text": "Can you confirm your appointment tomorrow at ten?"},
        {"key": "callback_time", "text": "When is a good time to call you back?"},
    ],
    "closing": "Thanks, have a nice day.",
    "analysis_schema": {"type": "object", "properties": {"confirmed": {"type": "boolean"},
                                                          "callback_time": {"type": "string"}}},
}


def say(agent, turns):
    events = list(agent.stream("", {}, turns))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    tools = [e for e in events if isinstance(e, ToolCall)]
    turns.append(Turn("agent", text))
    return text, tools


def test_full_dialogue_greets_asks_in_order_closes_and_ends_the_call():
    agent = ScriptedAgent.from_settings(SETTINGS)
    turns: list = []
    assert say(agent, turns) == ("Hi, this is Acme Dental. Can you confirm your appointment tomorrow at ten?", [])
    turns.append(Turn("caller", "yeah that works"))
    assert say(agent, turns) == ("Thank you. When is a good time to call you back?", [])
    turns.append(Turn("caller", "after five pm"))
    text, tools = say(agent, turns)
    assert text == "Thank you. Thanks, have a nice day."
    assert tools == [ToolCall("end_call", {"reason": "script complete"}, "scripted-end")]
    assert agent.answers(turns) == {"confirmed": True, "callback_time": "after five pm"}


def test_unclear_yes_no_is_asked_again_once_then_skipped():
    agent = ScriptedAgent.from_settings(SETTINGS)
    turns: list = [Turn("agent", "greeting"), Turn("caller", "banana")]
    assert say(agent, turns)[0] == "Sorry, I didn't catch that. Can you confirm your appointment tomorrow at ten?"
    turns.append(Turn("caller", "purple"))
    assert say(agent, turns)[0] == "When is a good time to call you back?"
    assert agent.answers(turns) == {}


def test_state_comes_from_the_turns_so_one_instance_serves_many_calls_and_accepts_dicts():
    agent = ScriptedAgent.from_settings(SETTINGS)
    call_a = [{"speaker": "agent", "text": "hi"}, {"role": "user", "content": "nope"}]
    call_b: list = []
    assert say(agent, call_b)[0].startswith("Hi, this is Acme Dental.")
    assert say(agent, call_a)[0] == "Thank you. When is a good time to call you back?"
    assert agent.answers(call_a) == {"confirmed": False}
    # Empty caller turns (silence, noise) do not consume a question.
    assert agent.answers(call_a + [{"speaker": "caller", "text": "  "}]) == {"confirmed": False}


def test_pipeline_spoke_the_greeting_itself_so_the_agent_only_asks():
    agent = ScriptedAgent.from_settings(SETTINGS)
    assert say(agent, [Turn("agent", "Hi, this is Acme Dental.")])[0] == \
        "Can you confirm your appointment tomorrow at ten?"


def test_end_call_is_not_emitted_when_the_tool_is_not_offered():
    agent = ScriptedAgent.from_settings({"greeting": "Hello.", "questions": []})
    turns = [Turn("agent", "Hello."), Turn("caller", "hi")]
    events = list(agent.stream("", {}, turns, tools=[]))
    assert not [e for e in events if isinstance(e, ToolCall)]
    assert "".join(e.text for e in events) == "Thank you for your time. Goodbye."


@pytest.mark.parametrize(("text", "expected"), [
    ("yes", True), ("Yeah sure", True), ("no problem", True), ("of course", True), ("that's right!", True),
    ("1", True), ("no", False), ("nope", False), ("not really", False), ("I don't think so", False), ("2", False),
    ("maybe later", None), ("", None),
])
def test_loose_yes_no(text, expected):
    assert interpret_yes_no(text) is expected


def test_number_questions_and_bad_config():
    agent = ScriptedAgent.from_settings({"questions": [{"key": "people", "text": "How many?", "type": "integer"}]})
    assert agent.answers([Turn("caller", "we are three")]) == {"people": 3}
    assert agent.answers([Turn("caller", "12 of us")]) == {"people": 12}
    with pytest.raises(ProviderConfigError):
        ScriptedAgent.from_settings({"questions": [{"key": "x", "text": ""}]})
    with pytest.raises(ProviderConfigError):
        ScriptedAgent.from_settings({"questions": [{"key": "x", "text": "?", "type": "date"}]})

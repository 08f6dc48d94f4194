from pipeline.providers.analysis import analyze_call, transcript_text, validate
from pipeline.providers.errors import ProviderError
from pipeline.providers.llm import LLM, Turn
from pipeline.providers.scripted import ScriptedAgent

SCHEMA = {
    "type": "object",
    "properties": {
        "confirmed": {"type": "boolean"},
        "callback_time": {"type": "string", "maxLength": 20},
        "mood": {"enum": ["happy", "neutral", "angry"]},
        "people": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["confirmed"],
    "additionalProperties": False,
}


def test_validator_accepts_a_good_document():
    assert validate(SCHEMA, {"confirmed": True, "mood": "happy", "people": 2, "tags": ["a"]}) == []


def test_validator_reports_each_problem_with_its_path():
    errors = validate(SCHEMA, {"callback_time": "x" * 30, "mood": "sad", "people": 0, "tags": ["a", 3],
                               "extra": 1})
    assert errors == [
        "$: missing required property 'confirmed'",
        "$.callback_time: longer than 20 characters",
        "$.mood: 'sad' is not one of ['happy', 'neutral', 'angry']",
        "$.people: 0 is below the minimum 1",
        "$.tags[1]: expected string, got integer",
        "$: unexpected property 'extra'",
    ]


def test_validator_types_bool_is_not_a_number_and_unions():
    assert validate({"type": "integer"}, True) == ["$: expected integer, got boolean"]
    assert validate({"type": ["string", "null"]}, None) == []
    assert validate({"type": "object"}, []) == ["$: expected object, got array"]
    assert validate({"type": "datetime"}, "x") == ["$: schema uses unknown type 'datetime'"]


class FakeLLM(LLM):
    def __init__(self, reply=None, error=None):
        self.reply, self.error, self.prompts = reply, error, []

    def stream(self, system_prompt, context, turns, tools=()):
        return iter(())

    def complete_json(self, system_prompt, user_text):
        self.prompts.append((system_prompt, user_text))
        if self.error:
            raise self.error
        return self.reply


TURNS = [Turn("agent", "Can you confirm?"), Turn("caller", "yes"), Turn("agent", "When to call back?"),
         Turn("caller", "at noon")]


def test_llm_analysis_gets_the_schema_and_transcript_and_nulls_count_as_absent():
    llm = FakeLLM(reply={"confirmed": True, "callback_time": None})
    result = analyze_call(SCHEMA, TURNS, llm)
    assert (result.data, result.source, result.ok) == ({"confirmed": True}, "llm", True)
    system, user = llm.prompts[0]
    assert '"callback_time"' in system
    assert user == transcript_text(TURNS) == "Agent: Can you confirm?\nCaller: yes\nAgent: When to call back?\n" \
                                             "Caller: at noon"


def test_llm_analysis_reports_schema_violations_and_provider_errors_without_raising():
    bad = analyze_call(SCHEMA, TURNS, FakeLLM(reply={"confirmed": "yes"}))
    assert bad.errors == ["$.confirmed: expected boolean, got string"] and not bad.ok
    failed = analyze_call(SCHEMA, TURNS, FakeLLM(error=ProviderError("boom", provider="openai", status=500)))
    assert failed.data == {} and failed.errors == ["provider error: openai: boom (HTTP 500)"]


def test_offline_analysis_uses_the_scripted_answers():
    agent = ScriptedAgent.from_settings({"questions": [{"key": "confirmed", "text": "Confirm?"},
                                                       {"key": "callback_time", "text": "When?"}],
                                         "analysis_schema": SCHEMA})
    result = analyze_call(SCHEMA, TURNS, agent)
    assert (result.data, result.source, result.errors) == ({"confirmed": True, "callback_time": "at noon"},
                                                           "scripted", [])
    missing = analyze_call(SCHEMA, TURNS[:1], agent)
    assert missing.errors == ["$: missing required property 'confirmed'"]
    assert analyze_call(None, TURNS, agent).data == {}

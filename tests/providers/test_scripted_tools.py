"""The scripted agent's tool steps and keypad questions: offline, deterministic, derived from the turns."""
from pipeline.providers.llm import DEFAULT_TOOLS, TextDelta, ToolCall, Turn
from pipeline.providers.scripted import ScriptedAgent
from pipeline.tools.definitions import HttpTool
from pipeline.tools.digits import FAILED_TOOL_TEXT, CollectDigits
from pipeline.tools.turns import ToolTurn

TOOLS = (*DEFAULT_TOOLS, HttpTool("check_slot", "Find a slot.", "https://example.com").schema())
SETTINGS = {
    "greeting": "Hi, this is Acme Dental.",
    "questions": [
        {"key": "account", "text": "Please enter your account number, then pound.", "input": "dtmf",
         "max_digits": 6, "terminator": "#", "timeout_s": 4},
        {"key": "slot", "tool": "check_slot", "arguments": {"kind": "cleaning"},
         "say": "The next free slot is {slot}."},
        {"key": "confirmed", "text": "Shall I book it?", "type": "boolean"},
    ],
    "closing": "Goodbye.",
}


def run(agent, turns, tools=TOOLS):
    events = list(agent.stream("", {}, turns, tools))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, [e for e in events if not isinstance(e, TextDelta)]


def test_a_keypad_question_then_a_tool_step_whose_result_is_spoken():
    agent = ScriptedAgent.from_settings(SETTINGS)
    turns = []
    text, extra = run(agent, turns)
    assert text == "Hi, this is Acme Dental. Please enter your account number, then pound."
    assert extra == [CollectDigits(max_digits=6, terminator="#", timeout_s=4.0)]
    turns += [Turn("agent", text), Turn("caller", "123456")]
    text, extra = run(agent, turns)
    assert text == "Thank you."
    assert extra == [ToolCall("check_slot", {"kind": "cleaning"}, "scripted-slot")]
    turns.append(ToolTurn("check_slot", {"kind": "cleaning"}, '{"slot":"Tuesday at 3 pm"}', id="scripted-slot"))
    text, extra = run(agent, turns)
    assert (text, extra) == ("The next free slot is Tuesday at 3 pm. Shall I book it?", [])
    turns += [Turn("agent", "Thank you."), Turn("agent", text), Turn("caller", "yes please")]
    text, extra = run(agent, turns)
    assert text == "Thank you. Goodbye." and extra[0].name == "end_call"
    assert agent.answers(turns) == {"account": "123456", "confirmed": True}


def test_a_failed_tool_is_apologised_for_and_the_script_goes_on():
    agent = ScriptedAgent.from_settings({"questions": SETTINGS["questions"][1:]})
    turns = [Turn("agent", "Hello."), ToolTurn("check_slot", {}, '{"ok": false, "error": "timeout"}')]
    text, _ = run(agent, turns)
    assert text == f"{FAILED_TOOL_TEXT} Shall I book it?"


def test_a_tool_step_the_agent_does_not_declare_is_skipped_silently():
    agent = ScriptedAgent.from_settings({"questions": SETTINGS["questions"][1:]})
    text, extra = run(agent, [], DEFAULT_TOOLS)
    assert extra == []


def test_answers_read_from_a_stored_transcript_with_tool_lines():
    agent = ScriptedAgent.from_settings(SETTINGS)
    transcript = [{"speaker": "agent", "text": "Hi"}, {"speaker": "caller", "text": "42", "source": "dtmf"},
                  {"speaker": "tool", "text": "check_slot(...)", "tool": {"name": "check_slot",
                                                                       "result": '{"slot":"x"}'}},
                  {"speaker": "agent", "text": "The next free slot is x. Shall I book it?"},
                  {"speaker": "caller", "text": "no thanks"}]
    assert agent.answers(transcript) == {"account": "42", "confirmed": False}


def test_a_tool_line_recorded_before_the_turn_that_spoke_its_answer_still_counts():
    # The session records the tool line when the result comes, the agent's turn once it has played.
    agent = ScriptedAgent.from_settings({"questions": SETTINGS["questions"][1:], "closing": "Bye."})
    turns = [ToolTurn("check_slot", {}, '{"slot":"x"}'), Turn("agent", "The next free slot is x. Shall I book it?"),
             Turn("caller", "yes")]
    assert run(agent, turns)[0] == "Thank you. Bye."
    assert agent.answers(turns) == {"confirmed": True}

"""Customer tools and the keypad in a Session, on a virtual clock: what the caller hears, what is recorded."""
import json

from pipeline.clock import VirtualClock
from pipeline.fakes import CallScript, EnergyVAD, FakeLLM, FakeSTT, FakeTTS, Timeline, say
from pipeline.frames import Interrupt
from pipeline.interfaces import ToolCall
from pipeline.providers.llm import DEFAULT_TOOLS, to_chat_messages
from pipeline.session import Session, SessionCallbacks, SessionConfig
from pipeline.tools.definitions import SEND_DTMF, HttpTool
from pipeline.tools.http import ToolResult, failure
from pipeline.tools.turns import ToolTurn

SLOT_TOOL = HttpTool("check_slot", "Find the next free slot.", "https://example.com/slot")
TOOLS = (*DEFAULT_TOOLS, SEND_DTMF, SLOT_TOOL.schema())


class Harness:
    def __init__(self, replies, script=None, tool_delay=0.0, tool_result=None, keys_ok=True, keys_delay=0.0,
                 **overrides):
        self.clock = VirtualClock()
        self.stt = FakeSTT(self.clock, latency=0.05)
        self.llm = FakeLLM(self.clock, replies, latency=0.1)
        self.tts = FakeTTS(self.clock, latency=0.05)
        self.turns, self.tool_calls, self.keys, self.ended = [], [], [], []

        def run_tool(name, arguments):
            self.tool_calls.append((name, arguments, self.clock.now()))
            self.clock.sleep(tool_delay)
            return tool_result or ToolResult("ok", json.dumps({"slot": "3 pm"}), 200, int(tool_delay * 1000))

        def send_dtmf(digits):
            self.keys.append(digits)  # the command is on its way; the switch's reply takes keys_delay
            self.clock.sleep(keys_delay)
            return keys_ok

        callbacks = SessionCallbacks(on_turn=self.turns.append, run_tool=run_tool, send_dtmf=send_dtmf,
                                     end_call=self.ended.append)
        options = dict(greeting="Hello.", reprompt_after=30.0, tools=TOOLS)
        options.update(overrides)
        self.timeline = Timeline(self.clock, script or CallScript(), self.stt)
        self.session = Session(SessionConfig(**options), self.stt, self.llm, self.tts, self.timeline.sink,
                               callbacks, clock=self.clock, vad=EnergyVAD())
        self.timeline.session = self.session
        self.session.start()

    def said(self):
        return [(t.speaker, t.text) for t in self.turns if t.speaker != "tool"]

    def tool_lines(self):
        return [t for t in self.turns if t.speaker == "tool"]


def test_a_customer_tool_result_goes_back_to_the_model_which_speaks_it():
    script = CallScript().say(2.0, "when can I come", duration=1.0)
    h = Harness([say("", ToolCall("check_slot", {"day": "monday"}, id="call_1")),
                 say("The next free slot is 3 pm.")], script)
    h.timeline.run(8.0)
    assert [(n, a) for n, a, _ in h.tool_calls] == [("check_slot", {"day": "monday"})]
    assert h.said() == [("agent", "Hello."), ("caller", "when can I come"), ("agent", "The next free slot is 3 pm.")]
    line, = h.tool_lines()
    assert line.source == "tool" and line.data["name"] == "check_slot" and line.data["status"] == "ok"
    assert json.loads(line.data["result"]) == {"slot": "3 pm"}
    # The second request carries the call and its result as OpenAI tool messages.
    messages = to_chat_messages("", None, h.llm.calls[1])
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "check_slot"
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": '{"slot": "3 pm"}'}
    assert "One moment while I check that." not in h.tts.spoken  # fast enough: no filler


def test_a_slow_tool_gets_a_filler_line_and_a_failed_one_an_apology_from_the_model():
    script = CallScript().say(2.0, "when can I come", duration=1.0)
    h = Harness([say("", ToolCall("check_slot", {}, id="c")), say("Sorry, I could not check the calendar.")],
                script, tool_delay=3.0, tool_result=failure("timeout", "the check_slot service did not answer"))
    h.timeline.run(12.0)
    # One agent turn: the filler, then (same reply) the model's answer to the failed result.
    assert h.said()[2:] == [("agent", "One moment while I check that. Sorry, I could not check the calendar.")]
    assert h.tool_lines()[0].data["status"] == "timeout"
    assert '"ok": false' in to_chat_messages("", None, h.llm.calls[1])[-1]["content"]
    assert not h.session.ended and h.ended == []  # the call goes on


def test_barge_in_during_a_tool_call_still_records_its_result():
    script = CallScript().say(2.0, "when can I come", duration=1.0).say(5.0, "actually never mind", duration=1.0)
    h = Harness([say("", ToolCall("check_slot", {}, id="c")), say("Okay.")], script,
                tool_delay=4.0, tool_filler_after=1.0)
    h.timeline.run(14.0)
    assert len(h.tool_lines()) == 1 and h.tool_lines()[0].data["status"] == "ok"
    # The filler was cut before a whole word of it played (so it is not in the transcript).
    assert any(isinstance(s.frame, Interrupt) for s in h.timeline.sent)
    assert h.said()[2:] == [("caller", "actually never mind"), ("agent", "Okay.")]
    # The cut reply did not go back to the model once the tool returned: one request for the caller's words.
    assert len(h.llm.calls) == 2


def test_send_dtmf_sends_only_valid_keys_and_records_both():
    script = CallScript().say(2.0, "press one for sales", duration=1.0).say(6.0, "sales here", duration=1.0)
    h = Harness([say("", ToolCall("send_dtmf", {"digits": "1"}, id="k1")),
                 say("", ToolCall("send_dtmf", {"digits": "1; uuid_kill x"}, id="k2"))], script)
    h.timeline.run(10.0)
    assert h.keys == ["1"]  # the second is refused before any callback
    assert [t.data["status"] for t in h.tool_lines()] == ["ok", "refused"]
    assert len(h.llm.calls) == 2  # keys pressed: the far end answers, the model is not asked again at once


def test_keys_answered_before_the_switch_replies_are_still_recorded():
    # A phone menu answers a key at once: its speech can barge in while uuid_send_dtmf's reply is on its way
    # (a loaded switch or app), killing the reply that pressed it. The keys went; the line and history say so.
    script = CallScript().say(2.0, "press one for sales", duration=1.0).say(3.75, "sales here", duration=1.0)
    h = Harness([say("", ToolCall("send_dtmf", {"digits": "1"}, id="k1")), say("Hi, about order 42.")], script,
                keys_delay=1.0)
    h.timeline.run(10.0)
    assert h.keys == ["1"]
    assert [(t.data["name"], t.data["status"]) for t in h.tool_lines()] == [("send_dtmf", "ok")]
    assert h.said()[-1] == ("agent", "Hi, about order 42.")
    assert any(getattr(turn, "name", None) == "send_dtmf" for turn in h.llm.calls[-1])  # the model knows


def test_undeclared_tools_are_ignored():
    script = CallScript().say(2.0, "hi", duration=1.0)
    h = Harness([say("Hi.", ToolCall("check_slot", {}))], script, tools=DEFAULT_TOOLS)
    h.timeline.run(6.0)
    assert h.tool_calls == [] and h.tool_lines() == []


def test_a_transcript_tool_line_is_no_chat_message_but_a_tool_turn_is_two():
    turn = ToolTurn("check_slot", {"a": 1}, '{"slot":"x"}', id="id1")
    messages = to_chat_messages("", None, [{"speaker": "tool", "text": "x"}, turn])
    assert [m["role"] for m in messages] == ["system", "assistant", "tool"]



def test_a_keypad_question_groups_keys_by_its_terminator_and_length():
    from pipeline.tools.digits import CollectDigits

    script = CallScript().press(2.0, "12*").press(5.0, "98765")
    h = Harness([[CollectDigits(max_digits=9, terminator="*", timeout_s=3.0)] + say("Your code?"),
                 [CollectDigits(max_digits=3, terminator="", timeout_s=3.0)] + say("Your PIN?"),
                 say("Thanks.")], script, greeting=None)
    h.timeline.run(12.0)
    keys = [(t.text, t.source) for t in h.turns if t.speaker == "caller"]
    # "*" ends the first answer; three keys end the second, and the rest are an ordinary keypad input.
    assert keys[:2] == [("12", "dtmf"), ("987", "dtmf")]
    assert keys[2:] == [("65", "dtmf")]


def test_a_hang_up_during_a_tool_call_stops_the_agent_and_still_records_the_result():
    script = CallScript().say(2.0, "when can I come", duration=1.0)
    h = Harness([say("", ToolCall("check_slot", {}, id="c")), say("unused")], script, tool_delay=3.0)
    h.timeline.run(4.5)  # the tool is running (it started near 3.7 s)
    assert h.tool_calls and h.tool_lines() == []
    h.session.stop("call hung up")
    h.clock.advance(5.0)
    assert [t.data["status"] for t in h.tool_lines()] == ["ok"]  # recorded once it came back
    assert len(h.llm.calls) == 1  # nobody is asked to speak on a call that has ended

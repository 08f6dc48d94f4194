"""Customer tools and the keypad end to end: the simulator, the real controller and MediaBridge, the
OpenAI-compatible fake driving function calls, and a customer endpoint that checks the signature.

A loud tone is speech and the fixed STT says what was heard, as in test_voice_pipeline_calls.py."""
import json

import pytest

from calls.media_providers import MediaProviders
from models import Agent, Call, CallEvent, utcnow
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeTTS, voice
from pipeline.providers.openai_llm import OpenAICompatibleLLM
from pipeline.providers.scripted import ScriptedAgent
from tests.fakes.customer_tool import CustomerToolServer
from tests.fakes.faults import Fault
from tests.fakes.openai import ChatReply, FakeOpenAI
from tests.fakes.providers import FixedLatencySTT

from .conftest import commands_received, running_controller, wait_for
from .test_voice_pipeline_calls import finished, transcript, webhook

SLOT = "Tuesday at 3 pm"


@pytest.fixture
def voice_controller(db, telephony_config):
    with running_controller(telephony_config) as control:
        yield control


@pytest.fixture
def openai_fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def endpoint(caller_org):
    with CustomerToolServer(caller_org.webhook_secret, {"slot": SLOT}) as server:
        yield server


def tool(endpoint, **overrides):
    return {"name": "check_slot", "description": "Find the next free appointment slot.", "url": endpoint.url + "/slot",
            "parameters": {"type": "object", "properties": {"kind": {"type": "string"}}}, "timeout_s": 3,
            **overrides}


class Providers:
    """Each call: the fixed STT (what the far end is heard to say) and the agent's LLM (the OpenAI fake, or the
    scripted agent from the agent's settings)."""

    def __init__(self, heard=(), openai=None):
        self.heard, self.openai = list(heard), openai

    def __call__(self, agent, info):
        llm = (OpenAICompatibleLLM("sk-test", "fake-gpt", base_url=self.openai.base_url) if self.openai
               else ScriptedAgent.from_settings(agent.settings))
        return MediaProviders(FixedLatencySTT(self.heard), llm, FakeTTS(REAL_CLOCK, latency=0, ms_per_word=60),
                              vad=EnergyVAD())


def start_call(controller, org, **agent_fields):
    from calls.dispatcher import Dispatcher

    settings = {"silence_reprompt_s": 60, "greeting_start": "immediate", **agent_fields.pop("settings", {})}
    agent = Agent.create(organization=org, name="Tools", direction="outbound", settings=settings, **agent_fields)
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call.id).status == "in-progress" and call.id in controller.media.sessions)
    return Call.get_by_id(call.id)


def tool_lines(call_id):
    return [t for t in Call.get_by_id(call_id).transcript if t["speaker"] == "tool"]


def without_tools(call_id):
    return [line for line in transcript(call_id) if line[0] != "tool"]


def test_the_agent_calls_a_customer_tool_and_speaks_its_answer(voice_controller, sim, caller_org, openai_fake,
                                                               endpoint):
    openai_fake.replies = [ChatReply("Hello, how can I help?"),
                           ChatReply(tool_calls=[("check_slot", {"kind": "cleaning"})]),
                           ChatReply(f"The next free slot is {SLOT}.")]
    voice_controller.media.build_providers = Providers(["when can I come in"], openai_fake)
    call = start_call(voice_controller, caller_org, tools=[tool(endpoint)])
    wait_for(lambda: transcript(call.id) == [("agent", "Hello, how can I help?")])
    sim.say(call.channel_uuid, voice(400))
    wait_for(lambda: len(without_tools(call.id)) == 3)
    assert without_tools(call.id)[1:] == [("caller", "when can I come in"),
                                          ("agent", f"The next free slot is {SLOT}.")]
    # The endpoint checked the organization's signature and got the model's arguments for this call.
    assert endpoint.verified == [{"tool": "check_slot", "arguments": {"kind": "cleaning"}, "call_id": call.id,
                                  "agent_id": call.agent_id}]
    line, = tool_lines(call.id)
    assert line["tool"]["status"] == "ok" and json.loads(line["tool"]["result"]) == {"slot": SLOT}
    # The model was offered the tool and got its result back as a tool message.
    first, _, third = (r.json() for r in openai_fake.requests)
    assert "check_slot" in [t["function"]["name"] for t in first["tools"]]
    assert third["messages"][-1]["role"] == "tool" and json.loads(third["messages"][-1]["content"]) == {"slot": SLOT}
    assert CallEvent.get_or_none(CallEvent.call == call.id, CallEvent.reason == "tool check_slot: ok") is not None


def test_a_tool_that_hangs_past_its_timeout_gets_an_apology_and_the_call_goes_on(voice_controller, sim, caller_org,
                                                                                 openai_fake, endpoint):
    endpoint.faults.append(Fault(latency_s=8.0))
    openai_fake.replies = [ChatReply("Hello, how can I help?"),
                           ChatReply(tool_calls=[("check_slot", {})]),
                           ChatReply("Sorry, I can't reach the calendar right now."),
                           ChatReply("Sure, anything else?")]
    voice_controller.media.build_providers = Providers(["when can I come in", "never mind then"], openai_fake)
    call = start_call(voice_controller, caller_org, tools=[tool(endpoint, timeout_s=1)])
    wait_for(lambda: transcript(call.id) == [("agent", "Hello, how can I help?")])
    sim.say(call.channel_uuid, voice(400))
    line = wait_for(lambda: tool_lines(call.id), timeout=15)[0]
    assert line["tool"]["status"] == "timeout"
    spoken = wait_for(lambda: [t for s, t in without_tools(call.id)[2:] if "calendar" in t], timeout=15)
    assert spoken[0].endswith("Sorry, I can't reach the calendar right now.")  # after the filler, if said
    assert '"ok": false' in openai_fake.requests[2].json()["messages"][-1]["content"]
    sim.say(call.channel_uuid, voice(400))  # the call goes on
    wait_for(lambda: ("agent", "Sure, anything else?") in transcript(call.id), timeout=15)
    assert Call.get_by_id(call.id).status == "in-progress"


def test_the_agent_navigates_a_phone_menu_with_send_dtmf(received, voice_controller, sim, caller_org, openai_fake):
    openai_fake.replies = [ChatReply(tool_calls=[("send_dtmf", {"digits": "1"})]),
                           ChatReply("Hi, I'm calling about order 42.")]
    voice_controller.media.build_providers = Providers(["press one for sales", "sales, how can I help"],
                                                       openai_fake)
    call = start_call(voice_controller, caller_org, keypad={"send_dtmf": True},
                      settings={"greeting_start": "after_caller"})
    sim.ivr(call.channel_uuid, {"1": voice(400)})
    sim.say(call.channel_uuid, voice(400))  # the menu's prompt
    wait_for(lambda: ("agent", "Hi, I'm calling about order 42.") in transcript(call.id), timeout=15)
    assert sim.dtmf_sent(call.channel_uuid) == ["1"]
    assert [c for c in commands_received(received) if "uuid_send_dtmf" in c] == \
        [f"api uuid_send_dtmf {call.channel_uuid} 1"]
    # The reply's turn can be stored before the tool's line (seen once under load): wait for the line too.
    assert wait_for(lambda: [(t["tool"]["name"], t["tool"]["status"]) for t in tool_lines(call.id)]) == \
        [("send_dtmf", "ok")]
    assert without_tools(call.id) == [("caller", "press one for sales"), ("caller", "sales, how can I help"),
                                      ("agent", "Hi, I'm calling about order 42.")]


def test_keys_the_model_makes_up_never_reach_the_switch(received, voice_controller, sim, caller_org, openai_fake):
    openai_fake.replies = [ChatReply(tool_calls=[("send_dtmf", {"digits": "1\n\napi uuid_kill all"})]),
                           ChatReply("Hello?")]
    voice_controller.media.build_providers = Providers(["press one for sales"], openai_fake)
    call = start_call(voice_controller, caller_org, keypad={"send_dtmf": True},
                      settings={"greeting_start": "after_caller"})
    sim.say(call.channel_uuid, voice(400))
    line = wait_for(lambda: tool_lines(call.id))[0]
    assert line["tool"]["status"] == "refused"
    assert not any("uuid_send_dtmf" in c for c in commands_received(received))


def test_a_keypad_answer_is_captured_in_call_analyzed(voice_controller, sim, caller_org):
    settings = {"greeting": "Hi, this is Acme.", "closing": "Thanks, goodbye.",
                "questions": [{"key": "account", "text": "Enter your account number, then pound.", "input": "dtmf",
                               "max_digits": 8, "terminator": "#", "timeout_s": 5}]}
    voice_controller.media.build_providers = Providers()
    call = start_call(voice_controller, caller_org, settings=settings, analysis_schema={
        "type": "object", "properties": {"account": {"type": "string"}}})
    wait_for(lambda: transcript(call.id) == [("agent", "Hi, this is Acme. Enter your account number, then pound.")])
    sim.send_dtmf(call.channel_uuid, "4321#")
    assert finished(call.id).status == "completed"  # the script closes and the agent hangs up
    analyzed = webhook(call.id, "call.analyzed")
    assert analyzed["answers"] == {"account": "4321"}
    assert analyzed["transcript"][1] == {**analyzed["transcript"][1], "speaker": "caller", "text": "4321",
                                         "source": "dtmf"}


def test_the_offline_scripted_agent_runs_a_tool_step(voice_controller, sim, caller_org, endpoint):
    settings = {"greeting": "Hi, this is Acme.", "closing": "Goodbye.",
                "questions": [{"key": "slot", "tool": "check_slot", "arguments": {"kind": "cleaning"},
                               "say": "The next free slot is {slot}."},
                              {"key": "book", "text": "Shall I book it?", "type": "boolean"}]}
    voice_controller.media.build_providers = Providers(["yes please"])
    call = start_call(voice_controller, caller_org, settings=settings, tools=[tool(endpoint)])
    # One opening turn: the greeting, the tool step's call, its answer and the next question.
    wait_for(lambda: without_tools(call.id) == [
        ("agent", f"Hi, this is Acme. The next free slot is {SLOT}. Shall I book it?")])
    assert endpoint.verified[0]["arguments"] == {"kind": "cleaning"}
    sim.say(call.channel_uuid, voice(400))
    assert finished(call.id).status == "completed"
    analyzed = webhook(call.id, "call.analyzed")
    assert [t["speaker"] for t in analyzed["transcript"]] == ["tool", "agent", "caller", "agent"]
    assert analyzed["transcript"][-1]["text"] == "Thank you. Goodbye."

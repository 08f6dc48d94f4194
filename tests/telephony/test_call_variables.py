"""Call variables end to end: an outbound call queued through the API with a context is dialled on the simulator,
and the agent's texts reach the call with {{placeholders}} filled - the scripted offline agent's greeting,
question and closing as spoken, and an OpenAI-compatible agent's system prompt as the (fake) server receives it."""
import json

import pytest

from api import create_app
from calls.dispatcher import Dispatcher
from calls.media_providers import MediaProviders
from models import Agent, Call
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeTTS, voice
from pipeline.providers import ResilientLLM, agent_llm_settings, build_llm
from tests.fakes.openai import ChatReply, FakeOpenAI
from tests.fakes.providers import FixedLatencySTT

from .conftest import running_controller, wait_for


class RegistryLLM:
    """The agent's own LLM as the registry builds it (scripted, or OpenAI-compatible against the fake); the
    caller is heard to say `heard` (fake STT: what matters is what the agent is told, not recognition)."""

    def __init__(self, config, heard=()):
        self.config, self.heard, self.agents = config, list(heard), []

    def __call__(self, agent, info):
        self.agents.append(agent)
        llm = ResilientLLM(build_llm(agent_llm_settings(agent), self.config))
        return MediaProviders(FixedLatencySTT(self.heard), llm, FakeTTS(REAL_CLOCK, latency=0, ms_per_word=40),
                              vad=EnergyVAD())


def transcript(call_id):
    return [(t["speaker"], t["text"]) for t in Call.get_by_id(call_id).transcript]


def queue(controller, auth, body):
    client = create_app(controller.config, call_control=controller).test_client()
    response = client.post("/v1/calls/outbound", data=json.dumps(body), headers=auth,
                           content_type="application/json")
    assert response.status_code == 201, response.get_json()
    assert Dispatcher(controller).run_once().claimed == 1
    call_id = response.get_json()["id"]
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress", timeout=20)
    return Call.get_by_id(call_id)


def test_the_scripted_agent_greets_asks_and_closes_with_the_calls_variables(controller, sim, caller_org, auth):
    agent = Agent.create(organization=caller_org, name="Reminder", direction="outbound",
                         greeting="Hi {{name}}, this is {{agent_name}} from {{organization_name}}.",
                         variables={"name": {"default": "there"}, "slot": {"default": None}},
                         settings={"questions": [{"key": "ok", "text": "Is {{slot}} still good for you?",
                                                  "type": "boolean"}],
                                   "closing": "Thanks {{name}}, goodbye.", "silence_reprompt_s": 60})
    controller.media.build_providers = RegistryLLM(controller.config, heard=["yes"])
    call = queue(controller, auth, {"to": "+14155550123", "agent_id": agent.id,
                                    "context": {"name": "Ada", "slot": "Tuesday at ten"}})
    opening = f"Hi Ada, this is Reminder from {caller_org.name}. Is Tuesday at ten still good for you?"
    wait_for(lambda: transcript(call.id)[:1] == [("agent", opening)], timeout=20)
    sim.say(call.channel_uuid, voice(400))  # the caller answers; the fake STT hears "yes"
    wait_for(lambda: ("agent", "Thank you. Thanks Ada, goodbye.") in transcript(call.id), timeout=20)
    assert not any("{{" in text or "}}" in text for _speaker, text in transcript(call.id))
    # The stored agent keeps its placeholders: only the call's copy was rendered.
    assert Agent.get_by_id(agent.id).greeting.startswith("Hi {{name}}")


def test_a_default_fills_a_variable_the_call_does_not_carry(controller, sim, caller_org, auth):
    agent = Agent.create(organization=caller_org, name="Reminder", direction="outbound",
                         greeting="Hi {{name}}.", variables={"name": {"default": "there"}},
                         settings={"questions": ["Do you have a minute?"], "silence_reprompt_s": 60})
    controller.media.build_providers = RegistryLLM(controller.config)
    call = queue(controller, auth, {"to": "+14155550123", "agent_id": agent.id})
    wait_for(lambda: transcript(call.id)[:1] == [("agent", "Hi there. Do you have a minute?")], timeout=20)
    sim.hangup_far_end(call.channel_uuid)


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_controller(db, telephony_env, fake_openai):
    from config import load_config

    config = load_config({**telephony_env, "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test",
                          "LLM_MODEL": "fake-gpt"}, webhook_allow_private=True, rate_limit_per_minute=100_000)
    with running_controller(config) as control:
        yield control


def test_the_cloud_llm_receives_the_rendered_system_prompt(openai_controller, sim, caller_org, auth, fake_openai):
    agent = Agent.create(organization=caller_org, name="Concierge", direction="outbound", timezone="Europe/Berlin",
                         llm={"provider": "openai"}, greeting="Hello {{name}}!",
                         prompt="You are {{agent_name}}. You are calling {{name}} ({{called_number}}) about order "
                                "{{order_id}}. Today is {{current_weekday}}.",
                         variables={"name": {"default": "there"}, "order_id": {}},
                         settings={"silence_reprompt_s": 60})
    fake_openai.replies = [ChatReply(text="Great, thanks.")]
    openai_controller.media.build_providers = RegistryLLM(openai_controller.config, heard=["hello who is this"])
    call = queue(openai_controller, auth, {"to": "+14155550123", "agent_id": agent.id,
                                           "context": {"name": "Ada", "order_id": "A-17\n\x1b ignore previous"}})
    wait_for(lambda: transcript(call.id)[:1] == [("agent", "Hello Ada!")], timeout=20)
    sim.say(call.channel_uuid, voice(400))
    wait_for(lambda: ("agent", "Great, thanks.") in transcript(call.id), timeout=20)
    system = fake_openai.requests[0].json()["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are Concierge. You are calling Ada (+14155550123) about order "
                                        "A-17 ignore previous. Today is ")
    assert "{{" not in system["content"] and "\x1b" not in system["content"].split("Call context")[0]
    sim.hangup_far_end(call.channel_uuid)

"""Inbound context end to end: an INVITE's allowed X- headers (on the simulator's channel as sofia sets them) and
the organization's inbound webhook (a local receiver that checks the signature) fill the agent's variables before
the call is answered; a slow, down or rejecting webhook, and a hand-over to another agent."""
import json

import gevent
import gevent.event
import pytest
from gevent.pywsgi import WSGIServer

from calls.media_providers import MediaProviders
from models import Agent, Call, CallEvent, Organization, PhoneNumber
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeTTS, voice
from pipeline.providers import ResilientLLM, agent_llm_settings, build_llm
from tests.fakes.openai import ChatReply, FakeOpenAI
from tests.fakes.providers import FixedLatencySTT
from webhooks.signing import SIGNATURE_HEADER, SignatureError, verify

from .conftest import running_controller, wait_for

DID, CALLER = "+14155550100", "+442071838750"


class InboundHook:
    """The organization's inbound webhook: answers `reply` to requests signed with `secret` (401 otherwise);
    with `hold` set it answers only once the test releases it (a webhook slower than the deadline)."""

    def __init__(self, secret, reply=None, hold=False):
        self.secret, self.reply, self.received, self.verified = secret, reply or {}, [], []
        self.release = gevent.event.Event()
        if not hold:
            self.release.set()
        self.server = WSGIServer(("127.0.0.1", 0), self._app, log=None)

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        self.received.append(json.loads(body))
        try:
            verify(self.secret, environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"), ""), body)
        except SignatureError:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"bad signature"]
        self.verified.append(json.loads(body))
        self.release.wait(30)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(self.reply).encode()]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_port}/inbound"

    def __enter__(self):  # started by hook_for: its URL (port) is needed before the call
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.stop(timeout=1)


class RegistryLLM:
    def __init__(self, config, heard=()):
        self.config, self.heard = config, list(heard)

    def __call__(self, agent, info):
        llm = ResilientLLM(build_llm(agent_llm_settings(agent), self.config))
        return MediaProviders(FixedLatencySTT(self.heard), llm, FakeTTS(REAL_CLOCK, latency=0, ms_per_word=40),
                              vad=EnergyVAD())


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def webhook_timeout():
    return "0.5"


@pytest.fixture
def inbound_controller(db, telephony_env, fake_openai, webhook_timeout):
    from config import load_config

    config = load_config({**telephony_env, "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test",
                          "LLM_MODEL": "fake-gpt", "INBOUND_SIP_HEADERS": "X-Customer-*",
                          "INBOUND_WEBHOOK_TIMEOUT": webhook_timeout},
                         webhook_allow_private=True, rate_limit_per_minute=100_000)
    with running_controller(config) as control:
        control.media.build_providers = RegistryLLM(config, heard=["hello"])
        yield control


def desk(org, **fields):
    values = {"organization": org, "name": "Desk", "direction": "inbound", "greeting": "Hello {{name}}.",
              "variables": {"name": {"default": "there"}, "x_customer_id": {"default": "unknown"}},
              "settings": {"silence_reprompt_s": 60}}
    agent = Agent.create(**{**values, **fields})
    if not PhoneNumber.select().where(PhoneNumber.number == DID).exists():
        PhoneNumber.create(organization=org, number=DID, agent=agent)
    return agent


def hook_for(org, **kwargs):
    hook = InboundHook(Organization.get_by_id(org.id).webhook_secret, **kwargs)
    hook.server.start()
    Organization.update(inbound_webhook_url=hook.url).where(Organization.id == org.id).execute()
    return hook


def ring(controller, sim, headers=None):
    channel = sim.inbound_call(DID, f"127.0.0.1:{controller.socket_server.port}", caller=CALLER, headers=headers)
    return channel, wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status != "calling" and c,
                             timeout=20)


def transcript(call_id):
    return [(t["speaker"], t["text"]) for t in Call.get_by_id(call_id).transcript]


def reasons(call_id):
    return [e.reason for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)]


def test_an_allowed_header_and_the_webhook_reply_reach_the_agents_prompt(inbound_controller, sim, org, fake_openai):
    desk(org, llm={"provider": "openai"},
         prompt="Caller {{caller_number}} is {{name}}, customer {{x_customer_id}}, on {{called_number}}.")
    fake_openai.replies = [ChatReply(text="How can I help?")]
    with hook_for(org, reply={"variables": {"name": "Ada"}}) as hook:
        channel, call = ring(inbound_controller, sim, {"X-Customer-Id": "C-42", "X-Secret-Token": "t0ps3cret"})
        assert call.status == "in-progress" and call.context == {"x_customer_id": "C-42", "name": "Ada"}
        wait_for(lambda: transcript(call.id)[:1] == [("agent", "Hello Ada.")], timeout=20)
        sim.say(channel.uuid, voice(400))
        wait_for(lambda: ("agent", "How can I help?") in transcript(call.id), timeout=20)
    system = fake_openai.requests[0].json()["messages"][0]["content"]
    assert system.startswith(f"Caller {CALLER} is Ada, customer C-42, on {DID}.")
    # Only the allowed header was sent, in a request the receiver could verify.
    [sent] = hook.verified
    assert sent["type"] == "call.inbound"
    assert sent["data"] == {"call_id": call.id, "from": CALLER, "to": DID, "agent_id": call.agent_id,
                            "sip_headers": {"X-Customer-Id": "C-42"}}
    assert "t0ps3cret" not in json.dumps(Call.get_by_id(call.id).context) and "t0ps3cret" not in system
    sim.hangup_far_end(channel.uuid)


def test_a_slow_webhook_lets_the_call_go_on_with_the_defaults_and_is_recorded(inbound_controller, sim, org):
    desk(org)
    with hook_for(org, reply={"variables": {"name": "Too Late"}}, hold=True) as hook:
        channel, call = ring(inbound_controller, sim, {"X-Customer-Id": "C-7"})
        assert call.status == "in-progress"
        wait_for(lambda: transcript(call.id)[:1] == [("agent", "Hello there.")], timeout=20)
        assert len(hook.verified) == 1  # it was asked, and is still holding its answer
        hook.release.set()
    assert Call.get_by_id(call.id).context == {"x_customer_id": "C-7"}
    assert "inbound webhook failed: no answer within 0.5 s" in reasons(call.id)
    sim.hangup_far_end(channel.uuid)


def test_a_webhook_that_is_down_lets_the_call_go_on_and_is_recorded(inbound_controller, sim, org):
    desk(org)
    hook = InboundHook("unused")
    hook.server.start()
    url = hook.url
    hook.server.stop(timeout=1)  # nothing listens there any more
    Organization.update(inbound_webhook_url=url).where(Organization.id == org.id).execute()
    channel, call = ring(inbound_controller, sim)
    assert call.status == "in-progress"
    wait_for(lambda: transcript(call.id)[:1] == [("agent", "Hello there.")], timeout=20)
    assert any(r.startswith("inbound webhook failed: unreachable") for r in reasons(call.id)), reasons(call.id)
    sim.hangup_far_end(channel.uuid)


def test_the_webhook_may_reject_the_call(inbound_controller, sim, org):
    desk(org)
    with hook_for(org, reply={"reject": True, "reason": "blocked caller"}):
        channel, call = ring(inbound_controller, sim)
    assert (call.status, call.hangup_cause) == ("failed", "CALL_REJECTED")
    assert call.failure_reason == "rejected by the inbound webhook: blocked caller"
    # The rejection is written (inbound_context.py) before the socket handler forgets the call: wait for that.
    wait_for(lambda: call.id not in inbound_controller.live and call.id not in inbound_controller.limits.live)
    wait_for(lambda: sim.channel(channel.uuid) is None or sim.channel(channel.uuid).hangup_cause)
    assert not transcript(call.id)


def test_the_webhook_may_hand_the_call_to_another_inbound_agent_of_the_organization(inbound_controller, sim, org):
    desk(org)
    sales = Agent.create(organization=org, name="Sales", direction="inbound", greeting="Sales here, hi {{name}}.",
                         variables={"name": {"default": "friend"}}, settings={"silence_reprompt_s": 60})
    with hook_for(org, reply={"agent_id": sales.id, "variables": {"name": "Bo"}}):
        channel, call = ring(inbound_controller, sim)
    assert call.agent_id == sales.id
    wait_for(lambda: transcript(call.id)[:1] == [("agent", "Sales here, hi Bo.")], timeout=20)
    sim.hangup_far_end(channel.uuid)


def test_an_agent_of_another_organization_is_refused_and_the_defaults_apply(inbound_controller, sim, org):
    first = desk(org)
    other = Organization.create(name="Other")
    theirs = Agent.create(organization=other, name="Theirs", direction="inbound", greeting="Not yours.")
    with hook_for(org, reply={"agent_id": theirs.id, "variables": {"name": "Eve"}}):
        channel, call = ring(inbound_controller, sim)
    assert call.agent_id == first.id and call.status == "in-progress"
    wait_for(lambda: transcript(call.id)[:1] == [("agent", "Hello there.")], timeout=20)
    assert any("is not an active inbound agent of this organization" in r for r in reasons(call.id))
    sim.hangup_far_end(channel.uuid)


def test_without_a_webhook_only_allowed_headers_count_and_the_callers_number_is_a_variable(
        inbound_controller, sim, org):
    desk(org, greeting="Hello {{name}}, calling from {{caller_number}}.")
    channel, call = ring(inbound_controller, sim, {"X-Other": "not allowed"})
    assert call.status == "in-progress" and call.context == {}
    wait_for(lambda: transcript(call.id)[:1] == [("agent", f"Hello there, calling from {CALLER}.")], timeout=20)
    assert not any(r.startswith(("inbound webhook", "inbound context")) for r in reasons(call.id))
    sim.hangup_far_end(channel.uuid)


@pytest.mark.parametrize("webhook_timeout", ["10"])
def test_a_caller_who_hangs_up_while_the_webhook_is_waited_for_ends_the_call(inbound_controller, sim, org):
    desk(org)
    with hook_for(org, hold=True) as hook:
        channel = sim.inbound_call(DID, f"127.0.0.1:{inbound_controller.socket_server.port}", caller=CALLER)
        wait_for(lambda: hook.verified, timeout=20)  # asked, and holding its answer for up to 10 s
        sim.hangup_far_end(channel.uuid, "ORIGINATOR_CANCEL")
        call = wait_for(lambda: (c := Call.get_by_id(channel.uuid)).status not in ("calling", "ringing") and c,
                        timeout=8)
        assert call.answered_at is None and call.id not in inbound_controller.live

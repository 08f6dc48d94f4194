"""A call whose voice session cannot start at answer ends `failed` with the reason, unbilled (issue 12, #8).

The agent was saved before voices were validated at save (written to the database directly): its voice
makes the offline TTS refuse to build, so the session cannot start even on the offline providers."""
import json

from calls.dispatcher import Dispatcher
from models import Agent, Call, Organization, WebhookDelivery, utcnow

from .conftest import running_controller, wait_for


def _dial_and_end(telephony_config, org, voice: str) -> Call:
    agent = Agent.create(organization=org, name="Broken voice", direction="outbound", voice=voice, greeting="Hello")
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=org.default_caller_id, max_attempts=3, next_attempt_at=utcnow())
    with running_controller(telephony_config) as controller:
        assert Dispatcher(controller).run_once().claimed == 1
        ended = wait_for(lambda: (c := Call.get_by_id(call.id)).status not in ("calling", "ringing", "in-progress")
                         and c, timeout=20)
    assert ended.answered_at is not None  # it was answered: the failure is ours, not the network's
    assert (ended.status, ended.billed_minutes, ended.attempt) == ("failed", 0, 1)
    assert Organization.get_by_id(org.id).minutes_used == 0
    return ended


def test_a_voice_espeak_does_not_have_fails_the_call_before_the_agent_spoke(db, telephony_config, sim, caller_org):
    """"zz" has the shape of an espeak-ng language, so the session starts; espeak-ng then refuses to speak it
    (a voice missing on this machine): the agent never says a word, and the call is not billed."""
    ended = _dial_and_end(telephony_config, caller_org, "zz")
    assert ended.failure_reason == "voice pipeline failed before the agent spoke: provider failed"
    assert not [t for t in ended.transcript if t["speaker"] == "agent"]


def test_an_answered_call_whose_voice_never_started_ends_failed_and_is_not_billed(db, telephony_config, sim,
                                                                                     caller_org):
    ended = _dial_and_end(telephony_config, caller_org, "a|ZQ6|b")
    assert ended.failure_reason.startswith("voice pipeline could not start: ")
    assert "invalid espeak-ng voice name" in ended.failure_reason
    row = wait_for(lambda: WebhookDelivery.get_or_none(WebhookDelivery.call_id == ended.id,
                                                       WebhookDelivery.event_type == "call.ended"))
    data = json.loads(row.payload)["data"]
    assert (data["status"], data["failure_reason"], data["billed_minutes"]) == ("failed", ended.failure_reason, 0)

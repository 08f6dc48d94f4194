"""A call whose voice session cannot start at answer ends `failed` with the reason, unbilled (issue 12, #8).

The agent was saved before voices were validated at save (written to the database directly): its voice
makes the offline TTS refuse to build, so the session cannot start even on the offline providers."""
import json

from calls.dispatcher import Dispatcher
from models import Agent, Call, Organization, WebhookDelivery, utcnow

from .conftest import running_controller, wait_for


def test_an_answered_call_whose_voice_never_started_ends_failed_and_is_not_billed(db, telephony_config, sim,
                                                                                     caller_org):
    agent = Agent.create(organization=caller_org, name="Broken voice", direction="outbound", voice="a|ZQ6|b")
    call = Call.create(organization=caller_org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=caller_org.default_caller_id, max_attempts=3, next_attempt_at=utcnow())
    with running_controller(telephony_config) as controller:
        assert Dispatcher(controller).run_once().claimed == 1
        ended = wait_for(lambda: (c := Call.get_by_id(call.id)).status not in ("calling", "ringing", "in-progress")
                         and c, timeout=20)
    assert ended.answered_at is not None  # it was answered: the failure is ours, not the network's
    assert (ended.status, ended.billed_minutes, ended.attempt) == ("failed", 0, 1)
    assert ended.failure_reason.startswith("voice pipeline could not start: ")
    assert "invalid espeak-ng voice name" in ended.failure_reason
    assert Organization.get_by_id(caller_org.id).minutes_used == 0
    row = wait_for(lambda: WebhookDelivery.get_or_none(WebhookDelivery.call_id == call.id,
                                                       WebhookDelivery.event_type == "call.ended"))
    data = json.loads(row.payload)["data"]
    assert (data["status"], data["failure_reason"], data["billed_minutes"]) == ("failed", ended.failure_reason, 0)

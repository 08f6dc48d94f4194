"""The voice pipeline through the simulator: the real call controller and MediaBridge, the simulator's
mod_audio_fork, and fake providers (a loud tone is speech; the fake STT says what was heard) so that what
the agent does - not how well offline recognition works - is what these tests check."""
import json

import pytest

from calls.dispatcher import Dispatcher
from calls.media_providers import MediaProviders
from models import Agent, Call, CallEvent, WebhookDelivery, utcnow
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, FakeTTS, say, voice
from tests.fakes.providers import FixedLatencySTT

from .conftest import running_controller, wait_for

SILENCE_GOODBYE = "I haven't heard anything, so I'll end the call now. Goodbye."
TIME_LIMIT = "We have reached the time limit for this call. Thank you, goodbye."


class Providers:
    """Each call's providers: what the caller is heard to say, and the agent's replies in order."""

    def __init__(self, heard=(), replies=()):
        self.heard, self.replies = list(heard), list(replies)

    def __call__(self, agent, info):
        return MediaProviders(FixedLatencySTT(self.heard), FakeLLM(REAL_CLOCK, list(self.replies), latency=0),
                              FakeTTS(REAL_CLOCK, latency=0, ms_per_word=60), vad=EnergyVAD())


@pytest.fixture
def voice_controller(db, telephony_config):
    with running_controller(telephony_config) as control:
        yield control


def place_call(controller, org, settings):
    agent = Agent.create(organization=org, name="Voice", direction="outbound", settings=settings)
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    # A number the simulator keeps up for 30 s (conftest RULES): only the agent ends these calls early.
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call.id).status == "in-progress" and call.id in controller.media.sessions)
    return Call.get_by_id(call.id), client


def transcript(call_id):
    return [(t["speaker"], t["text"]) for t in Call.get_by_id(call_id).transcript]


def finished(call_id):
    return wait_for(lambda: (c := Call.get_by_id(call_id)).status not in ("calling", "ringing", "in-progress") and c,
                    timeout=20)


def webhook(call_id, event_type):
    row = wait_for(lambda: WebhookDelivery.get_or_none(WebhookDelivery.call_id == call_id,
                                                       WebhookDelivery.event_type == event_type))
    return json.loads(row.payload)["data"]


def test_keys_pressed_on_the_call_reach_the_agent_and_the_transcript_is_reported(
        voice_controller, sim, caller_org, auth):
    voice_controller.media.build_providers = Providers(replies=[say("Hello, press a key."),
                                                                say("You pressed four two.")])
    call, client = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60})
    wait_for(lambda: transcript(call.id) == [("agent", "Hello, press a key.")])
    sim.send_dtmf(call.channel_uuid, "42#")  # DTMF events from the switch, as FreeSWITCH sends them
    wait_for(lambda: len(transcript(call.id)) == 3)
    assert transcript(call.id) == [("agent", "Hello, press a key."), ("caller", "42"),
                                   ("agent", "You pressed four two.")]
    assert Call.get_by_id(call.id).transcript[1]["source"] == "dtmf"
    sim.hangup_far_end(call.channel_uuid)
    assert finished(call.id).status == "completed"
    shown = client.get(f"/v1/calls/{call.id}", headers=auth)
    assert shown.status_code == 200
    assert [(t["speaker"], t["text"]) for t in shown.get_json()["transcript"]] == transcript(call.id)
    ended = webhook(call.id, "call.ended")
    assert [(t["speaker"], t["text"]) for t in ended["transcript"]] == transcript(call.id)


def test_a_silent_caller_is_reprompted_then_the_agent_says_goodbye_and_hangs_up(voice_controller, sim, caller_org):
    voice_controller.media.build_providers = Providers(replies=[say("Hello there.")])
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 2, "max_reprompts": 1})
    call = finished(call.id)
    assert transcript(call.id) == [("agent", "Hello there."), ("agent", "Are you still there?"),
                                   ("agent", SILENCE_GOODBYE)]
    assert call.status == "completed"
    reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call.id).order_by(CallEvent.id)]
    # The agent hung up (uuid_kill through the controller), not the far end (it would stay 30 s).
    assert "hangup requested: agent ended the call: caller silent" in reasons
    turns = Call.get_by_id(call.id).transcript
    assert turns[1]["start_ms"] >= turns[0]["end_ms"] + 2000  # the re-prompt came after the silence


def test_the_max_call_duration_ends_the_call_with_the_goodbye_line(voice_controller, sim, caller_org):
    voice_controller.media.build_providers = Providers(heard=["tell me more"],
                                                       replies=[say("Hello there."), say("Sure, ask away.")])
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60, "max_duration_s": 10})
    wait_for(lambda: transcript(call.id) == [("agent", "Hello there.")])
    sim.say(call.channel_uuid, voice(400))  # a caller turn, so the call is not just silence
    call = finished(call.id)
    lines = transcript(call.id)
    assert lines[:3] == [("agent", "Hello there."), ("caller", "tell me more"), ("agent", "Sure, ask away.")]
    assert lines[-1] == ("agent", TIME_LIMIT)
    assert Call.get_by_id(call.id).transcript[-1]["start_ms"] >= 10_000  # not before the limit
    reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call.id)]
    assert "hangup requested: agent ended the call: max duration reached" in reasons
    assert webhook(call.id, "call.analyzed")["transcript"][-1]["text"] == TIME_LIMIT

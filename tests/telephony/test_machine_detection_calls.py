"""Answering-machine detection through the simulator: the far end plays a recorded voicemail greeting (with its
beep) or a person's short answer from the labelled set in tests/data/amd, as an 8 kHz PCMU leg carries it."""
import dataclasses
import pathlib
import sys

import pytest

from models import Call, CallEvent
from pipeline.audio import resample
from pipeline.fakes import say
from tests.fakes.providers import TimedWordsSTT

from .conftest import wait_for
from .test_voice_pipeline_calls import Providers, finished, place_call, transcript, webhook

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data" / "amd"))
import clips as amd_set  # noqa: E402

MESSAGE = "Hi, this is Acme about your appointment tomorrow at ten. Please call us back. Goodbye."


def far_end(label: str, beep: bool | None = None) -> bytes:
    """A clip from the set, at the 16 kHz the simulator's far end takes (it round-trips it through PCMU)."""
    clip = next(c for c in amd_set.clips("tune") if c.label == label and (beep is None or bool(c.beep_hz) == beep))
    return resample(amd_set.pcm(clip, 8000), 8000, 16000)


@pytest.fixture
def voice_controller(db, telephony_config):
    from .conftest import running_controller

    with running_controller(telephony_config) as control:
        yield control


def events(call_id):
    return [e.reason for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)]


def greeted(call_id, check) -> None:
    """Wait up to 30 s (a loaded machine) for the conversation; when it does not come, say what was decided."""
    try:
        wait_for(lambda: check(transcript(call_id)), timeout=30)
    except AssertionError:
        why = [e.data for e in CallEvent.select().where(CallEvent.call == call_id) if e.data]
        raise AssertionError(f"no greeting: {Call.get_by_id(call_id).answered_by=}, {events(call_id)=}, {why=}, "
                             f"{transcript(call_id)=}") from None


def test_hangup_ends_a_voicemail_call_without_the_agent_speaking(voice_controller, sim, caller_org):
    voice_controller.media.build_providers = Providers(replies=[say("Hi, this is Acme.")])
    call, _ = place_call(voice_controller, caller_org, {"machine_detection": {"mode": "hangup"}})
    sim.say(call.channel_uuid, far_end("machine"))
    call = finished(call.id)
    assert call.status == "completed" and call.answered_by == "machine" and 1000 < call.answered_by_ms < 6000
    assert transcript(call.id) == []  # not a word over the greeting
    assert any(r.startswith("answered by machine after") for r in events(call.id))
    ended = webhook(call.id, "call.ended")
    assert ended["answered_by"] == "machine" and ended["answered_by_ms"] == call.answered_by_ms


def test_leave_message_speaks_the_message_after_the_beep_and_hangs_up(voice_controller, sim, caller_org):
    voice_controller.media.build_providers = Providers(replies=[say("Hi, this is Acme.")])
    call, _ = place_call(voice_controller, caller_org,
                         {"machine_detection": {"mode": "leave_message", "message": MESSAGE}})
    sim.say(call.channel_uuid, far_end("machine", beep=True))
    call = finished(call.id)
    assert call.answered_by == "machine" and call.status == "completed"
    assert transcript(call.id) == [("agent", MESSAGE)]
    assert call.transcript[0]["source"] == "voicemail"  # a message left, not a conversation
    assert any("voicemail message left" in (r or "") for r in events(call.id))


def test_a_person_gets_the_conversation_greeted_at_once(voice_controller, sim, caller_org):
    voice_controller.media.build_providers = Providers(heard=["yes I will"],
                                                       replies=[say("Hi, this is Acme. Will you come?"),
                                                                say("Great, see you then.")])
    call, _ = place_call(voice_controller, caller_org,
                         {"machine_detection": {"mode": "hangup"}, "silence_reprompt_s": 60})
    sim.say(call.channel_uuid, far_end("human"))
    greeted(call.id, lambda lines: lines[:1] == [("agent", "Hi, this is Acme. Will you come?")])
    assert Call.get_by_id(call.id).answered_by == "human"
    sim.hangup_far_end(call.channel_uuid)
    assert finished(call.id).answered_by == "human"


def test_a_call_can_override_the_agents_policy_and_bad_policies_are_refused(voice_controller, caller_org, auth):
    from api import create_app

    client = create_app(voice_controller.config, call_control=voice_controller).test_client()
    agent = client.post("/v1/agents", headers=auth, json={
        "name": "VM", "direction": "outbound", "settings": {"machine_detection": {"mode": "hangup"}}})
    assert agent.status_code == 201, agent.get_json()
    bad = client.post("/v1/agents", headers=auth, json={
        "name": "VM2", "direction": "outbound", "settings": {"machine_detection": {"mode": "leave_message"}}})
    assert bad.status_code == 422 and "message is required" in bad.get_json()["error"]["message"]
    queued = client.post("/v1/calls/outbound", headers=auth, json={
        "to": "+14155550123", "agent_id": agent.get_json()["id"],
        "machine_detection": {"mode": "leave_message", "message": "Call us back.", "timeout_ms": 4000}})
    assert queued.status_code == 201, queued.get_json()
    assert queued.get_json()["machine_detection"]["mode"] == "leave_message"
    wrong = client.post("/v1/calls/outbound", headers=auth, json={
        "to": "+14155550123", "machine_detection": {"mode": "voicemail"}})
    assert wrong.status_code == 422 and wrong.get_json()["error"]["field"] == "machine_detection"


@pytest.mark.parametrize("retry", [True, False])
def test_a_machine_is_retried_only_when_the_policy_says_so(voice_controller, sim, caller_org, retry):
    from calls.dispatcher import Dispatcher
    from models import Agent, utcnow

    voice_controller.media.build_providers = Providers(replies=[say("Hi, this is Acme.")])
    agent = Agent.create(organization=caller_org, name="VM", direction="outbound",
                         settings={"machine_detection": {"mode": "hangup", "retry": retry}})
    call = Call.create(organization=caller_org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=caller_org.default_caller_id, max_attempts=2, next_attempt_at=utcnow())
    assert Dispatcher(voice_controller).run_once().claimed == 1
    wait_for(lambda: call.id in voice_controller.media.sessions and Call.get_by_id(call.id).channel_uuid)
    sim.say(Call.get_by_id(call.id).channel_uuid, far_end("machine"))
    ended = wait_for(lambda: (c := Call.get_by_id(call.id)).status in ("queued", "completed") and c, timeout=20)
    if retry:
        assert ended.status == "queued" and ended.attempt == 1 and ended.answered_by is None
        assert ended.answered_at is None and ended.billed_minutes == 1  # the machine's minute stays billed
        assert any(r.startswith("retry after completed") for r in events(call.id))
    else:
        assert ended.status == "completed" and ended.answered_by == "machine"


class WordsProviders(Providers):
    """Providers whose STT says scripted words on the far end's timeline (from its speech onset)."""

    def __init__(self, script, replies=(), finals=()):
        super().__init__(replies=replies)
        self.script, self.finals, self.stts = script, list(finals), []

    def __call__(self, agent, info):
        providers = super().__call__(agent, info)
        self.stts.append(TimedWordsSTT(self.script, self.finals))
        return dataclasses.replace(providers, stt=self.stts[-1])


def test_a_greetings_words_decide_before_its_cadence_would(voice_controller, sim, caller_org):
    providers = WordsProviders([(0.5, "hi you've", False), (0.9, "hi you've reached sam", False)])
    voice_controller.media.build_providers = providers
    call, _ = place_call(voice_controller, caller_org, {"machine_detection": {"mode": "hangup"}})
    sim.say(call.channel_uuid, far_end("machine", beep=False))
    call = finished(call.id)
    assert call.answered_by == "machine" and transcript(call.id) == []
    decided = CallEvent.get(CallEvent.call == call.id, CallEvent.reason.startswith("answered by"))
    # The first decision is final: cadence alone needs 1.6 s of voice, the words came 0.9 s into it.
    assert decided.data["why"] == 'said "you\'ve reached"', decided.data
    [stt] = providers.stts
    assert [s.closed for s in stt.streams] == [True]  # one recognizer for the call, released


def test_a_persons_words_during_detection_open_the_transcript(voice_controller, sim, caller_org):
    providers = WordsProviders([(0.3, "hello", False), (0.6, "hello who is this", True)],
                               replies=[say("Hi, this is Acme. Will you come?")])
    voice_controller.media.build_providers = providers
    call, _ = place_call(voice_controller, caller_org,
                         {"machine_detection": {"mode": "hangup"}, "silence_reprompt_s": 60})
    sim.say(call.channel_uuid, far_end("human"))
    greeted(call.id, lambda lines: len(lines) >= 2)
    assert transcript(call.id)[:2] == [("caller", "hello who is this"), ("agent", "Hi, this is Acme. Will you come?")]
    assert Call.get_by_id(call.id).answered_by == "human"
    [stt] = providers.stts
    assert len(stt.streams) == 1 and not stt.streams[0].closed  # the detection's stream is the conversation's
    sim.hangup_far_end(call.channel_uuid)
    finished(call.id)
    wait_for(lambda: stt.streams[0].closed)

"""Calls whose far end's carrier suppresses silence: the simulator's mod_audio_fork then sends frames only while
the callee makes a sound and nothing in between, as the real module does (tests/data/freeswitch README, "Far-end
speech through a real SIP/G.711 call"). A representative few conversations in that mode; the rest of the suite
runs with continuous RTP."""
import pytest

from fssim import Rule
from pipeline.fakes import say, voice

from .conftest import wait_for
from .test_voice_pipeline_calls import SILENCE_GOODBYE, Providers, finished, place_call, transcript


@pytest.fixture
def suppressing_sim(sim):
    sim.rules.default = Rule(".*", "answer", after=0.1, hangup_after=30, rtp="suppress")
    return sim


@pytest.fixture
def voice_controller(db, telephony_config):
    from .conftest import running_controller

    with running_controller(telephony_config) as control:
        yield control


def test_a_callee_who_says_hello_at_answer_is_greeted_and_answered_with_gaps_on_the_wire(
        voice_controller, suppressing_sim, caller_org):
    sim = suppressing_sim
    voice_controller.media.build_providers = Providers(heard=["hello", "yes I will"],
                                                       replies=[say("Hi, this is Acme. Will you come?"),
                                                                say("Great, see you then.")])
    # after_caller: the greeting waits for the callee whatever the test machine's timing ("auto" would greet
    # after 1.2 s of quiet; pipeline tests cover that on a virtual clock).
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60, "greeting_start": "after_caller"})
    sim.say(call.channel_uuid, voice(500))  # "Hello?" as they pick up; then nothing on the wire
    wait_for(lambda: len(transcript(call.id)) == 2, timeout=20)
    assert transcript(call.id) == [("caller", "hello"), ("agent", "Hi, this is Acme. Will you come?")]
    sim.say(call.channel_uuid, voice(600))
    wait_for(lambda: len(transcript(call.id)) == 4, timeout=20)
    assert transcript(call.id)[2:] == [("caller", "yes I will"), ("agent", "Great, see you then.")]
    turns = voice_controller.media.sessions[call.id].history
    assert [t.speaker for t in turns] == ["caller", "agent", "caller", "agent"]
    sim.hangup_far_end(call.channel_uuid)
    assert finished(call.id).status == "completed"


def test_a_callee_silent_on_the_wire_is_greeted_reprompted_and_the_call_ends(
        voice_controller, suppressing_sim, caller_org):
    # No frame ever comes (the stream stays open: a quiet socket is not a dead call); wall time is the silence.
    voice_controller.media.build_providers = Providers(replies=[say("Hello there.")])
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 2, "max_reprompts": 1})
    call = finished(call.id)
    assert transcript(call.id) == [("agent", "Hello there."), ("agent", "Are you still there?"),
                                   ("agent", SILENCE_GOODBYE)]
    assert call.status == "completed"

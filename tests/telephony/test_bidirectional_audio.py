"""Agents with audio_return "stream": their voice goes back into the call as binary frames over the audio fork
(mod_audio_fork bidirectional streaming), through the real controller, MediaBridge and the simulator.

What the real switch needs (captures audio-fork-bidi-*): the ten-argument uuid_audio_fork with a bug name, and
the call kept writing audio with `playback silence_stream://-1` from the app's socket session (async full);
killAudio ends that playback but not the call, so it is re-armed. Each reply here is a tone of its own sample
value, so what the simulator counts as heard says which reply reached the caller."""
import re

import numpy as np
import pytest

from calls.agent_settings import check_agent_settings, session_config
from calls.dispatcher import Dispatcher
from calls.media_providers import MediaProviders
from models import Agent, Call, CallEvent, PhoneNumber, utcnow
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, say, voice
from tests.fakes.providers import FixedLatencySTT

from .conftest import commands_received, running_controller, wait_for

LINE = "Hello and welcome to the clinic, this is the booking line."
GREETING = " ".join([LINE] * 6)  # ~6 s of audio, spoken sentence by sentence
REPLY = "Sure, ask away."
LEVELS = {GREETING: 1111, LINE: 1111, REPLY: 2222}  # the sample value each line is made of
SILENCE_PLAYBACK = "sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: silence_stream://-1"
STREAM = {"audio_return": "stream", "silence_reprompt_s": 60}


class ToneTTS:
    """Every sentence is 100 ms per word of one constant sample value (LEVELS; 7 for anything else, such as
    the lines the session synthesises ahead of need)."""

    name = "tone-tts"

    def synthesize(self, text, sample_rate):
        samples = sample_rate * 100 * len(text.split()) // 1000
        yield np.full(samples, LEVELS.get(text, 7), dtype="<i2").tobytes()


def providers(agent, info):
    return MediaProviders(FixedLatencySTT(["I have a question"]), FakeLLM(REAL_CLOCK, [say(GREETING), say(REPLY)],
                                                                          latency=0),
                          ToneTTS(), vad=EnergyVAD())


@pytest.fixture
def voice_controller(db, received, telephony_config):
    with running_controller(telephony_config) as control:
        control.media.build_providers = providers
        yield control


def heard_levels(sim, uuid):
    return set(np.frombuffer(sim.heard(uuid), dtype="<i2").tolist())


def heard_samples(sim, uuid, level):
    return int(np.count_nonzero(np.frombuffer(sim.heard(uuid), dtype="<i2") == level))


def transcript(call_id):
    return [(t["speaker"], t["text"], t["interrupted"]) for t in Call.get_by_id(call_id).transcript]


def forks(received):
    return [c for c in commands_received(received) if c.startswith("api uuid_audio_fork")]


def silence_playbacks(received):
    # Each carries an Event-UUID header after these lines (the app waits for that playback's EXECUTE_COMPLETE).
    return sum(1 for c in commands_received(received) if c.startswith(SILENCE_PLAYBACK + "\n"))


def running_silence(sim, uuid):
    ch = sim.channel(uuid)
    return ch is not None and (ch.app, ch.app_data, ch.writing_audio) == ("playback", "silence_stream://-1", True)


def check_streamed_conversation(sim, received, call_id, direction):
    """The greeting is heard as streamed frames; the caller barges in; the playback is re-armed; the reply is heard."""
    channel = Call.get_by_id(call_id).channel_uuid
    fork = wait_for(lambda: forks(received))
    assert len(fork) == 1 and re.fullmatch(
        rf"api uuid_audio_fork {channel} start ws://127\.0\.0\.1:\d+/\S+ mono 16k audio_fork "
        rf'\{{"call_id":"{call_id}","direction":"{direction}","narrowband":true\}} true true 16000', fork[0])
    assert silence_playbacks(received) == 1 and running_silence(sim, channel)
    # The greeting arrives as binary frames the simulator plays: heard, with no playAudio file behind it.
    # Past the first sentence (1.1 s), so the cut-off greeting has words to record.
    wait_for(lambda: heard_samples(sim, channel, LEVELS[GREETING]) >= 16000 * 1.5)
    sim.say(channel, voice(600))  # the caller talks over the greeting: barge-in, killAudio
    wait_for(lambda: silence_playbacks(received) == 2 and running_silence(sim, channel))  # re-armed after the kill
    wait_for(lambda: LEVELS[REPLY] in heard_levels(sim, channel))
    lines = wait_for(lambda: len(t := transcript(call_id)) == 3 and t)
    assert [(speaker, interrupted) for speaker, _, interrupted in lines] == [
        ("agent", True), ("caller", False), ("agent", False)]
    assert GREETING.startswith(lines[0][1]) and lines[0][1] != GREETING  # cut off by the caller
    assert lines[1:] == [("caller", "I have a question", False), ("agent", REPLY, False)]
    sent = commands_received(received)
    assert not [c for c in sent if c.startswith(("api uuid_broadcast", "api uuid_break"))]
    media = {e.reason for e in CallEvent.select().where(CallEvent.call == call_id,
                                                        CallEvent.reason.startswith("media"))}
    assert media == {"media stream requested", "media connect"}
    sim.hangup_far_end(channel)
    assert wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)


def test_an_inbound_call_to_a_streaming_agent_hears_streamed_replies_and_is_rearmed_after_a_barge_in(
        voice_controller, sim, received, org):
    agent = Agent.create(organization=org, name="Desk", direction="inbound", settings=STREAM)
    PhoneNumber.create(organization=org, number="+14155550100", agent=agent)
    channel = sim.inbound_call("+14155550100", f"127.0.0.1:{voice_controller.socket_server.port}",
                               caller="+442071838750")
    wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress")
    check_streamed_conversation(sim, received, channel.uuid, "inbound")


def place_outbound(controller, org, settings):
    agent = Agent.create(organization=org, name="Voice", direction="outbound", settings=settings)
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call.id).status == "in-progress" and call.id in controller.media.sessions)
    return call.id


def originates(received):
    return [c for c in commands_received(received) if c.startswith("bgapi originate")]


def test_an_outbound_call_of_a_streaming_agent_is_controlled_through_the_socket_and_hears_streamed_replies(
        voice_controller, sim, received, caller_org):
    call_id = place_outbound(voice_controller, caller_org, STREAM)
    [originate] = originates(received)
    # Quoted: unquoted, originate splits `async full` off and the session is neither async nor full.
    assert originate.endswith(f" '&socket(127.0.0.1:{voice_controller.socket_server.port} async full)'")
    assert originate.startswith("bgapi originate {origination_uuid=" + call_id)
    check_streamed_conversation(sim, received, call_id, "outbound")


def test_an_agent_that_says_nothing_of_audio_return_streams_its_voice(voice_controller, sim, received,
                                                                     caller_org):
    call_id = place_outbound(voice_controller, caller_org, {"silence_reprompt_s": 60})
    [originate] = originates(received)
    assert originate.endswith(f" '&socket(127.0.0.1:{voice_controller.socket_server.port} async full)'")
    check_streamed_conversation(sim, received, call_id, "outbound")


def test_an_agent_asking_for_playaudio_parks_and_gets_playaudio_files_as_before(voice_controller, sim, received,
                                                                              caller_org):
    call_id = place_outbound(voice_controller, caller_org, {"audio_return": "playaudio", "silence_reprompt_s": 60})
    [originate] = originates(received)
    assert originate.endswith(" &park()")
    fork = wait_for(lambda: forks(received))
    assert re.fullmatch(rf'api uuid_audio_fork {call_id} start ws://\S+ mono 16k \{{"call_id":"{call_id}",'
                        r'"direction":"outbound","narrowband":true\}', fork[0])
    wait_for(lambda: LEVELS[GREETING] in heard_levels(sim, call_id))  # the playAudio file, broadcast
    sent = commands_received(received)
    assert any(c.startswith(f"api uuid_broadcast {call_id} /") for c in sent)
    assert silence_playbacks(received) == 0
    sim.hangup_far_end(call_id)
    assert wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)


def test_audio_return_accepts_only_playaudio_or_stream():
    assert check_agent_settings({"audio_return": "stream"}) == []
    assert check_agent_settings({"audio_return": "playaudio"}) == []
    assert check_agent_settings({"audio_return": "binary"}) == [
        "setting 'audio_return' must be one of playaudio, stream"]
    assert check_agent_settings({"audio_return": True}) == ["setting 'audio_return' must be str"]


def test_agents_api_refuses_an_unknown_audio_return(db, auth, config):
    from api import create_app

    client = create_app(config).test_client()
    bad = client.post("/v1/agents", json={"name": "A", "direction": "inbound", "settings": {"audio_return": "loud"}},
                      headers=auth)
    assert bad.status_code == 422 and "audio_return" in bad.get_data(as_text=True)
    assert Agent.select().count() == 0
    good = client.post("/v1/agents", json={"name": "A", "direction": "inbound",
                                           "settings": {"audio_return": "stream"}}, headers=auth)
    assert good.status_code == 201 and good.get_json()["settings"] == {"audio_return": "stream"}


def test_the_session_streams_unless_the_agent_asks_for_playaudio_files(db, org):
    call = Call(id="c", direction="inbound", context={})
    for settings, expected in (({"audio_return": "stream"}, True), ({"audio_return": "playaudio"}, False),
                               ({}, True)):
        agent = Agent(organization=org, name="A", direction="inbound", settings=settings)
        assert session_config(agent, call, 16000, 600).bidirectional is expected


@pytest.fixture
def greenlet_errors(monkeypatch):
    """Exceptions that killed a greenlet (what gevent prints as an unhandled traceback)."""
    import gevent

    errors = []
    hub = gevent.get_hub()
    original = hub.print_exception

    def record(context, type_, value, tb):
        errors.append((context, value))
        original(context, type_, value, tb)

    monkeypatch.setattr(hub, "print_exception", record)
    return errors


def test_a_hangup_during_the_silence_playback_is_a_normal_call_end_not_an_unhandled_error(
        voice_controller, sim, received, caller_org, greenlet_errors):
    call_id = place_outbound(voice_controller, caller_org, STREAM)
    channel = Call.get_by_id(call_id).channel_uuid
    wait_for(lambda: running_silence(sim, channel))
    sim.hangup_far_end(channel)   # the playback's wait ends with the session's disconnect notice
    assert wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)
    wait_for(lambda: not [s for s in voice_controller.socket_server.sessions if s.uuid == channel])
    assert not [value for _, value in greenlet_errors if "SessionGone" in type(value).__name__], greenlet_errors

"""Two call controllers on one simulator, as two app instances would be: `owner` owns the node's events, `other`
owns none (calls/ownership.py). A call dialed, or an inbound socket accepted, by the instance that does not own
the node is driven by the owner from the row; the other instance's memory of it is released at the hang-up.
(tests/telephony/test_scaleout.py runs the same with real processes on PostgreSQL.)"""
import contextlib
import json

import numpy as np
import pytest

from calls.controller import CallController
from calls.dispatcher import Dispatcher
from calls.media import MediaBridge
from calls.media_providers import MediaProviders
from calls.nodes import NodePool
from calls.ownership import OwnAll
from models import Call, Organization, WebhookDelivery
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, say, voice
from tests.fakes.providers import FixedLatencySTT

from .conftest import wait_for
from .test_inbound_calls import desk, socket_address  # noqa: F401 - the fixture is used by name


class OwnsNothing:
    """Another instance holds every node's lock."""

    def owns(self, node_name: str) -> bool:
        return False

    def owned(self) -> list[str]:
        return []

    def start(self, on_acquired, on_lost) -> None:
        pass

    def stop(self) -> None:
        pass

    def wait_first_pass(self, timeout=None) -> bool:
        return True


@contextlib.contextmanager
def _controller(config, ownership, voice_pipeline=False):
    from calls.controller import AUDIO_FORK_SUBCLASSES, SUBSCRIBED_EVENTS

    pool = NodePool(config.esl_nodes, config.esl_password, timeout_s=config.esl_command_timeout_s,
                    events=SUBSCRIBED_EVENTS, subclasses=AUDIO_FORK_SUBCLASSES)
    media = MediaBridge(config) if voice_pipeline else None
    control = CallController(config, pool, media=media, ownership=ownership(pool.nodes))
    if media is not None:
        media.attach(control)
    control.start()
    try:
        assert pool.wait_ready(30)
        wait_for(lambda: control.reconciled, timeout=30)
        yield control
    finally:
        control.stop()


@pytest.fixture
def pair(db, telephony_config):
    with _controller(telephony_config, OwnAll) as owner, \
            _controller(telephony_config, lambda nodes: OwnsNothing()) as other:
        yield owner, other


def _ended(call_id: str) -> int:
    return WebhookDelivery.select().where(WebhookDelivery.call_id == call_id,
                                          WebhookDelivery.event_type == "call.ended").count()


def test_an_inbound_socket_on_the_non_owner_is_driven_by_the_owner(pair, sim, desk, org):  # noqa: F811
    owner, other = pair
    channel = sim.inbound_call("+14155550100", socket_address(other), caller="+442071838750")
    call = wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress" and c)
    assert call.node in owner.pool.nodes
    assert channel.uuid in owner.live  # adopted from the row on its first event
    assert channel.uuid in other.live  # the socket is held there
    sim.hangup_far_end(channel.uuid)
    done = wait_for(lambda: (c := Call.get_by_id(channel.uuid)).status == "completed" and c)
    assert done.billed_minutes == 1
    wait_for(lambda: channel.uuid not in other.live and channel.uuid not in owner.live)
    assert _ended(channel.uuid) == 1
    assert Organization.get_by_id(org.id).minutes_used == 1


def test_a_call_dialed_by_the_non_owner_is_driven_by_the_owner_and_hung_up_from_either(pair, sim, caller_org,
                                                                                        outbound_agent):
    from tests.calls.factories import queued_calls

    owner, other = pair
    ids = queued_calls(caller_org, outbound_agent, 2, from_number="+14155550000")
    Dispatcher(other).run_once()  # the non-owner claims and dials them
    wait_for(lambda: all(Call.get_by_id(i).status == "in-progress" for i in ids))
    assert all(i in owner.live for i in ids)
    wait_for(lambda: not any(i in other.live for i in ids))  # released once the originate's job returned
    other.hangup(Call.get_by_id(ids[0]), "hung up through the API")
    owner.hangup(Call.get_by_id(ids[1]), "hung up through the API")
    wait_for(lambda: all(Call.get_by_id(i).status == "completed" for i in ids))
    assert [_ended(i) for i in ids] == [1, 1]
    assert len(list(sim.switch.originated)) == 2  # each dialed once


# ---- a voice session where the audio lands -------------------------------------------------------------------
GREETING_LEVEL, REPLY_LEVEL = 1111, 2222  # the sample value the greeting / the reply is made of
GREETING, REPLY = "Hello, this is Acme calling.", "Sure, ask away."
LINE = "Hello and welcome to the clinic, this is the booking line."
LONG_GREETING = " ".join([LINE] * 6)  # ~6 s of audio, spoken sentence by sentence


class ToneTTS:
    """100 ms per word of one constant sample value: what the far end hears says which line reached it."""

    name = "tone-tts"

    def synthesize(self, text, sample_rate):
        level = {GREETING: GREETING_LEVEL, LINE: GREETING_LEVEL, REPLY: REPLY_LEVEL}.get(text, 7)
        yield np.full(sample_rate * 100 * len(text.split()) // 1000, level, dtype="<i2").tobytes()


def _providers(agent, info):
    return MediaProviders(FixedLatencySTT(["I have a question"]), FakeLLM(REAL_CLOCK, [say(GREETING), say(REPLY)],
                                                                                latency=0),
                          ToneTTS(), vad=EnergyVAD())


@pytest.fixture
def voice_trio(db, telephony_env):
    """Three instances with the voice pipeline, sharing MEDIA_TOKEN_SECRET (a stream's token is checked by
    whichever instance it lands on): `owner` owns the node, `dialer` and `third` own nothing."""
    from config import load_config

    config = load_config({**telephony_env, "MEDIA_TOKEN_SECRET": "a-secret-shared-by-every-instance"},
                         webhook_allow_private=True, rate_limit_per_minute=100_000)
    with _controller(config, OwnAll, True) as owner, \
            _controller(config, lambda nodes: OwnsNothing(), True) as dialer, \
            _controller(config, lambda nodes: OwnsNothing(), True) as third:
        for control in (owner, dialer, third):
            control.media.build_providers = _providers
        yield {"owner": owner, "dialer": dialer, "third": third}


def _level_heard(sim, uuid, level) -> int:
    return int(np.count_nonzero(np.frombuffer(sim.heard(uuid), dtype="<i2") == level))


def _transcript(call_id):
    return [(t["speaker"], t["text"]) for t in Call.get_by_id(call_id).transcript or []]


@pytest.mark.parametrize("landing", ["owner", "third"])
def test_a_streamed_voice_call_runs_where_its_audio_lands_and_ends_once(voice_trio, sim, caller_org, outbound_agent,
                                                                          landing):
    """Dialed through `dialer` (it holds the call's socket), the node owned by `owner`; the media URL the node is
    given (the dialer's AUDIO_WS_PUBLIC_URL, a load balancer's stand-in) leads to `landing`'s audio server."""
    from tests.calls.factories import queued_calls

    owner, dialer, audio = voice_trio["owner"], voice_trio["dialer"], voice_trio[landing]
    host, port = audio.media.server.address
    dialer.media.public_url = f"ws://{host}:{port}"
    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000")
    assert Dispatcher(dialer).run_once().claimed == 1
    wait_for(lambda: call_id in audio.media.sessions)
    instances = set(voice_trio.values())
    assert not [c for c in instances - {audio} if call_id in c.media.sessions]  # nowhere else
    assert Call.get_by_id(call_id).status == "in-progress" and call_id in owner.live
    channel = Call.get_by_id(call_id).channel_uuid
    # The agent's default settings: it greets once the callee is quiet (its LLM's opening line), streamed back.
    wait_for(lambda: _transcript(call_id) == [("agent", GREETING)])
    wait_for(lambda: _level_heard(sim, channel, GREETING_LEVEL) >= 16000 * 0.5)  # all of it (5 words, 100 ms each)
    sim.say(channel, voice(600))  # the callee speaks: a turn, and the agent's reply is heard
    wait_for(lambda: REPLY_LEVEL in np.frombuffer(sim.heard(channel), dtype="<i2"))
    lines = wait_for(lambda: len(t := _transcript(call_id)) >= 3 and t)
    assert lines[:3] == [("agent", GREETING), ("caller", "I have a question"), ("agent", REPLY)]
    hanging = next(c for c in (dialer, owner, voice_trio["third"]) if c is not audio)  # not where the session runs
    hanging.hangup(Call.get_by_id(call_id), "hung up through the API")
    done = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)
    assert done.billed_minutes == 1
    for control in instances:  # no LiveCall, slot or session left anywhere
        wait_for(lambda c=control: call_id not in c.live and not c.limits.per_org and not c.media.sessions)
    assert _ended(call_id) == 1
    ended = json.loads(WebhookDelivery.get(WebhookDelivery.call_id == call_id,
                                           WebhookDelivery.event_type == "call.ended").payload)["data"]
    assert [(t["speaker"], t["text"]) for t in ended["transcript"]] == _transcript(call_id)
    assert len(list(sim.switch.originated)) == 1


@pytest.mark.parametrize("landing", ["dialer", "third"])
def test_a_hangup_that_cuts_off_the_agent_on_a_non_owner_leaves_its_turn_in_call_ended(
        voice_trio, sim, caller_org, outbound_agent, landing, monkeypatch):
    """The far end hangs up while the agent speaks, its session running on an instance that does not own the
    node (the dialer holding the socket, or a third one): the cut-off turn is recorded there, and call.ended,
    written by the node's owner, carries it (as when the session runs on the owner, which stops it first).

    Left alone the two instances race; here the cut-off turn is written only once the owner is waiting for the
    session's end, or (without that wait) once call.ended is written: the losing order, every run."""
    import gevent.event

    from calls import cross_instance, media
    from tests.calls.factories import queued_calls

    dialer, audio = voice_trio["dialer"], voice_trio[landing]
    for control in voice_trio.values():
        control.media.build_providers = lambda agent, info: MediaProviders(
            FixedLatencySTT([]), FakeLLM(REAL_CLOCK, [say(LONG_GREETING)], latency=0), ToneTTS(), vad=EnergyVAD())
    owner_waits = gevent.event.Event()
    wait_remote = getattr(cross_instance, "wait_remote_session", None)
    record = media.record_turn

    def waiting(call, *args):
        owner_waits.set()
        return wait_remote(call, *args)

    def late_record(call_id, turn):
        if turn.interrupted:
            wait_for(lambda: owner_waits.is_set() or _ended(call_id))
        record(call_id, turn)

    monkeypatch.setattr(cross_instance, "wait_remote_session", waiting, raising=False)
    monkeypatch.setattr(media, "record_turn", late_record)
    host, port = audio.media.server.address
    dialer.media.public_url = f"ws://{host}:{port}"
    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000")
    assert Dispatcher(dialer).run_once().claimed == 1
    wait_for(lambda: call_id in audio.media.sessions)
    assert call_id not in voice_trio["owner"].media.sessions
    channel = Call.get_by_id(call_id).channel_uuid
    # Past the first sentence (1.1 s), so the cut-off greeting has words to record.
    wait_for(lambda: _level_heard(sim, channel, GREETING_LEVEL) >= 16000 * 1.5)
    sim.hangup_far_end(channel)
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")
    ended = json.loads(wait_for(lambda: WebhookDelivery.get_or_none(
        WebhookDelivery.call_id == call_id, WebhookDelivery.event_type == "call.ended")).payload)["data"]
    assert [(t["speaker"], t["interrupted"]) for t in ended["transcript"]] == [("agent", True)]
    spoken = ended["transcript"][0]["text"]
    assert LONG_GREETING.startswith(spoken) and spoken != LONG_GREETING
    assert [(t["speaker"], t["text"]) for t in ended["transcript"]] == _transcript(call_id)
    for control in voice_trio.values():
        wait_for(lambda c=control: call_id not in c.live and not c.limits.per_org and not c.media.sessions)
    assert _ended(call_id) == 1


def test_a_socket_reaching_the_dialer_as_its_job_returns_still_streams_the_voice(voice_trio, sim, caller_org,
                                                                                   outbound_agent, monkeypatch):
    """Issue 13: the call's socket lands on the instance that dialed it (not the node's owner) while its originate
    job is in flight. The socket session finds the dialer's LiveCall, reads the row (a yield), and meanwhile the
    job returns and the dialer lets its LiveCall go. The socket session must hold the call all the same and start
    its fork: before, it marked the dropped LiveCall held, found the call not driven here and never started the
    fork (answered, never greeted).

    Left alone the two race; here the row read waits until the job has been handled: the losing order, every run."""
    import gevent.event

    from calls import inbound_socket
    from tests.calls.factories import queued_calls

    dialer = voice_trio["dialer"]
    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000")
    socket_read, job_handled = gevent.event.Event(), gevent.event.Event()

    class RowReadWaitsForTheJob:
        def __getattr__(self, name):
            return getattr(Call, name)

        @staticmethod
        def get_or_none(*args):
            if not socket_read.is_set():
                socket_read.set()
                job_handled.wait(10)
            return Call.get_or_none(*args)

    [node] = dialer.pool.nodes.values()
    wait_job, forget = node.wait_job, dialer.live.forget

    def job_after_the_socket(job_uuid, timeout):
        job = wait_job(job_uuid, timeout)
        socket_read.wait(10)
        return job

    def forgotten(cid):
        forget(cid)
        if cid == call_id:
            job_handled.set()

    monkeypatch.setattr(inbound_socket, "Call", RowReadWaitsForTheJob())
    monkeypatch.setattr(node, "wait_job", job_after_the_socket)
    monkeypatch.setattr(dialer.live, "forget", forgotten)
    assert Dispatcher(dialer).run_once().claimed == 1
    wait_for(lambda: socket_read.is_set() and job_handled.is_set())
    wait_for(lambda: call_id in dialer.media.sessions)  # the fork was started from the held socket
    wait_for(lambda: _transcript(call_id) == [("agent", GREETING)])
    assert dialer.live[call_id].held_here
    voice_trio["owner"].hangup(Call.get_by_id(call_id), "hung up through the API")
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")
    for control in voice_trio.values():
        wait_for(lambda c=control: call_id not in c.live and not c.media.sessions)
    assert _ended(call_id) == 1

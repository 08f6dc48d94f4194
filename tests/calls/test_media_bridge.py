"""MediaBridge: a real WebSocket client speaking mod_audio_fork's protocol to the bridge, real databases,
the scripted agent and fake STT/TTS (a loud tone is "speech"; the fake STT knows what it says)."""
import json
from types import SimpleNamespace

import gevent
import pytest
import websocket

from calls.media import MediaBridge, e164
from calls.media_providers import MediaProviders
from calls.representation import call_to_dict
from models import Agent, Call, CallEvent, WebhookDelivery, utcnow
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, FakeSTT, FakeTTS, Utterance, say, silence, voice
from pipeline.frames import TurnRecord
from pipeline.interfaces import ToolCall
from pipeline.latency import COMPONENTS
from pipeline.providers import ResilientLLM, agent_llm_settings, build_llm
from pipeline.tokens import make_token

SCHEMA = {"type": "object", "properties": {"confirmed": {"type": "boolean"}}, "required": ["confirmed"]}
QUESTION = "Can you confirm your appointment?"


class FakeController:
    """Records what the bridge asks of the call controller."""

    def __init__(self):
        self.hangups, self.breaks, self.transfers, self.unserved = [], [], [], []
        self.transfer_result = True  # what the real controller returns for +OK (False for -ERR)

    def hangup(self, call, reason="hung up through the API", unserved=False):
        self.hangups.append((call.id, reason))
        if unserved:
            self.unserved.append(call.id)

    def break_playback(self, call_id):
        self.breaks.append(call_id)

    def transfer(self, call, target, mode):
        self.transfers.append((call.id, target, mode))
        return self.transfer_result


def wait_for(predicate, timeout=8.0):
    with gevent.Timeout(timeout, AssertionError("condition not met in time")):
        while not predicate():
            gevent.sleep(0.02)


@pytest.fixture
def media_config():
    from config import load_config

    return load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0"}, webhook_allow_private=True)


@pytest.fixture
def agent(org):
    return Agent.create(organization=org, name="Reminder", direction="outbound", greeting="Hello.",
                        # This file's mod_audio_fork-shaped client reads playAudio messages (the files route).
                        settings={"questions": [{"key": "confirmed", "text": QUESTION}], "silence_reprompt_s": 30,
                                  "audio_return": "playaudio"},
                        analysis_schema=SCHEMA)


def live_call(org, agent, **fields):
    values = {"organization": org, "agent": agent, "direction": "outbound", "to_number": "+14155550100",
              "status": "in-progress", "answered_at": utcnow(), "context": {"name": "Ada"}}
    return Call.create(**{**values, **fields})


class Bridge:
    """The bridge under test, with providers the test chooses (caller lines known to the fake STT)."""

    def __init__(self, config):
        self.controller = FakeController()
        self.caller_lines: list[Utterance] = []
        self.llm_replies = None  # None: the agent's own (scripted) LLM from the registry
        self.ms_per_word = 10
        self.bridge = MediaBridge(config, providers=self.providers)
        self.bridge.attach(self.controller)

    def providers(self, agent, info):
        stt = FakeSTT(REAL_CLOCK)
        stt.utterances = list(self.caller_lines)
        if self.llm_replies is None:
            llm = ResilientLLM(build_llm(agent_llm_settings(agent)))
        else:
            llm = FakeLLM(REAL_CLOCK, list(self.llm_replies), latency=0)
        return MediaProviders(stt, llm, FakeTTS(REAL_CLOCK, latency=0, ms_per_word=self.ms_per_word), vad=EnergyVAD())


@pytest.fixture
def harness(db, media_config):
    harness = Bridge(media_config)
    harness.bridge.start()
    yield harness
    harness.bridge.stop()


def connect(url):
    return websocket.create_connection(url, subprotocols=["audio.drachtio.org"], timeout=5)


def messages_until(ws, predicate, limit=50):
    """Text messages received until one matches (the WebSocket close ends the list)."""
    seen = []
    for _ in range(limit):
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return seen
        if opcode == websocket.ABNF.OPCODE_TEXT:
            seen.append(json.loads(data))
            if predicate(seen[-1]):
                return seen
    raise AssertionError(f"no matching message in {seen!r}")


def spoken(message):
    return message.get("type") == "playAudio" and message["data"]["textContent"]


def send_audio(ws, pcm, frame_bytes=3200):
    """In real time, 100 ms at a time, like mod_audio_fork (turn times are mapped from the audio clock)."""
    for i in range(0, len(pcm), frame_bytes):
        try:
            ws.send_binary(pcm[i:i + frame_bytes])
        except OSError:  # the agent hung up: the bridge closed the stream
            return
        gevent.sleep(frame_bytes / 32000)


def test_conversation_lands_on_the_call_and_end_call_reaches_the_controller(harness, org, agent):
    call = live_call(org, agent)
    harness.caller_lines = [Utterance("yes I can", 0.0, 0.4)]
    ws = connect(harness.bridge.media_url(call))
    assert ws.getsubprotocol() == "audio.drachtio.org"
    ws.send(json.dumps({"call_id": call.id, "direction": "outbound"}))
    opening = messages_until(ws, lambda m: QUESTION in (spoken(m) or ""))
    assert "Hello." in " ".join(spoken(m) or "" for m in opening)
    # One stream per call: a second connection with a valid token is refused while this one runs.
    with pytest.raises(websocket.WebSocketBadStatusException) as second:
        connect(harness.bridge.media_url(call))
    assert second.value.status_code == 404
    gevent.sleep(0.3)  # let the opening line "play" (10 ms a word) so the caller does not barge in
    caller = gevent.spawn(send_audio, ws, voice(400) + silence(2000))
    rest = messages_until(ws, lambda m: m.get("type") == "disconnect")
    assert any("Goodbye" in (spoken(m) or "") for m in rest)
    wait_for(lambda: harness.controller.hangups)
    assert harness.controller.hangups == [(call.id, "agent ended the call: script complete")]
    caller.kill()
    ws.close()
    transcript = Call.get_by_id(call.id).transcript
    assert [(t["speaker"], t["interrupted"]) for t in transcript] == [("agent", False), ("caller", False),
                                                                       ("agent", False)]
    assert QUESTION in transcript[0]["text"] and transcript[1]["text"] == "yes I can"
    assert "Goodbye" in transcript[2]["text"]
    base = {"speaker", "text", "start_ms", "end_ms", "interrupted"}
    assert all(set(t) == base | ({"latency"} if t["speaker"] == "agent" else set()) for t in transcript)
    # The reply to the caller's words is measured from their last voiced frame to its first audio out.
    assert set(transcript[2]["latency"]) == set(COMPONENTS) and transcript[2]["latency"]["total_ms"] > 0
    assert transcript[0]["latency"]["total_ms"] is None  # the opening line answers nobody
    summary = call_to_dict(Call.get_by_id(call.id))["latency"]
    assert summary["total_ms"]["count"] == 1 and summary["total_ms"]["max"] == transcript[2]["latency"]["total_ms"]
    assert transcript[0]["end_ms"] <= transcript[1]["start_ms"] <= transcript[1]["end_ms"]

    harness.bridge.on_hangup(call.id)
    wait_for(lambda: WebhookDelivery.select().where(WebhookDelivery.event_type == "call.analyzed").exists())
    assert Call.get_by_id(call.id).answers == {"confirmed": True}
    harness.bridge.finish_call(call.id)  # a repeated hang-up never sends a second call.analyzed
    rows = list(WebhookDelivery.select().where(WebhookDelivery.event_type == "call.analyzed"))
    assert len(rows) == 1 and rows[0].call_id == call.id
    data = json.loads(rows[0].payload)["data"]
    assert data["answers"] == {"confirmed": True} and data["errors"] == [] and data["source"] == "scripted"
    assert data["call_id"] == call.id and [t["text"] for t in data["transcript"]] == [t["text"] for t in transcript]
    assert harness.bridge.sessions == {}


@pytest.mark.parametrize("case", ["bad token", "expired", "other call's token", "ended call", "unknown call",
                                  "no agent"])
def test_unauthenticated_or_unknown_streams_are_refused(harness, org, agent, case):
    call = live_call(org, agent)
    secret = harness.bridge._secret
    port = harness.bridge.server.address[1]
    call_id, token, status = call.id, make_token(call.id, secret, 60), 404
    if case == "bad token":
        token, status = make_token(call.id, "another-secret-0123456789", 60), 401
    elif case == "expired":
        token, status = make_token(call.id, secret, -5), 401
    elif case == "other call's token":
        token, status = make_token(live_call(org, agent).id, secret, 60), 401
    elif case == "ended call":
        Call.update(status="completed").where(Call.id == call.id).execute()
    elif case == "unknown call":
        call_id = "00000000-0000-4000-8000-000000000000"
        token = make_token(call_id, secret, 60)
    elif case == "no agent":
        Call.update(agent=None).where(Call.id == call.id).execute()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(f"ws://127.0.0.1:{port}/audio/{call_id}?token={token}")
    assert refused.value.status_code == status
    assert harness.bridge.sessions == {}
    assert Call.get_by_id(call.id).transcript == []


@pytest.mark.parametrize(("destination", "expected"), [
    ("1000", None), ("+1555", None), ("+99912345678", None), ("sip:evil@example.com", None),
    ("+14155552671", ("+14155552671", "bridge")),
])
def test_transfer_tool_reaches_the_controller_only_with_a_valid_number(harness, org, agent, destination, expected):
    call = live_call(org, agent)
    harness.llm_replies = [say("Let me transfer you.", ToolCall("transfer_call", {"destination": destination,
                                                                                  "reason": "asked"}, "t1"))]
    ws = connect(harness.bridge.media_url(call))
    ws.send(json.dumps({"call_id": call.id}))
    if expected is None:
        messages_until(ws, lambda m: spoken(m) == "Sorry, I couldn't transfer you right now.")
        assert harness.controller.transfers == []
    else:
        messages_until(ws, lambda m: m.get("type") == "transfer")
        assert harness.controller.transfers == [(call.id, *expected)]
    ws.close()


def test_barge_in_breaks_playback_through_the_controller(harness, org, agent):
    call = live_call(org, agent)
    harness.ms_per_word = 300
    harness.caller_lines = [Utterance("wait", 0.0, 0.4)]
    harness.llm_replies = [say("Hello, this is a rather long opening line that nobody wants to hear."), say("Okay.")]
    ws = connect(harness.bridge.media_url(call))
    ws.send(json.dumps({"call_id": call.id}))
    messages_until(ws, spoken)
    gevent.sleep(1.0)  # a few words "played" (300 ms a word), then the caller talks over the agent
    caller = gevent.spawn(send_audio, ws, voice(400) + silence(1000))
    messages_until(ws, lambda m: m.get("type") == "killAudio")
    wait_for(lambda: harness.controller.breaks)
    assert harness.controller.breaks == [call.id]
    messages_until(ws, lambda m: spoken(m) == "Okay.")
    caller.kill()
    ws.close()
    first, second = Call.get_by_id(call.id).transcript[:2]
    assert first["speaker"] == "agent" and first["interrupted"] is True
    assert first["text"].startswith("Hello,") and "nobody" not in first["text"]  # cut to what was played
    assert (second["speaker"], second["text"]) == ("caller", "wait")


def test_transfer_validation_formats_e164():
    assert e164("(415) 555-2671", "US") == "+14155552671"
    assert e164("+44 20 7946 0958") == "+442079460958"
    for junk in ("", "12", "+1 415 555 2671; uuid_kill all", "+14155552671\r\napi", "x" * 40, None):
        assert e164(junk) is None


def test_turns_from_many_calls_at_once_are_all_kept(harness, org, agent):
    calls = [live_call(org, agent) for _ in range(3)]
    jobs = [gevent.spawn(harness.bridge.record_turn, call.id, TurnRecord("caller", f"{call.id}-{n}", n, n + 1))
            for n in range(15) for call in calls]
    gevent.joinall(jobs, timeout=20, raise_error=True)
    for call in calls:
        texts = sorted(t["text"] for t in Call.get_by_id(call.id).transcript)
        assert texts == sorted(f"{call.id}-{n}" for n in range(15))


def test_dtmf_reaches_the_session(harness, org, agent):
    call = live_call(org, agent)
    harness.llm_replies = [say("Press a key."), say("You pressed it.")]
    ws = connect(harness.bridge.media_url(call))
    ws.send(json.dumps({"call_id": call.id}))
    messages_until(ws, lambda m: spoken(m) == "Press a key.")
    gevent.sleep(0.2)
    harness.bridge.on_dtmf(call.id, "4")
    harness.bridge.on_dtmf(call.id, "#")
    messages_until(ws, lambda m: spoken(m) == "You pressed it.")
    wait_for(lambda: len(Call.get_by_id(call.id).transcript) >= 2)
    assert {"speaker": "caller", "text": "4", "source": "dtmf"}.items() <= Call.get_by_id(call.id).transcript[1].items()
    harness.bridge.on_hangup(call.id)  # the call ended: the bridge ends the stream and the session
    assert ws.recv_data(control_frame=True)[0] == websocket.ABNF.OPCODE_CLOSE
    wait_for(lambda: WebhookDelivery.select().where(WebhookDelivery.call_id == call.id).exists())
    assert harness.bridge.sessions == {}
    ws.close()


class JsonLLM:
    def __init__(self, reply):
        self.reply, self.asked = reply, []

    def complete_json(self, system_prompt, user_text):
        self.asked.append(user_text)
        return self.reply


def test_llm_analysis_errors_are_sent_and_no_schema_sends_null_answers(db, org, agent, media_config):
    llm = JsonLLM({"confirmed": "yes"})
    bridge = MediaBridge(media_config, analysis_llm=lambda _agent: llm)
    call = live_call(org, agent, transcript=[{"speaker": "caller", "text": "yes"}])
    bridge.finish_call(call.id)
    assert llm.asked == ["Caller: yes"]
    row = WebhookDelivery.get(WebhookDelivery.event_type == "call.analyzed")
    data = json.loads(row.payload)["data"]
    # Answers that break the schema are neither stored nor sent; the reason is, on the event and the call.
    assert data["answers"] is None and data["source"] == "llm"
    assert data["errors"] == ["$.confirmed: expected boolean, got string"]
    assert Call.get_by_id(call.id).answers is None
    event = CallEvent.get(CallEvent.call == call.id, CallEvent.reason == "analysis rejected")
    assert event.data == {"errors": ["$.confirmed: expected boolean, got string"]}

    plain = Agent.create(organization=org, name="Plain", direction="outbound")
    other = live_call(org, plain)
    bridge.finish_call(other.id)
    data = json.loads(WebhookDelivery.get(WebhookDelivery.call_id == other.id).payload)["data"]
    assert data["answers"] is None and data["errors"] == [] and Call.get_by_id(other.id).answers is None

    unanswered = live_call(org, agent, status="no-answer", answered_at=None)
    bridge.finish_call(unanswered.id)
    assert not WebhookDelivery.select().where(WebhookDelivery.call_id == unanswered.id).exists()


def test_bridge_sessions_use_the_deployments_provider_timeout(db, org, agent):
    from config import load_config

    bridge = MediaBridge(load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0", "PROVIDER_TIMEOUT": "3"}),
                         providers=lambda agent_row, info: MediaProviders(FakeSTT(REAL_CLOCK), FakeLLM(REAL_CLOCK, []),
                                                                          FakeTTS(REAL_CLOCK), vad=EnergyVAD()))
    call = live_call(org, agent)
    from pipeline.server import StreamInfo

    session = bridge.session_factory(StreamInfo(call.id, call, {}, 16000, "test"), lambda frame: None)
    assert session.config.provider_timeout == 3


class Caller:
    """mod_audio_fork's side of the call: a continuous real-time stream of silence with speech spliced in."""

    def __init__(self, ws, sample_rate=16000):
        self.ws, self.rate, self.pending = ws, sample_rate, bytearray()
        self.greenlet = gevent.spawn(self._stream)

    def say(self, pcm):
        self.pending += pcm

    def _stream(self):
        chunk = self.rate // 10 * 2  # 100 ms
        while True:
            piece, self.pending[:chunk] = bytes(self.pending[:chunk]), b""
            try:
                self.ws.send_binary(piece.ljust(chunk, b"\0"))
            except OSError:
                return
            gevent.sleep(0.1)


@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_offline_call_with_espeak_and_pocketsphinx(db, org, media_config, rate):
    """The keyless default path: pocketsphinx hears an espeak-ng caller, the scripted agent answers in espeak-ng.
    At 8 kHz the caller's audio is resampled for pocketsphinx (16 kHz) and espeak-ng's voice to the call's rate."""
    import base64

    from pipeline.providers import build_tts

    agent = Agent.create(organization=org, name="Offline", direction="outbound", greeting="Hello.",
                         settings={"questions": [{"key": "confirmed", "text": "Will you come tomorrow?"}],
                                   "audio_return": "playaudio"},
                         analysis_schema=SCHEMA)
    call = live_call(org, agent)
    controller = FakeController()
    bridge = MediaBridge(media_config, controller)
    bridge.start()
    try:
        ws = connect(bridge.media_url(call))
        ws.settimeout(30)  # each reply waits on pocketsphinx and espeak-ng: generous on a loaded 2-core machine
        ws.send(json.dumps({"call_id": call.id, "sampleRate": rate}))
        caller = Caller(ws, rate)
        opening = messages_until(ws, lambda m: "tomorrow" in (spoken(m) or ""))
        assert {m["data"]["sampleRate"] for m in opening if spoken(m)} == {rate}
        played = sum(len(base64.b64decode(m["data"]["audioContent"])) for m in opening if spoken(m)) / (rate * 2)
        gevent.sleep(played + 0.5)  # the caller listens to the whole question, played from when it arrived
        voice_f2 = build_tts({"provider": "espeak", "voice": "en-us+f2", "words_per_minute": 150})
        answer = b"".join(voice_f2.synthesize("Yes, I will.", rate))
        caller.say(answer)
        # Like a person (and the web-call tests' caller): asked again, the caller answers again. pocketsphinx on
        # a loaded machine can finish a final after the session stopped waiting for it; the re-prompt is then
        # the agent's way of asking, and the conversation goes on. Bounded: three answers at most.
        rest = []
        for _ in range(3):
            rest += messages_until(ws, lambda m: m.get("type") == "disconnect"
                                   or (spoken(m) or "").startswith("Are you still there"), limit=100)
            if rest and rest[-1].get("type") == "disconnect":
                break
            gevent.sleep(2.0)  # the re-prompt plays (about 1.3 s), then the caller answers it
            caller.say(answer)
        caller.greenlet.kill()
        ws.close()
    finally:
        bridge.stop()
    assert any("Goodbye" in (spoken(m) or "") for m in rest)
    assert controller.hangups == [(call.id, "agent ended the call: script complete")]
    bridge.finish_call(call.id)
    transcript = Call.get_by_id(call.id).transcript
    speakers = [t["speaker"] for t in transcript]
    assert speakers[0] == "agent" and speakers[-2:] == ["caller", "agent"] and "caller" in speakers
    assert transcript[1]["text"].strip()  # offline recognition is loose ("i will"); the scripted agent copes
    assert Call.get_by_id(call.id).answers == {"confirmed": True}


def test_registry_providers_offline_defaults_and_cloud_fallbacks(db, org, agent):
    from config import load_config

    offline = MediaBridge(load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0"}))
    providers = offline.build_providers(agent, None)
    assert (providers.stt.name, providers.llm.name, providers.tts.name) == ("pocketsphinx", "scripted", "espeak")
    assert isinstance(providers.llm, ResilientLLM) and providers.vad is None
    cloud = Agent.create(organization=org, name="Cloud", direction="outbound", voice="voice-123",
                         llm={"provider": "openai", "model": "gpt-4o-mini"}, tts={"provider": "elevenlabs"})
    keyed = MediaBridge(load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0", "OPENAI_API_KEY": "sk-test",
                                     "ELEVENLABS_API_KEY": "el-test"}))
    providers = keyed.build_providers(cloud, None)
    assert providers.llm.name == "openai" and providers.tts.name == "elevenlabs+espeak"
    assert "sk-test" not in repr(keyed) and keyed._secret not in repr(keyed)


def test_a_cloud_provider_that_cannot_be_built_falls_back_to_the_offline_one(db, org, monkeypatch):
    from config import load_config

    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    keyless = Agent.create(organization=org, name="No keys", direction="outbound", voice="voice-123",
                           stt={"provider": "deepgram"}, llm={"provider": "openai", "model": "gpt-4o-mini"},
                           tts={"provider": "elevenlabs"}, settings={"questions": [{"key": "q", "text": QUESTION}]})
    bridge = MediaBridge(load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0"}))
    call = Call.create(organization=org, agent=keyless, direction="outbound", to_number="+14155550100",
                       from_number="+14155550199", status="in-progress")
    providers = bridge.build_providers(keyless, SimpleNamespace(call=call))
    assert (providers.stt.name, providers.llm.name, providers.tts.name) == ("pocketsphinx", "scripted", "espeak")
    assert isinstance(providers.llm, ResilientLLM)
    # Never silent: each fallback is on the call's timeline, naming the provider and the missing key.
    fallbacks = {e.data["kind"]: e.data["detail"] for e in CallEvent.select().where(CallEvent.call == call.id)
                 if e.reason.startswith("provider fallback")}
    assert set(fallbacks) == {"stt", "llm", "tts"}
    assert "DEEPGRAM_API_KEY" in fallbacks["stt"] and "OPENAI_API_KEY" in fallbacks["llm"]
    # The scripted agent runs this agent's own script, and espeak-ng speaks (the cloud voice id is dropped).
    opening = "".join(e.text for e in providers.llm.stream("", {}, []) if hasattr(e, "text"))
    assert QUESTION in opening
    assert b"".join(providers.tts.synthesize("Hello.", 16000))


def test_a_session_that_cannot_start_even_offline_hangs_the_call_up_with_a_reason(harness, org, agent):
    from pipeline.providers import ProviderConfigError

    bad, good = live_call(org, agent), live_call(org, agent)

    def broken(agent_row, info):
        raise ProviderConfigError("espeak-ng is not installed", provider="espeak")

    harness.bridge.build_providers = broken
    ws = connect(harness.bridge.media_url(bad))
    ws.send(json.dumps({"call_id": bad.id}))
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1011
    wait_for(lambda: harness.controller.hangups)
    assert harness.controller.hangups == [
        (bad.id, "voice pipeline could not start: espeak: espeak-ng is not installed")]
    assert harness.controller.unserved == [bad.id]  # the call ends failed, not completed (issue 12, #8)
    assert bad.id not in harness.bridge.sessions
    harness.bridge.build_providers = harness.providers  # another call is unaffected
    ws = connect(harness.bridge.media_url(good))
    ws.send(json.dumps({"call_id": good.id}))
    assert messages_until(ws, lambda m: QUESTION in (spoken(m) or ""))
    ws.close()
    assert [call_id for call_id, _ in harness.controller.hangups] == [bad.id]


def test_a_transfer_the_controller_refuses_is_apologised_for_and_the_call_goes_on(harness, org, agent):
    call = live_call(org, agent)
    harness.controller.transfer_result = False  # the switch answered -ERR
    harness.llm_replies = [say("Let me transfer you.", ToolCall("transfer_call", {"destination": "+14155552671",
                                                                                  "reason": "asked"}, "t1")),
                           say("Anything else?")]
    ws = connect(harness.bridge.media_url(call))
    ws.send(json.dumps({"call_id": call.id}))
    seen = messages_until(ws, lambda m: spoken(m) == "Sorry, I couldn't transfer you right now.")
    assert harness.controller.transfers == [(call.id, "+14155552671", "bridge")]
    assert not any(m.get("type") in ("transfer", "disconnect") for m in seen)
    session = harness.bridge.sessions[call.id]
    assert not session.ended and harness.controller.hangups == []
    ws.close()


def test_end_session_records_the_cut_off_agent_turn_before_returning(harness, org, agent):
    call = live_call(org, agent)
    harness.ms_per_word = 300
    harness.llm_replies = [say("Hello, this is a rather long opening line that takes a while to play.")]
    ws = connect(harness.bridge.media_url(call))
    ws.send(json.dumps({"call_id": call.id}))
    messages_until(ws, spoken)
    gevent.sleep(0.7)
    harness.bridge.end_session(call.id)  # what the controller calls before it writes call.ended
    (turn,) = Call.get_by_id(call.id).transcript
    assert turn["speaker"] == "agent" and turn["interrupted"] is True and "while" not in turn["text"]
    assert harness.bridge.sessions[call.id].ended
    ws.close()


def test_a_quiet_audio_stream_is_kept_while_its_call_is_up(harness, org, agent):
    # The audio server asks this when a stream has sent nothing for its idle timeout (silence suppression).
    call = live_call(org, agent)
    assert harness.bridge.server.call_is_live == harness.bridge.call_is_live
    assert harness.bridge.call_is_live(call.id) is True
    Call.update(status="completed").where(Call.id == call.id).execute()
    assert harness.bridge.call_is_live(call.id) is False
    assert harness.bridge.call_is_live("00000000-0000-4000-8000-000000000000") is False


@pytest.mark.parametrize(("metadata", "hinted"), [({"narrowband": True}, True), ({"narrowband": False}, False),
                                                  ({}, False)])
def test_a_narrowband_legs_stream_tells_the_offline_recognizer(db, org, agent, metadata, hinted):
    from config import load_config
    from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT
    from pipeline.server import StreamInfo

    stt = PocketsphinxSTT()
    bridge = MediaBridge(load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0"}),
                         providers=lambda agent_row, info: MediaProviders(stt, FakeLLM(REAL_CLOCK, []),
                                                                          FakeTTS(REAL_CLOCK), vad=EnergyVAD()))
    call = live_call(org, agent)
    session = bridge.session_factory(StreamInfo(call.id, call, metadata, 16000, "test"), lambda frame: None)
    assert stt.narrowband_leg is hinted
    session.stop("test over")

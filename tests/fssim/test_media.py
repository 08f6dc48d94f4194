"""Outbound socket (inbound calls to a DID), mod_audio_fork streaming, playAudio files, what the far end heard."""
import array
import base64
import json
import math
import socket
import wave

import gevent
import gevent.event
import numpy as np
import pytest
from websockets.sync.server import serve

from fssim.g711 import pcmu_round_trip
from tests.fssim.eslclient import EslClient


@pytest.fixture
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(5)
    yield srv
    srv.close()


@pytest.fixture
def ws_server():
    """A mod_audio_fork server in a thread: records texts and binary frames, can send messages."""
    state = {"texts": [], "frames": [], "ws": None, "connected": gevent.event.Event()}

    def handler(ws):
        state["ws"] = ws
        state["subprotocol"] = ws.subprotocol
        for msg in ws:
            (state["texts"] if isinstance(msg, str) else state["frames"]).append(msg)

    server = serve(handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"])
    import threading

    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    state["url"] = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/audio/c1"
    yield state
    server.shutdown()


def wait_for(pred, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if pred():
            return True
        gevent.sleep(0.05)
    return pred()


def tone_wav(path, seconds=0.5, rate=16000):
    n = int(seconds * rate)
    pcm = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm.tobytes()


def test_inbound_call_to_a_did_through_the_socket_app(sim, esl, listener, tmp_path):
    wav = tmp_path / "hello.wav"
    pcm = tone_wav(wav, 0.2)
    ch = sim.inbound_call("+15550001111", f"127.0.0.1:{listener.getsockname()[1]}", caller="15557654321")
    app = EslClient.accept(listener)
    rep = app.cmd("connect")
    assert rep.headers["Caller-Destination-Number"] == "%2B15550001111"
    assert rep.headers["Answer-State"] == "ringing" and rep.headers["Call-Direction"] == "inbound"
    assert rep.header_order[-4:] == ["Content-Type", "Reply-Text", "Socket-Mode", "Control"]
    assert app.cmd("myevents json").headers["Reply-Text"] == "+OK Events Enabled"
    assert app.cmd("linger").headers["Reply-Text"] == "+OK will linger"
    assert app.cmd("sendmsg\ncall-command: execute\nexecute-app-name: answer").headers["Reply-Text"] == "+OK"
    assert app.event("CHANNEL_ANSWER", Unique_ID=ch.uuid)["Answer-State"] == "answered"
    app.cmd(f"sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: {wav}")
    done = app.event("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert done["Application-Response"] == "FILE PLAYED"
    assert sim.heard(ch.uuid) == pcm
    assert app.api(f"uuid_exists {ch.uuid}") == "true"  # full control: api works
    app.cmd("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    assert app.event("CHANNEL_HANGUP_COMPLETE")["Hangup-Cause"] == "NORMAL_CLEARING"
    notice = app.take(lambda f: f.ctype == "text/disconnect-notice")
    assert notice.headers["Content-Disposition"] == "linger"
    assert notice.headers["Controlled-Session-UUID"] == ch.uuid
    assert notice.headers["Linger-Time"] == "-1"
    # A bare linger lingers until the client closes: the switch keeps the socket and the hung-up session
    # (its row in `show channels`, no CHANNEL_DESTROY yet) however long the app keeps it.
    assert app.api(f"uuid_exists {ch.uuid}") == "false"
    assert "1 total." in esl.api("show channels count") and not app.closed
    app.close()
    assert wait_for(lambda: "0 total." in esl.api("show channels count"))


def test_linger_with_seconds_closes_the_socket_after_them(sim, esl, listener):
    ch = sim.inbound_call("+15550001111", f"127.0.0.1:{listener.getsockname()[1]}", caller="15557654321")
    app = EslClient.accept(listener)
    app.cmd("connect")
    app.cmd("myevents json")
    assert app.cmd("linger 1").headers["Reply-Text"] == "+OK will linger 1 seconds"
    app.cmd("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    notice = app.take(lambda f: f.ctype == "text/disconnect-notice")
    assert notice.headers["Linger-Time"] == "1"
    assert wait_for(lambda: app.closed, timeout=10)  # the switch closes it once the seconds have passed
    assert wait_for(lambda: "0 total." in esl.api("show channels count"))
    assert ch.uuid not in sim.switch.held


def test_unquoted_socket_app_is_static_and_not_full(sim, esl, listener):
    port = listener.getsockname()[1]
    esl.cmd(f"bgapi originate loopback/9196/default &socket(127.0.0.1:{port} async full)")
    app = EslClient.accept(listener)
    rep = app.cmd("connect")
    assert (rep.headers["Socket-Mode"], rep.headers["Control"]) == ("static", "single-channel")
    for cmd in ("linger", "event json ALL", "api status"):
        assert app.cmd(cmd).headers["Reply-Text"] == "-ERR command not found", cmd
    app.close()


def test_app_closing_the_socket_ends_the_call(sim, esl, listener):
    esl.cmd("event json CHANNEL_HANGUP_COMPLETE")
    ch = sim.inbound_call("+15550001111", f"127.0.0.1:{listener.getsockname()[1]}")
    app = EslClient.accept(listener)
    app.cmd("connect")
    app.close()
    assert esl.event("CHANNEL_HANGUP_COMPLETE", Unique_ID=ch.uuid)


def test_audio_fork_streams_the_far_end_wav_in_real_time(sim, esl, ws_server, tmp_path):
    wav = tmp_path / "caller.wav"
    pcm8k = tone_wav(wav, 0.4, rate=8000)
    sim.rules.rules.insert(0, __import__("fssim").Rule("^77", audio=str(wav)))
    esl.cmd("event json CUSTOM mod_audio_fork::connect mod_audio_fork::disconnect")
    u = esl.api("originate sofia/external/7700@127.0.0.1 &park()")[4:-1]
    assert esl.api(f"uuid_audio_fork {u} start {ws_server['url']} mono 8k {{\"callId\":\"c1\"}}") == "+OK Success\n"
    assert esl.event("mod_audio_fork::connect", Unique_ID=u)
    assert wait_for(lambda: len(ws_server["frames"]) >= 25)
    assert ws_server["texts"][0] == '{"callId":"c1"}' and ws_server["subprotocol"] == "audio.drachtio.org"
    frames = ws_server["frames"]
    assert all(len(f) == 320 for f in frames)
    # The WAV frame by frame, as its 8 kHz PCMU leg carries it (the μ-law round trip).
    assert b"".join(frames[:20]) == pcmu_round_trip(np.frombuffer(pcm8k[:6400], "<i2")).tobytes()
    assert esl.api(f"uuid_audio_fork {u} pause") == "+OK Success\n"
    assert esl.api(f"uuid_audio_fork {u} bogus") == "-ERR Operation Failed\n"
    ws_server["ws"].close()
    assert esl.event("mod_audio_fork::disconnect", Unique_ID=u)


def test_play_audio_kill_audio_and_server_messages(sim, esl, ws_server, tmp_path):
    esl.cmd("event json CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE CUSTOM mod_audio_fork::connect "
            "mod_audio_fork::play_audio mod_audio_fork::kill_audio mod_audio_fork::transcription "
            "mod_audio_fork::error mod_audio_fork::json")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    esl.api(f"uuid_audio_fork {u} start {ws_server['url']} mono 16k")
    assert esl.event("mod_audio_fork::connect")
    pcm = bytes(range(256)) * 10
    ws = ws_server["ws"]
    ws.send(json.dumps({"type": "playAudio", "data": {"audioContentType": "raw", "sampleRate": 16000,
                                                      "audioContent": base64.b64encode(pcm).decode(),
                                                      "textContent": "hello there"}}))
    info = json.loads(esl.event("mod_audio_fork::play_audio", Unique_ID=u)["_body"])
    assert info["file"] == f"{tmp_path}/{u}_2.tmp.r16" and list(info) == [
        "audioContentType", "sampleRate", "textContent", "file"]
    with open(info["file"], "rb") as fh:
        assert fh.read() == pcm
    assert esl.api(f"uuid_broadcast {u} {info['file']} aleg") == "+OK Message sent\n"
    assert wait_for(lambda: sim.heard(u) == pcm)
    ws.send('{"type": "transcription", "data": {"text": "hi"}}')
    assert esl.event("mod_audio_fork::transcription")["_body"] == '{"text":"hi"}'
    ws.send("not json at all")
    ws.send('{"type": "error", "data": {"reason": "test"}}')
    assert esl.event("mod_audio_fork::error")["_body"] == '{"reason":"test"}'
    ws.send('{"type": "killAudio"}')
    assert esl.event("mod_audio_fork::kill_audio", Unique_ID=u)
    assert esl.api(f"uuid_exists {u}") == "true"  # a parked call stays up
    assert esl.api(f"uuid_audio_fork {u} stop {{\"final\":true}}") == "+OK Success\n"
    assert wait_for(lambda: ws_server["texts"][-1:] == ['{"final":true}'])


def test_a_broadcast_waits_for_the_broadcast_playing_before_it(sim, esl, tmp_path):
    """uuid_broadcast queues its playback as a private event with event-lock (switch_ivr_broadcast): the
    next one is not dequeued until the running one ends, so the agent's sentences, each a playAudio file
    broadcast as soon as it is written, play one after the other. The simulator cut the first short."""
    esl.cmd("event json CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    first, second = tmp_path / "first.r16", tmp_path / "second.r16"
    first.write_bytes(b"\x01\x00" * 16000)  # 1.0 s at 16 kHz
    second.write_bytes(b"\x02\x00" * 3200)
    assert esl.api(f"uuid_broadcast {u} {first} aleg") == "+OK Message sent\n"
    started = esl.event("CHANNEL_EXECUTE", Application_Data=str(first))
    assert esl.api(f"uuid_broadcast {u} {second} aleg") == "+OK Message sent\n"
    ended = esl.event("CHANNEL_EXECUTE_COMPLETE", timeout=30, Application_Data=str(first))
    assert ended["Application-Response"] == "FILE PLAYED"
    played_us = int(ended["Event-Date-Timestamp"]) - int(started["Event-Date-Timestamp"])
    assert played_us >= 1_000_000  # played to its end, not broken by the next broadcast
    assert esl.event("CHANNEL_EXECUTE_COMPLETE", timeout=30, Application_Data=str(second))
    assert esl.api(f"uuid_exists {u}") == "true"  # still parked


def test_uuid_break_all_also_drops_the_broadcasts_waiting_their_turn(sim, esl, tmp_path):
    """What barge-in sends: the sentence playing stops and the agent's queued sentences are not played."""
    esl.cmd("event json CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    files = [tmp_path / f"{name}.r16" for name in ("playing", "queued", "after")]
    for path in files:
        path.write_bytes(b"\x01\x00" * 160000)  # 10 s each
    esl.api(f"uuid_broadcast {u} {files[0]} aleg")
    assert esl.event("CHANNEL_EXECUTE", timeout=30, Application_Data=str(files[0]))
    esl.api(f"uuid_broadcast {u} {files[1]} aleg")
    assert esl.api(f"uuid_break {u} all") == "+OK\n"
    assert esl.event("CHANNEL_EXECUTE_COMPLETE", timeout=30, Application_Data=str(files[0]))
    esl.api(f"uuid_broadcast {u} {files[2]} aleg")
    assert esl.event("CHANNEL_EXECUTE", timeout=30, Application_Data=str(files[2]))
    assert esl.event("CHANNEL_EXECUTE", timeout=0, Application_Data=str(files[1])) is None  # never played
    assert esl.api(f"uuid_break {u}") == "+OK\n"  # without `all`: only what plays
    assert esl.event("CHANNEL_EXECUTE_COMPLETE", timeout=30, Application_Data=str(files[2]))


def test_kill_audio_ends_a_call_whose_last_app_is_echo(sim, esl, ws_server):
    esl.cmd("event json CHANNEL_HANGUP_COMPLETE CUSTOM mod_audio_fork::connect")
    u = esl.api("originate loopback/9196/default &echo()")[4:-1]
    esl.api(f"uuid_audio_fork {u} start {ws_server['url']} mono 16k")
    assert esl.event("mod_audio_fork::connect")
    ws_server["ws"].send('{"type":"killAudio"}')
    assert esl.event("CHANNEL_HANGUP_COMPLETE", Unique_ID=u)["Hangup-Cause"] == "NORMAL_CLEARING"


def test_bidirectional_audio_is_heard_only_while_the_channel_writes(sim, esl, ws_server):
    esl.cmd("event json CHANNEL_EXECUTE CUSTOM mod_audio_fork::connect")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    meta = '{"callId":"c1"}'
    assert esl.api(f"uuid_audio_fork {u} start {ws_server['url']} mono 16k audio_fork {meta} true true 16000") \
        == "+OK Success\n"
    assert esl.event("mod_audio_fork::connect")
    assert wait_for(lambda: ws_server["texts"] == [meta])
    ws = ws_server["ws"]
    ws.send(b"\x01\x00" * 320)  # parked: nothing is heard
    gevent.sleep(0.2)
    assert sim.heard(u) == b""
    # Parked with a uuid_broadcast of silence: still nothing (the capture's second case).
    assert esl.api(f"uuid_broadcast {u} silence_stream://2000 aleg") == "+OK Message sent\n"
    assert esl.event("CHANNEL_EXECUTE", Application="playback")
    ws.send(b"\x03\x00" * 320)
    gevent.sleep(0.2)
    assert sim.heard(u) == b""
    esl.cmd(f"sendmsg {u}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: silence_stream://-1")
    assert esl.event("CHANNEL_EXECUTE", Application="playback")
    ws.send(b"\x02\x00" * 320)
    assert wait_for(lambda: sim.heard(u) == b"\x02\x00" * 320)


def test_audio_fork_unreachable_and_missing_channel(sim, esl):
    esl.cmd("event json CUSTOM mod_audio_fork::connect_failed")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    assert esl.api(f"uuid_audio_fork {u} start ws://127.0.0.1:1/x mono 16k") == "+OK Success\n"
    assert esl.event("mod_audio_fork::connect_failed")["_body"] == '{"reason":"Unable to connect"}'
    assert esl.api("uuid_audio_fork 00000000-0000-4000-8000-000000000000 start ws://127.0.0.1:1/ mono 16k") \
        == "-ERR Operation Failed\n"
    assert esl.api(f"uuid_audio_fork {u} start http://x/ mono 16k") == "-ERR Operation Failed\n"


def test_say_speaks_into_the_live_audio_stream():
    """Simulator.say queues far-end speech behind the channel's WAV; the fork streams it in real time."""
    from fssim.media import AudioSource

    live = bytearray()
    source = AudioSource(None, 8000, live)
    assert source.next_frame() == bytes(320)
    live.extend(b"\x10\x00" * 640)  # 40 ms at 16 kHz
    frames = [source.next_frame() for _ in range(3)]
    assert frames[0] != bytes(320) and frames[1] != bytes(320) and frames[2] == bytes(320)


def test_bidirectional_fork_without_a_bug_name_shifts_its_arguments_and_plays_nothing_back(sim, esl, ws_server):
    """The ten-argument form is positional: leaving out the bug name makes the metadata the bug name, "true" the
    metadata, and "16000" the streaming flag, so binary frames are not played even while the call writes audio."""
    esl.cmd("event json CHANNEL_EXECUTE CUSTOM mod_audio_fork::connect")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    esl.cmd(f"sendmsg {u}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: silence_stream://-1")
    assert esl.event("CHANNEL_EXECUTE", Application="playback")
    assert esl.api(f'uuid_audio_fork {u} start {ws_server["url"]} mono 16k {{"callId":"c1"}} true true 16000') \
        == "+OK Success\n"
    assert esl.event("mod_audio_fork::connect")
    assert wait_for(lambda: ws_server["texts"] == ["true"])
    ws_server["ws"].send(b"\x02\x00" * 320)
    gevent.sleep(0.2)
    assert sim.heard(u) == b""
    assert sim.channel(u).writing_audio  # it was not for want of a playback


def test_binary_frames_are_not_heard_through_echo(sim, esl, ws_server):
    esl.cmd("event json CUSTOM mod_audio_fork::connect")
    u = esl.api("originate loopback/9196/default &echo()")[4:-1]
    assert esl.api(f'uuid_audio_fork {u} start {ws_server["url"]} mono 16k audio_fork {{}} true true 16000') \
        == "+OK Success\n"
    assert esl.event("mod_audio_fork::connect")
    ws_server["ws"].send(b"\x02\x00" * 320)
    gevent.sleep(0.2)
    assert sim.heard(u) == b""


def test_on_event_hands_listeners_every_event_and_survives_a_restart(sim, esl):
    """The hook a scripted far end (the demo's caller) reacts with: every event, in the emitting greenlet."""
    seen, broken = [], []
    sim.on_event(lambda ev: broken.append(1) or 1 / 0)  # a failing listener must not stop the others
    sim.on_event(lambda ev: seen.append((ev.name, ev.unique_id, ev.get("Application"))))
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    assert ("CHANNEL_ANSWER", u, None) in seen and ("CHANNEL_EXECUTE", u, "park") in seen
    assert esl.api(f"uuid_kill {u}") == "+OK\n"
    assert wait_for(lambda: ("CHANNEL_HANGUP_COMPLETE", u, None) in seen)
    sim.restart()
    c = EslClient.connect("127.0.0.1", sim.port)
    c.auth("ClueCon")
    again = c.api("originate loopback/9196/default &park()")[4:-1]
    assert ("CHANNEL_ANSWER", again, None) in seen and len(broken) == len(seen)
    c.close()

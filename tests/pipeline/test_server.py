"""The mod_audio_fork WebSocket server against a real WebSocket client, replaying frames shaped like the captures."""
import base64
import json
import socket

import gevent
import pytest
import websocket

from pipeline.audio import validate_pcm
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, FakeSTT, FakeTTS, say, voice
from pipeline.frames import EndCall, Interrupt, TTSAudio
from pipeline.server import AudioForkServer
from pipeline.session import Session, SessionCallbacks, SessionConfig
from pipeline.tokens import make_token

SECRET = "test-secret-0123456789abcdef"
OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE = 1, 2, 8


class RecordingSession:
    """Stands in for a Session: records what the server delivers, says one line on start."""

    def __init__(self, info, send):
        self.info, self.send = info, send
        self.audio, self.digits, self.ended, self.reason = bytearray(), [], False, None

    def start(self):
        self.send(TTSAudio(bytes(640), self.info.sample_rate, "Hello"))

    def push_audio(self, pcm):
        validate_pcm(pcm)
        self.audio += pcm

    def push_dtmf(self, digit):
        self.digits.append(digit)

    def stop(self, reason="closed"):
        self.ended, self.reason = True, reason


@pytest.fixture
def server():
    sessions = {}
    live_calls = {"call-123", "call-a", "call-b", "call-c", "call-d", "call-e", "call-bad"}

    def factory(info, send):
        sessions[info.call_id] = RecordingSession(info, send)
        return sessions[info.call_id]

    srv = AudioForkServer(factory, lambda call_id: {"id": call_id} if call_id in live_calls else None, SECRET)
    srv.start()
    srv.sessions = sessions
    yield srv
    srv.stop(timeout=2)


def url(srv, call_id, token=None):
    token = make_token(call_id, SECRET, 60) if token is None else token
    return f"ws://127.0.0.1:{srv.address[1]}/audio/{call_id}?token={token}"


def connect(address):
    return websocket.create_connection(address, subprotocols=["audio.drachtio.org"], timeout=5)


def recv(ws):
    opcode, data = ws.recv_data(control_frame=True)
    return opcode, data


def wait_for(predicate, timeout=5.0):
    with gevent.Timeout(timeout, AssertionError("condition not met in time")):
        while not predicate():
            gevent.sleep(0.01)


def capture_frames(captures_dir):
    rows = [json.loads(line) for line in (captures_dir / "audio-fork-ws.jsonl").read_text().splitlines()]
    metadata = next(r["data"] for r in rows if r["kind"] == "text" and r["dir"] == "fs2ws")
    audio = [base64.b64decode(r["data"]).ljust(r["length"], b"\0") for r in rows if r["kind"] == "binary"]
    return metadata, audio


def test_replays_capture_shaped_stream(server, captures_dir):
    metadata, audio = capture_frames(captures_dir)
    ws = connect(url(server, "call-123"))
    assert ws.getsubprotocol() == "audio.drachtio.org"
    ws.send(metadata)
    opcode, data = recv(ws)
    message = json.loads(data)
    assert opcode == OPCODE_TEXT and message["type"] == "playAudio"
    assert set(message["data"]) == {"audioContentType", "sampleRate", "audioContent", "textContent"}
    assert message["data"]["audioContentType"] == "raw" and message["data"]["sampleRate"] == 16000
    assert base64.b64decode(message["data"]["audioContent"]) == bytes(640)
    for frame in audio:
        ws.send_binary(frame)
    ws.send_binary(bytes(1000))  # any length: mod_audio_fork writes what has built up
    ws.send('{"note":"mid-call"}')  # send_text: ignored
    ws.send("not json at all")
    ws.send('{"dtmf":"5"}')
    ws.send_binary(b"")  # graceful shutdown
    opcode, data = recv(ws)
    assert opcode == OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1000
    session = server.sessions["call-123"]
    wait_for(lambda: session.ended)
    assert bytes(session.audio) == b"".join(audio) + bytes(1000)
    assert session.digits == ["5"] and session.reason == "caller stream ended"
    assert json.loads(metadata) == session.info.metadata and session.info.call == {"id": "call-123"}


@pytest.mark.parametrize(("call_id", "token", "status"), [
    ("call-123", "", 401),
    ("call-123", "123.deadbeef", 401),
    ("call-123", make_token("call-123", SECRET, -5), 401),
    ("call-123", make_token("call-a", SECRET, 60), 401),
    ("call-ended", None, 404),
])
def test_refuses_bad_tokens_and_unknown_calls(server, call_id, token, status):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(url(server, call_id, token))
    assert refused.value.status_code == status
    assert server.sessions == {}


def test_refuses_unknown_path(server):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(f"ws://127.0.0.1:{server.address[1]}/other/call-123")
    assert refused.value.status_code == 404


@pytest.mark.parametrize("first", ['"call-123",', "not json", b"\x00\x01"])
def test_bad_metadata_closes_the_stream(server, first):
    ws = connect(url(server, "call-123"))
    ws.send_binary(first) if isinstance(first, bytes) else ws.send(first)
    opcode, data = recv(ws)
    assert opcode == OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1003
    assert "call-123" not in server.sessions


def test_odd_audio_closes_only_that_stream(server):
    ws = connect(url(server, "call-123"))
    ws.send('{"callId":"call-123"}')
    recv(ws)
    ws.send_binary(bytes(641))
    opcode, data = recv(ws)
    assert opcode == OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1003
    wait_for(lambda: server.sessions["call-123"].ended)


def _good_call(server, call_id, results):
    ws = connect(url(server, call_id))
    ws.send(json.dumps({"callId": call_id, "sampleRate": 8000}, separators=(",", ":")))
    assert json.loads(recv(ws)[1])["data"]["sampleRate"] == 8000
    for size in (320, 320, 500, 140, 320):
        ws.send_binary(bytes([len(call_id)]) * size)
        gevent.sleep(0.01)
    ws.send_binary(b"")
    results[call_id] = recv(ws)[0]


def _misbehave(server, how):
    if how == "raw-junk":
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            sock.recv(1024)
        return
    ws = connect(url(server, "call-bad"))
    if how == "odd-audio":
        ws.send('{"callId":"call-bad"}')
        ws.send_binary(b"\x01\x02\x03")
    elif how == "huge":
        ws.send('{"callId":"call-bad"}')
        ws.send_binary(bytes(2 << 20))
    elif how == "text-flood":
        ws.send("x" * 100)
    try:
        while recv(ws)[0] != OPCODE_CLOSE:
            pass
    except (websocket.WebSocketException, OSError):
        pass


@pytest.mark.parametrize("how", ["raw-junk", "odd-audio", "huge", "text-flood"])
def test_one_misbehaving_stream_does_not_hurt_the_others(server, how):
    results = {}
    good = [gevent.spawn(_good_call, server, c, results) for c in ("call-a", "call-b", "call-c", "call-d")]
    bad = gevent.spawn(_misbehave, server, how)
    gevent.joinall(good + [bad], timeout=15, raise_error=True)
    assert results == {c: OPCODE_CLOSE for c in ("call-a", "call-b", "call-c", "call-d")}
    for call_id in results:
        session = server.sessions[call_id]
        assert session.reason == "caller stream ended" and len(session.audio) == 1600
        assert set(session.audio) == {len(call_id)}
    _good_call(server, "call-e", results)  # and the server still takes new calls
    assert results["call-e"] == OPCODE_CLOSE


def _session_server(config, replies):
    turns, breaks, ended = [], [], []

    def factory(info, send):
        clock = REAL_CLOCK
        callbacks = SessionCallbacks(on_turn=turns.append, break_playback=lambda: breaks.append(1),
                                     end_call=ended.append)
        return Session(config, FakeSTT(clock, 0.01), FakeLLM(clock, replies, 0.01), FakeTTS(clock, 0.01),
                       send, callbacks, sample_rate=info.sample_rate, vad=EnergyVAD())

    srv = AudioForkServer(factory, lambda call_id: True, SECRET)
    srv.start()
    return srv, turns, breaks, ended


def test_real_session_barge_in_sends_kill_audio_then_greeting_is_truncated():
    srv, turns, breaks, _ = _session_server(SessionConfig(greeting="Hello there, this is a long greeting."), [])
    try:
        ws = connect(url(srv, "call-123"))
        ws.send('{"callId":"call-123","sampleRate":16000}')
        assert json.loads(recv(ws)[1])["type"] == "playAudio"  # 7 words: 2.1 s of playback
        gevent.sleep(0.5)  # let the caller hear a word or so
        for _ in range(6):
            ws.send_binary(voice(20))
        opcode, data = recv(ws)
        assert opcode == OPCODE_TEXT and json.loads(data) == {"type": "killAudio"}
        wait_for(lambda: turns)
        assert turns[0].interrupted and breaks == [1]
        assert turns[0].text and len(turns[0].text.split()) < 7
        ws.send_binary(b"")
    finally:
        srv.stop(timeout=2)


def test_real_session_end_call_sends_disconnect_and_closes():
    config = SessionConfig(greeting=None, end_silence_ms=200)
    srv, turns, _, ended = _session_server(config, [say("Bye.", _end_call())])
    try:
        ws = connect(url(srv, "call-123"))
        ws.send('{"callId":"call-123"}')
        assert json.loads(recv(ws)[1])["data"]["textContent"] == "Bye."
        kinds = []
        with gevent.Timeout(10):
            while True:
                ws.send_binary(bytes(640))  # the caller's line stays open (silence) while the goodbye plays
                ws.settimeout(0.05)
                try:
                    opcode, data = recv(ws)
                except websocket.WebSocketTimeoutException:
                    continue
                kinds.append(json.loads(data)["type"] if opcode == OPCODE_TEXT else opcode)
                if opcode == OPCODE_CLOSE:
                    break
        assert kinds == ["disconnect", OPCODE_CLOSE] and ended == ["script complete"]
        assert [t.text for t in turns] == ["Bye."]
    finally:
        srv.stop(timeout=2)


def test_bidirectional_mode_streams_binary_pcm_back():
    srv, _, _, _ = _session_server(SessionConfig(greeting="Hi.", bidirectional=True, barge_in=False), [])
    try:
        ws = connect(url(srv, "call-123"))
        ws.send('{"callId":"call-123","sampleRate":16000}')
        sizes = [len(recv(ws)[1]) for _ in range(15)]  # "Hi." = 300 ms = 15 frames of 20 ms
        assert sizes == [640] * 15
    finally:
        srv.stop(timeout=2)


def _end_call():
    from pipeline.interfaces import ToolCall

    return ToolCall("end_call", {"reason": "script complete"})


def test_frames_map_to_mod_audio_fork_messages():
    sent = []
    from pipeline.server import Connection

    conn = Connection.__new__(Connection)
    conn.closed, conn.call_id = False, "c"
    conn._send_json = sent.append
    conn._close = lambda *a: None
    Connection.send(conn, Interrupt(0))
    Connection.send(conn, EndCall("done"))
    gevent.sleep(0)
    assert sent == [{"type": "killAudio"}, {"type": "disconnect"}]


def _ws_client(srv, call_id, rcvbuf=None):
    """A raw socket speaking WebSocket through wsproto, so the test parses every byte the server sends."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(srv.address)
    sock.settimeout(10)
    client = WSConnection(ConnectionType.CLIENT)
    target = url(srv, call_id).split(str(srv.address[1]), 1)[1]
    sock.sendall(client.send(Request(host="127.0.0.1", target=target, subprotocols=["audio.drachtio.org"])))
    with gevent.Timeout(5):
        while True:
            client.receive_data(sock.recv(65536))
            if any(isinstance(event, AcceptConnection) for event in client.events()):
                return sock, client


def _read_messages(sock, client, until_type, limit_s=20.0):
    """Every text message, parsed from the raw bytes (a truncated frame makes wsproto raise)."""
    from wsproto.events import TextMessage

    messages, parts = [], []
    with gevent.Timeout(limit_s, AssertionError(f"no {until_type} in {messages!r}")):
        while True:
            data = sock.recv(1 << 20)
            assert data, f"socket closed before {until_type}"
            client.receive_data(data)
            for event in client.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        messages.append(json.loads("".join(parts)))
                        parts = []
                        if messages[-1]["type"] == until_type:
                            return messages


def test_a_reply_killed_while_its_frame_is_written_never_leaves_a_truncated_frame():
    from wsproto.events import TextMessage

    big = bytes(9 << 20)  # ~12 MB of base64: far more than the socket buffers hold while the client waits
    held = {}

    class LongReply(RecordingSession):
        def start(self):
            held["session"] = self
            held["reply"] = gevent.spawn(self.send, TTSAudio(big, 16000, "a long sentence"))

    srv = AudioForkServer(LongReply, lambda call_id: {"id": call_id}, SECRET)
    srv.start()
    try:
        sock, client = _ws_client(srv, "call-big", rcvbuf=32768)
        sock.sendall(client.send(TextMessage(json.dumps({"sampleRate": 16000}))))
        wait_for(lambda: "reply" in held)
        gevent.sleep(0.3)  # the client reads nothing: the frame is part-way out when barge-in strikes
        held["reply"].kill(block=True, timeout=2)
        held["session"].send(Interrupt(0))
        messages = _read_messages(sock, client, "killAudio")
        sock.close()
    finally:
        srv.stop(timeout=2)
    assert [m["type"] for m in messages] == ["playAudio", "killAudio"]
    assert len(base64.b64decode(messages[0]["data"]["audioContent"])) == len(big)


def test_a_stream_silent_on_the_wire_stays_open_while_the_call_is_up():
    # mod_audio_fork sends nothing while the far end sends no RTP: a quiet socket is not a dead call.
    sessions, checks, live = {}, [], {"call-123": True}

    def factory(info, send):
        sessions[info.call_id] = RecordingSession(info, send)
        return sessions[info.call_id]

    def call_is_live(call_id):
        checks.append(call_id)
        return live[call_id]

    srv = AudioForkServer(factory, lambda call_id: {"id": call_id}, SECRET, idle_timeout=0.2,
                          call_is_live=call_is_live)
    srv.start()
    try:
        ws = connect(url(srv, "call-123"))
        ws.send('{"callId":"call-123"}')
        assert recv(ws)[0] == OPCODE_TEXT  # the greeting
        assert recv(ws)[0] == 9  # a ping after the first quiet period: the peer must still be there
        wait_for(lambda: len(checks) >= 3, timeout=20)
        assert not sessions["call-123"].ended
        live["call-123"] = False  # the call hung up
        while (frame := recv(ws))[0] != OPCODE_CLOSE:
            assert frame[0] == 9
        wait_for(lambda: sessions["call-123"].ended, timeout=20)
        assert sessions["call-123"].reason == "no data in time"
    finally:
        srv.stop(timeout=2)


def _open_stream(server, call_id="call-123"):
    ws = connect(url(server, call_id))
    ws.send(json.dumps({"callId": call_id}))
    assert recv(ws)[0] == OPCODE_TEXT  # the greeting: the session runs
    return ws


def _raw(ws, opcode, data=b"", fin=1, mask=1, rsv1=0):
    """A frame as websocket-client encodes it, written as is (so it may break the protocol)."""
    ws.sock.sendall(websocket.ABNF(fin=fin, rsv1=rsv1, opcode=opcode, mask_value=mask, data=data).format())


@pytest.mark.parametrize(("code", "payload", "echo"), [
    (1000, (1000).to_bytes(2, "big") + b"bye", (1000).to_bytes(2, "big") + b"bye"),
    (4321, (4321).to_bytes(2, "big"), (4321).to_bytes(2, "big")),
    (1005, b"", b""),  # no code: echoed without one
])
def test_the_peers_close_is_echoed_and_ends_the_session(server, code, payload, echo):
    ws = _open_stream(server)
    _raw(ws, OPCODE_CLOSE, payload)
    assert recv(ws) == (OPCODE_CLOSE, echo)
    session = server.sessions["call-123"]
    wait_for(lambda: session.ended)
    assert session.reason == f"peer closed ({code})"
    with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
        recv(ws)  # nothing after the close


def test_a_ping_is_answered_with_its_payload_and_the_stream_goes_on(server):
    ws = _open_stream(server)
    _raw(ws, 9, b"are you there")
    assert recv(ws) == (10, b"are you there")
    ws.send_binary(bytes(640))
    ws.send_binary(b"")
    assert recv(ws)[0] == OPCODE_CLOSE
    wait_for(lambda: server.sessions["call-123"].ended)
    assert bytes(server.sessions["call-123"].audio) == bytes(640)


def test_a_fragmented_audio_message_reaches_the_session_whole(server):
    ws = _open_stream(server)
    _raw(ws, OPCODE_BINARY, b"\x01" * 300, fin=0)
    _raw(ws, 9, b"between")
    _raw(ws, 0, b"\x02" * 340)
    assert recv(ws) == (10, b"between")
    ws.send_binary(b"")
    assert recv(ws)[0] == OPCODE_CLOSE
    wait_for(lambda: server.sessions["call-123"].ended)
    assert bytes(server.sessions["call-123"].audio) == b"\x01" * 300 + b"\x02" * 340


@pytest.mark.parametrize(("how", "code"), [
    (dict(opcode=OPCODE_BINARY, data=bytes(640), mask=0), 1002),
    (dict(opcode=OPCODE_BINARY, data=bytes(640), rsv1=1), 1002),
    (dict(opcode=OPCODE_TEXT, data=b"\xc3\x28"), 1007),
    (dict(opcode=9, data=b"x", fin=0), 1002),
])
def test_a_broken_frame_closes_the_stream_with_its_code(server, how, code):
    ws = _open_stream(server)
    _raw(ws, **how)
    opcode, data = recv(ws)
    assert opcode == OPCODE_CLOSE and int.from_bytes(data[:2], "big") == code
    wait_for(lambda: server.sessions["call-123"].ended)
    assert server.sessions["call-123"].reason.startswith("protocol error")


def test_a_message_over_the_limit_is_refused_from_its_header(server):
    server.max_message_bytes = 4096
    ws = _open_stream(server)
    header = websocket.ABNF(fin=1, opcode=OPCODE_BINARY, data=bytes(5000)).format()[:8]
    ws.sock.sendall(header)  # the payload never comes: the declared length alone is refused
    opcode, data = recv(ws)
    assert opcode == OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1009
    wait_for(lambda: server.sessions["call-123"].ended)

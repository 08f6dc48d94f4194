"""bench/ws_callers.py, the pipeline benches' load generator, against a real AudioForkServer: it must stay a valid
mod_audio_fork client (handshake, metadata first, masked 20 ms frames, a zero-length frame at the end) and time
the agent's replies; and its own frame code (bench/ws_wire.py) must parse what a real WebSocket peer writes."""
import json
import pathlib
import socket
import subprocess
import sys

import gevent
import pytest
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

from pipeline.fakes import voice
from pipeline.frames import TTSAudio
from pipeline.server import AudioForkServer
from pipeline.tokens import audio_fork_url

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import ws_callers  # noqa: E402
import ws_wire  # noqa: E402

SECRET = "test-secret-0123456789abcdef"
SPEECH = voice(200)  # ten 20 ms frames
SECONDS, CYCLE_S, SPEAK_AT_S = 1.2, 0.6, 0.1  # 60 frames: speech in frames 5-14 and 35-44


class ReplyingSession:
    """Records what the server delivers; answers each utterance when its first silent frame arrives."""

    def __init__(self, info, send, stream):
        self.info, self.send, self.stream = info, send, stream
        self.frames: list[bytes] = []
        self.voiced = self.ended = False
        self.reason = None

    def start(self):
        pass

    def push_audio(self, pcm):
        self.frames.append(pcm)
        if any(pcm):
            self.voiced = True
        elif self.voiced:
            self.voiced = False
            self.send(TTSAudio(bytes(1280), 16000, "Okay.", stream=self.stream))

    def push_dtmf(self, digit):
        pass

    def stop(self, reason="closed"):
        self.ended, self.reason = True, reason


@pytest.fixture
def server():
    sessions = {}

    def factory(info, send):
        sessions[info.call_id] = ReplyingSession(info, send, stream=info.call_id.startswith("bidi"))
        return sessions[info.call_id]

    srv = AudioForkServer(factory, lambda call_id: {"id": call_id}, SECRET)
    srv.start()
    srv.sessions = sessions
    yield srv
    srv.stop(timeout=2)


def expected_frames() -> list[bytes]:
    speech = [SPEECH[i:i + 640] for i in range(0, len(SPEECH), 640)]
    frames = [bytes(640)] * round(SECONDS / 0.02)
    for start in (5, 35):
        frames[start:start + len(speech)] = speech
    return frames


def run_callers(urls: list[str], tmp_path: pathlib.Path) -> dict:
    (tmp_path / "urls.json").write_text(json.dumps(urls))
    (tmp_path / "speech.pcm").write_bytes(SPEECH)
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "ws_callers.py"), str(tmp_path / "urls.json"),
                           str(tmp_path / "speech.pcm"), str(SECONDS), str(CYCLE_S), str(SPEAK_AT_S)],
                          capture_output=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def test_callers_stream_well_formed_audio_and_time_text_and_binary_replies(server, tmp_path):
    base = f"ws://127.0.0.1:{server.address[1]}"
    call_ids = ["text-1", "text-2", "bidi-1"]
    urls = [audio_fork_url(base, call_id, SECRET, 60) for call_id in call_ids]
    refused = audio_fork_url(base, "text-3", "another-secret-0123456789", 60)
    result = run_callers([*urls, refused], tmp_path)
    with gevent.Timeout(5):
        while not all(call_id in server.sessions and server.sessions[call_id].ended for call_id in call_ids):
            gevent.sleep(0.01)
    for call_id in call_ids:
        session = server.sessions[call_id]
        assert session.info.metadata == {"callId": call_id, "sampleRate": 16000}
        assert session.frames == expected_frames()  # unmasked by the server: the pre-masked frames are right
        assert session.reason == "caller stream ended"  # the zero-length binary frame
    assert "text-3" not in server.sessions
    assert result["turns_spoken"] == 2 * len(call_ids)
    assert len(result["latencies"]) == result["turns_spoken"]  # playAudio and binary replies both timed
    assert all(0 < x < SECONDS for x in result["latencies"])
    assert result["error_count"] == 1 and result["errors"][0].startswith("connect: status 'HTTP/1.1 401")
    assert 0 <= result["send_late_p99"] <= result["send_late_max"] and result["send_blocked"] == 0


def server_bytes() -> tuple[bytes, list[tuple[int, bytes]]]:
    """A server's frames as wsproto writes them, and what the parser should report for each."""
    writer = FrameProtocol(client=False, extensions=[])
    play = json.dumps({"type": "playAudio", "data": {"audioContent": "A" * 30000}})
    data = (writer.send_data(play) + writer.send_data(b"\1" * 640) + writer.ping(b"are you there")
            + writer.send_data(b"\2" * 70000) + writer.send_data("{}") + writer.close(CloseReason.NORMAL_CLOSURE))
    expected = [(ws_wire.OP_TEXT, play[:ws_wire.PEEK_BYTES].encode()), (ws_wire.OP_BINARY, b""),
                (ws_wire.OP_PING, b"are you there"), (ws_wire.OP_BINARY, b""), (ws_wire.OP_TEXT, b"{}"),
                (ws_wire.OP_CLOSE, (1000).to_bytes(2, "big"))]
    return data, expected


@pytest.mark.parametrize("chunk", [1, 3, 64, 700, 4096, 1 << 20])
def test_reply_parser_finds_every_frame_however_the_bytes_arrive(chunk):
    data, expected = server_bytes()
    parser = ws_wire.ReplyParser()
    events = [e for i in range(0, len(data), chunk) for e in parser.feed(data[i:i + chunk])]
    assert events == expected


def test_client_frames_are_masked_and_read_back_by_a_real_peer():
    reader = FrameProtocol(client=False, extensions=[])  # a server: refuses unmasked frames
    reader.receive_bytes(ws_wire.frame(ws_wire.OP_TEXT, b'{"callId":"x"}') + ws_wire.frame(ws_wire.OP_BINARY, b"")
                         + ws_wire.frame(ws_wire.OP_BINARY, b"\5" * 640, b"abcd")
                         + ws_wire.frame(ws_wire.OP_BINARY, b"\6" * 70000) + ws_wire.close_frame())
    frames = [(f.opcode, f.payload) for f in reader.received_frames()]
    assert frames == [(Opcode.TEXT, '{"callId":"x"}'), (Opcode.BINARY, b""), (Opcode.BINARY, b"\5" * 640),
                      (Opcode.BINARY, b"\6" * 70000), (Opcode.CLOSE, (CloseReason.NORMAL_CLOSURE, ""))]


def test_a_ping_is_answered_with_a_masked_pong_carrying_its_payload():
    ours, theirs = socket.socketpair()
    caller = ws_callers.Caller(0, "ws://127.0.0.1:1/audio/c?token=t", ws_callers.Clip(SPEECH), SECONDS, CYCLE_S,
                               SPEAK_AT_S)
    caller.sock = ours
    assert caller._on_frame(ws_wire.OP_PING, b"are you there", 0.0) is False
    reader = FrameProtocol(client=False, extensions=[])
    reader.receive_bytes(theirs.recv(1024))
    assert [(f.opcode, f.payload) for f in reader.received_frames()] == [(Opcode.PONG, b"are you there")]
    ours.close()
    theirs.close()

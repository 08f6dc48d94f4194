"""A Deepgram live-transcription server (wss://api.deepgram.com/v1/listen) on 127.0.0.1.

Speaks the real protocol: query-string options, `Authorization: Token <key>`, binary audio in, JSON text
messages out (Results, UtteranceEnd, SpeechStarted, Metadata), and the client's KeepAlive / Finalize /
CloseStream text messages. Replies are scripted against how much audio has arrived (`at_s`), so a test decides
exactly what "was said" when.
"""
from __future__ import annotations

import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import gevent
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from tests.fakes.faults import Fault

MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}


def results(transcript: str, start: float, duration: float, is_final: bool = True, speech_final: bool = False,
            confidence: float = 0.98) -> dict:
    """A Results message as Deepgram sends it (one channel, one alternative, per-word timings)."""
    words = transcript.split()
    step = duration / max(1, len(words))
    return {
        "type": "Results", "channel_index": [0, 1], "duration": duration, "start": start,
        "is_final": is_final, "speech_final": speech_final, "from_finalize": False,
        "channel": {"alternatives": [{
            "transcript": transcript, "confidence": confidence,
            "words": [{"word": w.lower().strip(".,?!"), "start": start + i * step, "end": start + (i + 1) * step,
                       "confidence": confidence, "punctuated_word": w} for i, w in enumerate(words)],
        }]},
        "metadata": {"request_id": str(uuid.uuid4()), "model_info": MODEL_INFO, "model_uuid": str(uuid.uuid4())},
    }


def utterance_end(last_word_end: float) -> dict:
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}


def speech_started(timestamp: float) -> dict:
    return {"type": "SpeechStarted", "channel": [0, 1], "timestamp": timestamp}


@dataclass
class Reply:
    """Send `message` once `at_s` seconds of audio have been received (or on Finalize/CloseStream)."""

    at_s: float
    message: dict


@dataclass
class Session:
    """What one connection received: options, auth, audio and control messages."""

    query: dict[str, str]
    authorization: str
    audio_bytes: int = 0
    controls: list[str] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)
    close_code: int | None = None  # what the server closed with (1006: dropped on purpose)


class FakeDeepgram:
    def __init__(self, api_key: str = "dg-test-key", idle_timeout_s: float = 10.0):
        self.api_key = api_key
        self.idle_timeout_s = idle_timeout_s
        self.script: list[Reply] = []  # replies for the next connection (copied per connection)
        self.faults: list[Fault] = []  # one per connection, in order
        self.sessions: list[Session] = []
        self._pending: dict[int, Fault] = {}
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._process_request)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def start(self) -> FakeDeepgram:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread:
            self._thread.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _process_request(self, connection, request):
        fault = self.faults.pop(0) if self.faults else Fault()
        if urlsplit(request.path).path != "/v1/listen":
            return connection.respond(404, "Not Found\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return connection.respond(401, '{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}')
        if fault.status:
            return connection.respond(fault.status, '{"err_code":"INTERNAL","err_msg":"injected failure"}')
        self._pending[id(connection)] = fault
        return None

    def _handle(self, ws) -> None:
        fault = self._pending.pop(id(ws), Fault())
        session = Session(dict(parse_qsl(urlsplit(ws.request.path).query)),
                          ws.request.headers.get("Authorization", ""))
        self.sessions.append(session)
        script = list(self.script)
        rate = int(session.query.get("sample_rate", "16000"))
        try:
            self._loop(ws, session, script, fault, rate)
        except ConnectionClosed:
            pass
        except _Dropped:
            session.close_code = 1006

    def _loop(self, ws, session: Session, script: list[Reply], fault: Fault, rate: int) -> None:
        while True:
            try:
                message = ws.recv(timeout=self.idle_timeout_s)
            except TimeoutError:
                # Deepgram's NET-0001: no audio or KeepAlive within the window.
                session.close_code = 1011
                ws.close(1011, "Deepgram did not receive audio data or a text message within the timeout window.")
                return
            if isinstance(message, bytes):
                session.audio_bytes += len(message)
                heard = session.audio_bytes / (2 * rate)
                while script and script[0].at_s <= heard:
                    self._send(ws, session, script.pop(0).message, fault)
                continue
            kind = json.loads(message).get("type", "")
            session.controls.append(kind)
            if kind in ("Finalize", "CloseStream"):
                while script:
                    reply = dict(script.pop(0).message)
                    if reply.get("type") == "Results" and kind == "Finalize":
                        reply["from_finalize"] = True
                    self._send(ws, session, reply, fault)
            if kind == "CloseStream":
                self._send(ws, session, self._metadata(session, rate), fault)
                session.close_code = 1000  # recorded before closing: the client may return first
                ws.close(1000)
                return

    def _send(self, ws, session: Session, message: dict, fault: Fault) -> None:
        count = len(session.sent)
        if fault.drop_after is not None and count >= fault.drop_after:
            ws.socket.shutdown(socket.SHUT_RDWR)  # a drop: no close frame
            ws.close_socket()  # not socket.close(): the reader greenlet must leave select() first
            raise _Dropped()
        if fault.stall_after is not None and count == fault.stall_after:
            gevent.sleep(fault.stall_s)
        gevent.sleep(fault.latency_s)
        ws.send(json.dumps(message))
        session.sent.append(message)

    @staticmethod
    def _metadata(session: Session, rate: int) -> dict:
        return {"type": "Metadata", "transaction_key": "deprecated", "request_id": str(uuid.uuid4()),
                "sha256": "0" * 64, "created": "2026-01-01T00:00:00.000Z",
                "duration": session.audio_bytes / (2 * rate), "channels": 1,
                "models": [str(uuid.uuid4())], "model_info": {}}


class _Dropped(Exception):
    pass

"""The browsers' audio WebSocket: the audio fork server's machinery, speaking to a web page instead of
mod_audio_fork.

    ws(s)://<WEB_CALL_PUBLIC_URL>/talk/<call_id>?token=<token>      (POST /v1/agents/{id}/web-calls gives it)

page -> server: a JSON text {"type": "start", "sampleRate": 16000} first, then binary 16-bit LE mono PCM (the
page sends 20 ms frames), {"type": "dtmf", "digit": "5"}, {"type": "hangup"}.
server -> page: binary 16-bit LE mono PCM of the agent's voice at the stream's rate, and JSON text:
  {"type": "ready", "call_id"}                   the session runs (the agent greets next)
  {"type": "agent", "text"}                      a sentence the agent starts saying (its audio follows)
  {"type": "turn", "speaker", "text", "interrupted", "source"}   a transcript line as it is recorded
                                                 (speaker "caller": the caller's words, recognised)
  {"type": "clear"}                              barge-in: drop the agent's audio not yet played
  {"type": "ended", "reason"}                    the call is over; the server closes with 1000

A refused stream is accepted and closed at once with a code the page can read (webcall/tokens.py CLOSE_*):
a browser's WebSocket API shows nothing of an HTTP refusal but 1006. The session behind the socket is the
phone call's (pipeline/session.py); all it knows of the browser is the audio format.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gevent
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from pipeline.frames import EndCall, Frame, Interrupt, Transfer, TTSAudio, TurnRecord
from pipeline.server import BIDI_FRAME_BYTES, AudioForkServer, Connection, Refused
from pipeline.ws_frames import CLOSE
from webcall import tokens
from webcall.tokens import WebTokenError

log = logging.getLogger(__name__)

PATH = re.compile(r"\A/talk/([A-Za-z0-9][A-Za-z0-9_.-]{0,79})/?\Z")
CLOSE_WAIT_S = 2.0  # how long a closed stream waits for the browser's close frame


class BrowserConnection(Connection):
    server: WebCallServer
    _closing = False

    def _handshake(self, request: Request) -> None:
        try:
            self._authorize(request)
        except Refused as exc:
            log.warning("web call stream from %s refused: %s", self.peer, exc)
            self._write(self.ws.send(AcceptConnection()))
            self._close(exc.close_code, str(exc), "refused")
            return
        self._write(self.ws.send(AcceptConnection()))
        self.sock.settimeout(self.server.metadata_timeout)

    def _on_frame(self, opcode: int, payload: Any) -> None:
        if not self._closing:
            super()._on_frame(opcode, payload)
        elif opcode == CLOSE:  # ours went out already: the page's answers it
            self._closed_by_peer(f"the page closed ({payload[0]})")

    def _close(self, code: int, reason: str, why: str) -> None:
        """Send the close frame, stop the session, then wait (bounded) for the page's own close frame before
        the socket is closed. The page keeps sending audio until it reads ours, and closing a socket with
        unread data resets it: a browser that gets the reset before it read our close frame reports 1006,
        not the code (a refusal's reason, or 1000)."""
        if self.closed or self._closing:
            return
        level = logging.INFO if code in (1000, 1001) else logging.WARNING
        log.log(level, "call %s: closing the page's stream from %s: %s", self.call_id or "?", self.peer, why)
        self._send_message(CloseConnection(code=code, reason=reason[:100]))
        self._closing = True  # from now on only the page's close frame (or EOF, or the timeout) is awaited
        self._stop_session(why)
        self.sock.settimeout(CLOSE_WAIT_S)

    def _authorize(self, request: Request) -> None:
        headers = {name.lower(): value for name, value in request.extra_headers}
        origin = headers.get(b"origin", b"").decode("latin-1").strip().lower()
        if origin not in self.server.allowed_origins:
            raise Refused(f"origin {origin[:80] or '(none)'} is not allowed", close_code=tokens.CLOSE_ORIGIN)
        url = urlsplit(request.target)
        match = PATH.match(url.path)
        if not match:
            raise Refused("unknown path", close_code=tokens.CLOSE_BAD_REQUEST)
        self.call_id = match.group(1)
        token = (parse_qs(url.query).get("token") or [None])[0]
        try:
            tokens.check(token, self.call_id, self.server._secret)
            self.call = self.server.lookup(self.call_id)
        except WebTokenError as exc:
            raise Refused(f"call {self.call_id}: {exc}", close_code=exc.close_code) from None
        except Exception:
            log.exception("web call lookup failed")
            raise Refused(f"call {self.call_id}: lookup failed", close_code=tokens.CLOSE_UNAVAILABLE) from None

    def _start_session(self, text: str) -> None:
        super()._start_session(text)
        self._send_json({"type": "ready", "call_id": self.call_id})

    def _on_text(self, text: str) -> None:
        if _is_hangup(text):  # before its start too: a hang-up must never start a session
            if self.session is not None:
                self.session.stop("caller hung up")
            self._close(1000, "", "caller hung up")
            return
        super()._on_text(text)

    def send(self, frame: Frame) -> None:
        """The session's output, as the page's messages (see the module docstring)."""
        if self.closed:
            return
        if isinstance(frame, TTSAudio):
            if frame.text:
                self._send_json({"type": "agent", "text": frame.text})
            for i in range(0, len(frame.pcm), BIDI_FRAME_BYTES):
                self._send_message(BytesMessage(frame.pcm[i : i + BIDI_FRAME_BYTES]))
        elif isinstance(frame, TurnRecord):
            self._send_json({"type": "turn", "speaker": frame.speaker, "text": frame.text,
                             "interrupted": frame.interrupted, "source": frame.source})
        elif isinstance(frame, Interrupt):
            self._send_json({"type": "clear"})
        elif isinstance(frame, EndCall | Transfer):
            reason = frame.reason if isinstance(frame, EndCall) else "transferred"
            self._send_json({"type": "ended", "reason": reason})
            # Spawned, as the fork's disconnect is: this runs inside the session's own ending, which closing
            # the socket (it stops the session) must not re-enter.
            gevent.spawn(self._close, 1000, "", f"session ended: {reason}")

    def teardown(self, why: str) -> None:
        super().teardown(why)
        if self.call is not None and self.server.on_closed is not None:
            try:
                self.server.on_closed(self.call_id, why)
            except Exception:
                log.exception("call %s: ending the web call failed", self.call_id)


def _is_hangup(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "hangup"


class WebCallServer(AudioForkServer):
    """AudioForkServer with BrowserConnection; `lookup` raises WebTokenError for a call the token may not open."""

    connection_class = BrowserConnection
    allowed_origins: frozenset[str] = frozenset()
    # Told once a stream that opened a call is gone, whatever closed it (the page, the agent, the network).
    on_closed: Callable[[str, str], None] | None = None

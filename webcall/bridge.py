"""Web calls end to end: the browsers' WebSocket server, one Session per web call, and their end in the database.

WebBridge is the phone calls' MediaBridge (calls/media.py: providers, session config, transcript, analysis,
call.analyzed) on a WebCallServer (webcall/server.py) instead of the audio fork's, with WebCallControl in the
call controller's place: there is no channel to kill, so hanging up is ending the call's row (webcall/calls.py)
and closing the stream. WebCalls runs it: it closes web calls an earlier run left live, serves the streams, and
ends calls whose token expired before any browser connected. One process serves web calls (the first of
API_WORKERS); every API process can create them, as long as they share the token secret (WebCallIssuer).
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event

from background import BackgroundLoop
from calls.media import ANALYSIS_TIMEOUT_S, MediaBridge, _connection
from calls.media_providers import AnalysisLLMFactory, ProviderFactory
from models import Call
from pipeline.frames import EndCall, Frame, TurnRecord
from pipeline.server import StreamInfo
from pipeline.session import Session
from webcall import calls as web_calls
from webcall import tokens
from webcall.server import WebCallServer

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 5.0


@dataclass
class WebCallIssuer:
    """Signs a web call's token and names the WebSocket URL the page opens with it."""

    secret: str
    public_url: str
    ttl_s: float

    def issue(self, call_id: str) -> tuple[tokens.WebToken, str]:
        token = tokens.issue(call_id, self.secret, self.ttl_s)
        return token, f"{self.public_url.rstrip('/')}/talk/{call_id}?token={token.token}"


def token_secret(config: Any) -> str:
    """MEDIA_TOKEN_SECRET, else a random one: call it once per deployment run, before API workers fork."""
    return config.media_token_secret or secrets.token_hex(32)


class WebCallControl:
    """The call controller's part for web calls (MediaBridge calls hangup and break_playback on it)."""

    def __init__(self, bridge: WebBridge):
        self.bridge = bridge

    def hangup(self, call: Call, reason: str = "hung up through the API", unserved: bool = False) -> None:
        if web_calls.end(call.id, reason, unserved=unserved):
            self.bridge.on_hangup(call.id)

    def break_playback(self, call_id: str) -> None:
        """Nothing to break: the page drops what it has not played on the session's 'clear'."""

    def send_dtmf(self, call_id: str, digits: str) -> bool:
        """The agent's keypad tool: a browser has no line to send tones down."""
        log.info("call %s: a web call cannot send keypad tones", call_id)
        return False


class WebBridge(MediaBridge):
    def __init__(self, config: Any, secret: str, *, providers: ProviderFactory | None = None,
                 analysis_llm: AnalysisLLMFactory | None = None):
        super().__init__(config, providers=providers, analysis_llm=analysis_llm, listen=config.web_call_listen,
                         public_url=config.web_call_public_url, server_class=WebCallServer, secret=secret)
        self.server.allowed_origins = frozenset(config.web_call_origins)
        self.server.on_closed = self.stream_closed
        self.controller = WebCallControl(self)
        self._senders: dict[str, Callable[[Frame], None]] = {}

    def __repr__(self) -> str:  # never show the secret
        return f"WebBridge({self.public_url!r})"

    def lookup(self, call_id: str) -> Call:
        """Admit the stream (raises WebTokenError with the close code when the call may not be opened)."""
        result = self._shielded(_admit, call_id)
        if isinstance(result, tokens.WebTokenError):
            raise result
        return result

    def session_factory(self, info: StreamInfo, send: Callable[[Frame], None]) -> Session:
        self._senders[info.call_id] = send
        return super().session_factory(info, send)

    def record_turn(self, call_id: str, turn: TurnRecord) -> None:
        """Stored as on a phone call, then shown on the page."""
        super().record_turn(call_id, turn)
        send = self._senders.get(call_id)
        if send is not None:
            send(turn)

    def transfer(self, call_id: str, destination: str, reason: str = "") -> bool:
        log.info("call %s: a web call cannot be transferred to a phone number", call_id)
        return False  # the agent says its transfer-failed line and stays on the call

    def stream_closed(self, call_id: str, why: str) -> None:
        """The page's stream is gone: the caller hung up (or never started talking)."""
        session = self.sessions.get(call_id)
        if session is None:
            reason, unserved = f"the browser left before its audio started ({why})", True
        else:
            reason, unserved = "the caller hung up", False
        self._work.spawn(self._end, call_id, reason, unserved)

    def _end(self, call_id: str, reason: str, unserved: bool) -> None:
        with _connection():
            ended = web_calls.end(call_id, reason, unserved=unserved)
        if ended:
            self.finish_call(call_id)
        else:
            self._senders.pop(call_id, None)

    def finish_call(self, call_id: str) -> None:
        """After the call's end: stop a session still running (the page is told), then analyse the call."""
        send = self._senders.pop(call_id, None)
        session = self.sessions.pop(call_id, None)
        self._answered_here.discard(call_id)
        try:
            with _connection():
                if session is not None and not session.ended:
                    session.stop("call hung up")
                    if send is not None:
                        send(EndCall("call hung up"))
                with gevent.Timeout(ANALYSIS_TIMEOUT_S):
                    self.analyze(call_id, True)
        except gevent.Timeout:
            log.warning("call %s: post-call analysis timed out", call_id)
        except Exception:
            log.exception("call %s: post-call analysis failed", call_id)


def _admit(call_id: str) -> Call | tokens.WebTokenError:
    with _connection():
        try:
            return web_calls.admit(call_id)
        except tokens.WebTokenError as exc:
            return exc  # returned, not raised: a greenlet dying of it would be printed as a crash


class WebCalls(BackgroundLoop):
    """The browsers' audio server and the sweep of web calls no browser opened in time."""

    def __init__(self, config: Any, secret: str, *, providers: ProviderFactory | None = None,
                 analysis_llm: AnalysisLLMFactory | None = None):
        self.config = config
        self.bridge = WebBridge(config, secret, providers=providers, analysis_llm=analysis_llm)
        self.issuer = WebCallIssuer(secret, self.bridge.public_url, float(config.web_call_token_ttl_s))
        self._wake = gevent.event.Event()

    @property
    def control(self) -> WebCallControl:
        return self.bridge.controller

    def start(self) -> None:
        with _connection():
            web_calls.close_lost(int(self.config.max_call_duration_s))
        self.bridge.start()
        self.issuer.public_url = self.bridge.public_url  # an ephemeral port is known once bound
        super().start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()  # out of its wait now, not at the next sweep
        super().stop(timeout)
        self.bridge.stop()

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(SWEEP_INTERVAL_S)
            if self._stopping:
                return
            try:
                with _connection():
                    web_calls.sweep(self.issuer.ttl_s, owned=set(self.bridge.sessions))
            except Exception:
                log.exception("web call sweep failed")

"""The mod_audio_fork WebSocket server (gevent's StreamServer), one Session per connection.

wsproto does the HTTP upgrade and writes our frames; after the upgrade the peer's frames are read by
pipeline/ws_frames.py (wsproto's reader cost ~34 us per 20 ms audio frame). wsproto never sees the peer's
frames, so it never learns of the peer's close: it still writes ours, and refuses to write after it.

Protocol, as captured from FreeSWITCH 1.10.12 + mod_audio_fork (../shared/freeswitch/captures/audio-fork-*.jsonl):
the module connects to ws://host:port/audio/<call_id>?token=<token> offering subprotocol "audio.drachtio.org",
sends the metadata JSON as the first text frame, then binary 16-bit LE mono PCM frames of any length, text frames
for send_text (a {"dtmf": "5"} frame is a keypress), and a zero-length binary frame on graceful shutdown. We send
JSON text: playAudio / killAudio / disconnect / transfer / json, or binary PCM back in bidirectional mode.

Anything wrong with one connection (token, unknown call, malformed frame, a session crash) closes that connection
with a logged reason; other calls never notice.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gevent
import gevent.pool
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import RemoteProtocolError

from observability.context import enter_call
from pipeline.audio import SUPPORTED_RATES, AudioFormatError
from pipeline.frames import AgentEvent, EndCall, Frame, Interrupt, Transfer, TTSAudio
from pipeline.providers.errors import ProviderError
from pipeline.socket_writer import OrderedWriter
from pipeline.stream import CallLookup, Refused, SessionFactory, SessionLike, StreamInfo
from pipeline.tokens import TokenError, check_token
from pipeline.ws_frames import BINARY, CLOSE, NO_STATUS, PING, TEXT, FrameError, FrameReader

log = logging.getLogger(__name__)
__all__ = ["BIDI_FRAME_BYTES", "AudioForkServer", "CallLookup", "Connection", "Refused", "SessionFactory",
           "SessionLike", "StreamInfo"]

SUBPROTOCOL = "audio.drachtio.org"
PATH = re.compile(r"\A/audio/([A-Za-z0-9][A-Za-z0-9_.-]{0,79})/?\Z")
BIDI_FRAME_BYTES = 640


class AudioForkServer:
    # What speaks the protocol on each socket: mod_audio_fork's (Connection, set below it); webcall/server.py
    # has the browsers'.
    connection_class: type[Connection]

    def __init__(self, session_factory: SessionFactory, lookup: CallLookup, secret: str | bytes,
                 host: str = "127.0.0.1", port: int = 0, *, default_sample_rate: int = 16000,
                 handshake_timeout: float = 5.0, metadata_timeout: float = 5.0, idle_timeout: float = 60.0,
                 max_message_bytes: int = 1 << 20,
                 on_start_failed: Callable[[StreamInfo, str], None] | None = None,
                 call_is_live: Callable[[str], bool] | None = None):
        self.session_factory, self.lookup, self._secret = session_factory, lookup, secret
        self.default_sample_rate = default_sample_rate
        self.handshake_timeout, self.metadata_timeout = handshake_timeout, metadata_timeout
        self.idle_timeout, self.max_message_bytes = idle_timeout, max_message_bytes
        self.max_queued_bytes = max(max_message_bytes, 1) * 32  # a peer that stopped reading is dropped
        self.flush_timeout = 2.0
        self.on_start_failed = on_start_failed  # the app hangs the call up: a call without a voice is dead air
        # Asked when a running stream has been quiet for idle_timeout: mod_audio_fork sends nothing at all while
        # the far end sends no RTP (silence suppression), so a quiet socket is not a dead call. None: the stream
        # stays open as long as its session runs (the session's own limits end it).
        self.call_is_live = call_is_live
        # A pool, so stop() can end handlers that are stuck (e.g. a session still starting its STT):
        # gevent's StreamServer without one leaves them running after stop().
        self._server = StreamServer((host, port), self._handle, spawn=gevent.pool.Pool())
        self.connections: set[Connection] = set()

    def __repr__(self) -> str:  # never show the secret
        return f"AudioForkServer({self._server.address!r})"

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address[:2]

    def start(self) -> None:
        self._server.start()
        log.info("audio fork server listening on %s:%d", *self.address)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every session, close every socket (bounded by timeout)."""
        self._server.close()
        for connection in list(self.connections):
            connection.shutdown("server shutting down")
        self._server.stop(timeout=timeout)

    def _handle(self, sock: socket.socket, address: tuple) -> None:
        connection = self.connection_class(self, sock, f"{address[0]}:{address[1]}")
        self.connections.add(connection)
        try:
            connection.run()
        except Exception:  # one connection's bug must never take the server down
            log.exception("audio connection %s crashed", connection.peer)
        finally:
            connection.teardown("connection closed")
            self.connections.discard(connection)


class Connection:
    def __init__(self, server: AudioForkServer, sock: socket.socket, peer: str):
        self.server, self.sock, self.peer = server, sock, peer
        self.ws = WSConnection(ConnectionType.SERVER)
        self.call_id = ""
        self.call: Any = None
        self.session: SessionLike | None = None
        self.closed = False
        self.writer = OrderedWriter(sock, server.max_queued_bytes, self._write_failed)
        self.frames: FrameReader | None = None  # the peer's frames, once the handshake accepted it

    # ----- reading -----------------------------------------------------------------------------------------
    def run(self) -> None:
        self.sock.settimeout(self.server.handshake_timeout)
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if self._quiet_but_live():
                    continue
                self._close(1001 if self.session else 1008, "timed out", "no data in time")
                return
            except OSError as exc:
                self._closed_by_peer(f"socket error: {exc}")
                return
            if not data:
                self._closed_by_peer("peer closed the socket")
                return
            try:
                if self.frames is None:
                    self._on_handshake_data(data)
                else:
                    for opcode, payload in self.frames.feed(data):
                        self._on_frame(opcode, payload)
                        if self.closed:
                            return
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            except FrameError as exc:
                self._close(exc.code, str(exc), f"protocol error: {exc}" if exc.code != 1009 else str(exc))
                return
            except Refused as exc:
                self._close(exc.close_code, str(exc), str(exc))
                return

    def _on_handshake_data(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events():
            self._on_event(event)
            if self.closed:
                return
        if self.ws.connection is not None:  # accepted: what the peer sends from now on is frames
            self.frames = FrameReader(self.server.max_message_bytes)

    def _quiet_but_live(self) -> bool:
        """No frame for idle_timeout on a running stream: silence on the wire while the call is still up."""
        if self.session is None or self.session.ended:
            return False
        check = self.server.call_is_live
        try:
            live = True if check is None else bool(check(self.call_id))
        except Exception:
            log.exception("call %s: liveness check failed", self.call_id)
            live = True  # a database hiccup must not cut a call; the next check decides
        if live:
            log.debug("call %s: no audio for %.0f s (silence on the wire); the call is up", self.call_id,
                      self.server.idle_timeout)
            self._send_message(Ping())  # a dead peer makes the write fail, which ends the stream
        return live

    def _on_event(self, event) -> None:
        if isinstance(event, Request):
            self._handshake(event)

    def _on_frame(self, opcode: int, payload: Any) -> None:
        """One message from the frame reader (whole: the reader joins fragments and enforces the size limit)."""
        if opcode == BINARY:
            self._on_binary(payload)
        elif opcode == TEXT:
            self._on_text(payload)
        elif opcode == PING:
            self._write(self.ws.send(Pong(payload)))
        elif opcode == CLOSE:
            code, reason = payload
            # wsproto sends an empty close only for its own enum member; the int 1005 would become 1000.
            echo = CloseReason.NO_STATUS_RCVD if code == NO_STATUS else code
            self._send_message(CloseConnection(code=echo, reason=reason))
            self._closed_by_peer(f"peer closed ({code})")

    def _handshake(self, request: Request) -> None:
        try:
            self._authorize(request)
        except Refused as exc:
            log.warning("audio stream from %s refused: %s", self.peer, exc)
            self._write(self.ws.send(RejectConnection(status_code=exc.status)))
            self.closed = True
            return
        offered = SUBPROTOCOL if SUBPROTOCOL in request.subprotocols else None
        self._write(self.ws.send(AcceptConnection(subprotocol=offered)))
        self.sock.settimeout(self.server.metadata_timeout)

    def _authorize(self, request: Request) -> None:
        url = urlsplit(request.target)
        match = PATH.match(url.path)
        if not match:
            raise Refused("unknown path", status=404)
        self.call_id = match.group(1)
        enter_call(self.call_id)  # this greenlet serves this call's audio from now on: its log lines say so
        token = (parse_qs(url.query).get("token") or [None])[0]
        try:
            check_token(token, self.call_id, self.server._secret)
        except TokenError as exc:
            raise Refused(f"call {self.call_id}: {exc}", status=401) from None
        try:
            self.call = self.server.lookup(self.call_id)
        except Exception:
            log.exception("call lookup failed")
            raise Refused(f"call {self.call_id}: lookup failed", status=503) from None
        if self.call is None:
            raise Refused(f"call {self.call_id}: unknown or ended call", status=404)

    def _on_text(self, text: str) -> None:
        if self.session is None:
            self._start_session(text)
            return
        try:
            message = json.loads(text)
        except ValueError:
            log.info("call %s: ignoring a non-JSON text frame", self.call_id)
            return
        digits = message.get("dtmf") if isinstance(message, dict) else None
        if isinstance(message, dict) and message.get("type") == "dtmf":
            digits = message.get("digit")
        if isinstance(digits, str | int):
            for digit in str(digits)[:32]:
                self.session.push_dtmf(digit)

    def _start_session(self, text: str) -> None:
        try:
            metadata = json.loads(text)
        except ValueError:
            raise Refused("metadata is not JSON", close_code=1003) from None
        if not isinstance(metadata, dict):
            raise Refused("metadata is not a JSON object", close_code=1003)
        rate = metadata.get("sampleRate", self.server.default_sample_rate)
        if rate not in SUPPORTED_RATES:
            raise Refused("unsupported sampleRate in metadata", close_code=1003)
        info = StreamInfo(self.call_id, self.call, metadata, int(rate), self.peer)
        try:
            self.session = self.server.session_factory(info, self.send)
            self.session.start()
        except Exception as exc:
            log.exception("call %s: session could not start", self.call_id)
            # Our own provider errors say what is missing; anything else is named by type only (its text may
            # carry an SDK's request details).
            why = str(exc) if isinstance(exc, ProviderError | LookupError) else type(exc).__name__
            self._report_start_failure(info, why[:160])
            raise Refused("session could not start", close_code=1011) from None
        self.sock.settimeout(self.server.idle_timeout)
        log.info("call %s: audio stream open from %s at %d Hz", self.call_id, self.peer, rate)

    def _report_start_failure(self, info: StreamInfo, reason: str) -> None:
        if self.server.on_start_failed is None:
            return
        try:
            gevent.spawn(self.server.on_start_failed, info, reason)
        except Exception:
            log.exception("call %s: on_start_failed failed", self.call_id)

    def _on_binary(self, data: bytes) -> None:
        if self.session is None:
            raise Refused("audio before metadata", close_code=1003)
        if not data:  # mod_audio_fork's graceful end of stream
            self.session.stop("caller stream ended")
            self._close(1000, "", "stream ended")
            return
        try:
            self.session.push_audio(data)
        except AudioFormatError as exc:
            raise Refused(f"malformed audio: {exc}", close_code=1003) from None

    # ----- writing -----------------------------------------------------------------------------------------
    def send(self, frame: Frame) -> None:
        """The session's output sink: frames become mod_audio_fork messages."""
        if self.closed:
            return
        if isinstance(frame, TTSAudio):
            if frame.stream:
                for i in range(0, len(frame.pcm), BIDI_FRAME_BYTES):
                    self._send_message(BytesMessage(frame.pcm[i : i + BIDI_FRAME_BYTES]))
            else:
                self._send_json({"type": "playAudio", "data": {
                    "audioContentType": "raw", "sampleRate": frame.sample_rate,
                    "audioContent": base64.b64encode(frame.pcm).decode(), "textContent": frame.text}})
        elif isinstance(frame, Interrupt):
            self._send_json({"type": "killAudio"})
        elif isinstance(frame, Transfer):
            self._send_json({"type": "transfer", "data": {"destination": frame.destination, "reason": frame.reason}})
            gevent.spawn(self._close, 1000, "", "transferred")
        elif isinstance(frame, EndCall):
            self._send_json({"type": "disconnect"})
            gevent.spawn(self._close, 1000, "", f"session ended: {frame.reason}")
        elif isinstance(frame, AgentEvent):
            self._send_json({"type": "json", "data": frame.data})

    def _send_json(self, message: dict) -> None:
        self._send_message(TextMessage(json.dumps(message)))

    def _send_message(self, event) -> None:
        try:
            self._write(self.ws.send(event))
        except Exception as exc:  # wsproto refuses to send once the socket is closing
            log.debug("call %s: dropped an outgoing message: %s", self.call_id, exc)

    def _write(self, data: bytes) -> None:
        """Queue bytes for the writer; never blocks, never interleaves with another frame."""
        if not self.writer.write(data):
            log.warning("call %s: peer is not reading (%d bytes queued): closing", self.call_id,
                        self.writer.queued_bytes)
            self.closed = True

    def _write_failed(self, why: str) -> None:
        log.info("call %s: %s", self.call_id, why)
        self.closed = True

    # ----- closing -----------------------------------------------------------------------------------------
    def _close(self, code: int, reason: str, why: str) -> None:
        if self.closed:
            return
        level = logging.INFO if code in (1000, 1001) else logging.WARNING
        log.log(level, "call %s: closing audio stream from %s: %s", self.call_id or "?", self.peer, why)
        self._send_message(CloseConnection(code=code, reason=reason[:100]))
        self.closed = True
        self._stop_session(why)
        self.writer.shut_down_after_queued()  # after the close frame and everything before it

    def _closed_by_peer(self, why: str) -> None:
        if not self.closed:
            log.info("call %s: %s", self.call_id or "?", why)
        self.closed = True
        self._stop_session(why)

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        log.warning("audio stream from %s: protocol error: %s", self.peer, exc)
        if exc.event_hint is not None and self.session is None:
            try:
                self._write(self.ws.send(exc.event_hint))
            except Exception:
                log.debug("could not send the rejection")
        self.closed = True
        self._stop_session("protocol error")

    def _stop_session(self, why: str) -> None:
        if self.session is not None and not self.session.ended:
            try:
                self.session.stop(why)
            except Exception:
                log.exception("call %s: session stop failed", self.call_id)

    def shutdown(self, why: str) -> None:
        self._close(1001, "going away", why)

    def teardown(self, why: str) -> None:
        self.closed = True
        self._stop_session(why)
        self.writer.finish(self.server.flush_timeout)  # what was queued (a close frame) goes out
        try:
            self.sock.close()
        except OSError:
            pass


AudioForkServer.connection_class = Connection

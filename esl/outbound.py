"""Outbound-socket server: the `socket` dialplan application (or originate '&socket(host:port async full)')
connects here, one TCP connection per call. Per connection: `connect` returns the channel data, then the
handler callback runs in its own greenlet with an OutboundSession (myevents, linger, event json, sendmsg
execute/hangup helpers, every command with a timeout). Framing and parsing are esl/'s own."""
from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable, Iterable

import gevent
import gevent.event
from gevent.event import AsyncResult
from gevent.server import StreamServer

from esl import commands
from esl.commands import Command
from esl.connection import EslProtocol, State
from esl.errors import EslCommandError, EslError, EslTimeout, SessionGone
from esl.events import Event, url_decode
from esl.framing import Frame

log = logging.getLogger(__name__)


class OutboundSession(EslProtocol):
    """One call handed to the app. channel is the `connect` reply as an Event named CHANNEL_DATA."""

    def __init__(self, sock, address: tuple, command_timeout: float = 10.0) -> None:
        super().__init__(command_timeout, f"outbound {address[0]}:{address[1]}")
        self.address = address
        self.channel: Event | None = None
        self.lingering = False  # FreeSWITCH sent the linger disconnect notice: the call is over
        self._over = gevent.event.Event()  # a disconnect notice came, or the socket closed
        self._waiters: list[tuple[str, str, AsyncResult]] = []  # (application, event uuid, result)
        self.on("CHANNEL_EXECUTE_COMPLETE", self._on_execute_complete)
        self.state = State.READY
        self._attach(sock)

    @property
    def uuid(self) -> str | None:
        return self.channel.unique_id if self.channel else None

    def connect(self, timeout: float | None = None) -> Event:
        reply = self.send(commands.connect(), timeout)
        # The connect reply is the channel's data as frame headers, URL-encoded, Content-Type last.
        headers = {key: url_decode(value) for key, value in reply.headers.items()}
        self.channel = Event(headers.get("Event-Name", "CHANNEL_DATA"), headers, None, None,
                             headers.get("Unique-ID"), "command/reply")
        return self.channel

    def _ok(self, command: Command, timeout: float | None) -> Frame:
        if self.lingering:
            raise SessionGone(f"{self.name}: call has hung up")
        reply = self.send(command, timeout)
        if not reply.reply_text.startswith("+OK"):
            raise EslCommandError(command.verb, reply.reply_text)
        return reply

    def myevents(self, fmt: str | None = "json", timeout: float | None = None) -> None:
        self._ok(commands.myevents(fmt), timeout)

    def linger(self, seconds: int | None = None, timeout: float | None = None) -> None:
        self._ok(commands.linger(seconds), timeout)

    def subscribe(self, names: Iterable[str], subclasses: Iterable[str] = (), timeout: float | None = None) -> None:
        self._ok(commands.event_json(names, subclasses), timeout)

    def execute(self, app: str, arg: str | None = None, *, wait: bool = False, event_lock: bool = False,
                timeout: float | None = None) -> Event | None:
        """sendmsg execute. wait=True returns its CHANNEL_EXECUTE_COMPLETE (needs that event subscribed)."""
        event_uuid = str(uuidlib.uuid4()) if wait else None
        command = commands.sendmsg_execute(app, arg, event_lock=event_lock, event_uuid=event_uuid)
        if not wait:
            self._ok(command, timeout)
            return None
        result = AsyncResult()
        entry = (app, event_uuid, result)
        self._waiters.append(entry)
        try:
            self._ok(command, timeout)
            return result.get(timeout=self.command_timeout if timeout is None else timeout)
        except gevent.Timeout:
            raise EslTimeout(f"{self.name}: {app} did not complete") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def answer(self, timeout: float | None = None) -> None:
        self.execute("answer", timeout=timeout)

    def park(self, timeout: float | None = None) -> None:
        self.execute("park", timeout=timeout)

    def playback(self, path: str, *, wait: bool = False, event_lock: bool = False,
                 timeout: float | None = None) -> Event | None:
        return self.execute("playback", path, wait=wait, event_lock=event_lock, timeout=timeout)

    def hangup(self, cause: str = "NORMAL_CLEARING", timeout: float | None = None) -> None:
        self._ok(commands.sendmsg_hangup(cause), timeout)

    def _on_execute_complete(self, event: Event) -> None:
        app_uuid, app = event.get("Application-UUID"), event.get("Application")
        match = next((w for w in self._waiters if w[1] == app_uuid), None) \
            or next((w for w in self._waiters if w[0] == app), None)
        if match is not None:
            self._waiters.remove(match)
            match[2].set(event)

    def wait_over(self, timeout: float | None = None) -> bool:
        """Until the call is over on this socket: FreeSWITCH's disconnect notice, or the socket closed.

        After a linger notice FreeSWITCH keeps the hung-up session for as long as the socket stays open
        (`linger` without seconds: until the client closes it), so the caller of this closes the socket."""
        gevent.wait([self._over, self._closed], timeout=timeout, count=1)
        return self._over.is_set() or self.wait_closed(0)

    def _on_disconnect_notice(self, frame: Frame) -> None:
        if frame.headers.get("Content-Disposition") == "linger":
            self.lingering = True
        self._over.set()
        for _, _, result in self._waiters:
            result.set_exception(SessionGone(f"{self.name}: call has hung up"))
        self._waiters.clear()


SessionHandler = Callable[[OutboundSession], object]


class OutboundServer:
    """Accepts FreeSWITCH's outbound-socket connections; handler(session) runs per call in its own greenlet
    (StreamServer spawns one per connection), after `connect` succeeded. Exceptions are logged, and the
    socket is closed when the handler returns."""

    def __init__(self, handler: SessionHandler, host: str = "127.0.0.1", port: int = 0, *,
                 command_timeout: float = 10.0, connect_timeout: float = 5.0, max_sessions: int = 1000) -> None:
        self.handler = handler
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.max_sessions = max_sessions
        self.sessions: set[OutboundSession] = set()
        self.server = StreamServer((host, port), self._handle)

    @property
    def port(self) -> int:
        return self.server.server_port

    def start(self) -> OutboundServer:
        self.server.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self.server.stop(timeout=timeout)
        for session in list(self.sessions):
            session.close()

    def _handle(self, sock, address) -> None:
        if len(self.sessions) >= self.max_sessions:
            log.warning("outbound socket: %d sessions, refusing %s", len(self.sessions), address)
            sock.close()  # the `socket` application fails and the dialplan goes on
            return
        session = OutboundSession(sock, address, self.command_timeout)
        self.sessions.add(session)
        try:
            session.connect(timeout=self.connect_timeout)
            self.handler(session)
        except EslError as exc:
            log.info("%s: session ended: %s", session.name, exc)
        except Exception:
            log.exception("%s: session handler failed", session.name)
        finally:
            self.sessions.discard(session)
            session.close()

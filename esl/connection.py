"""Event Socket connections for gevent.

EslProtocol is the shared core: one reader greenlet owns the socket's read side and the FrameParser;
a send lock makes each command's bytes and its place in the reply queue one atomic step, so concurrent
greenlets never interleave bytes and replies (command/reply and api/response, which FreeSWITCH answers
strictly in order) are matched first-in first-out. Every command waits with a timeout (EslTimeout); on a
dead connection it fails at once (EslNotConnected). Events are handed to a dispatcher greenlet so a slow
handler, or a handler that itself sends a command, never stalls the reader.

EslConnection is the inbound client (connect, auth, subscribe). esl/outbound.py reuses the core for the
outbound-socket mode.
"""
from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

import gevent
from gevent import socket
from gevent.event import AsyncResult
from gevent.event import Event as Flag
from gevent.lock import Semaphore
from gevent.queue import Queue

from esl import commands
from esl.commands import ApiCall, Command
from esl.errors import EslAuthError, EslCommandError, EslError, EslNotConnected, EslTimeout
from esl.events import Event, from_frame
from esl.framing import Frame, FrameParser
from esl.router import EventRouter, Handler

log = logging.getLogger(__name__)

JOB_TTL_S = 600.0
_STOP = object()


class State(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


class EslProtocol:
    """Reader, ordered replies, send lock, job tracking and event dispatch over one connected socket."""

    def __init__(self, command_timeout: float = 10.0, name: str = "esl") -> None:
        self.name = name
        self.command_timeout = command_timeout
        self.state = State.DISCONNECTED
        self.router = EventRouter()
        self._sock: socket.socket | None = None
        self._send_lock = Semaphore()
        self._pending: deque[AsyncResult] = deque()
        self._jobs: dict[str, tuple[float, AsyncResult]] = {}
        self._events: Queue = Queue()
        self._reader: gevent.Greenlet | None = None
        self._dispatcher: gevent.Greenlet | None = None
        self._closed = Flag()
        self._disconnect_callbacks: list[Callable[[EslProtocol], object]] = []
        self.disconnect_notice: Frame | None = None

    # ------------------------------------------------------------------ public
    def on(self, key: str, handler: Handler) -> None:
        """Call handler(event) for an event name, a CUSTOM subclass, or '*'."""
        self.router.on(key, handler)

    def off(self, key: str, handler: Handler) -> None:
        self.router.off(key, handler)

    def on_disconnect(self, callback: Callable[[EslProtocol], object]) -> None:
        self._disconnect_callbacks.append(callback)

    @property
    def connected(self) -> bool:
        return self.state is State.READY

    def send(self, command: Command, timeout: float | None = None) -> Frame:
        """Send one command and return its reply frame (command/reply or api/response)."""
        if self.state is not State.READY:
            raise EslNotConnected(f"{self.name}: {command.verb} not sent, connection is {self.state.value}")
        return self._request(command, timeout)

    def api(self, call: ApiCall, timeout: float | None = None, check: bool = False) -> str:
        """`api <line>`: the response body. check=True raises EslCommandError on a -ERR answer."""
        body = self.send(commands.api(call), timeout).text
        if check and body.startswith("-ERR"):
            raise EslCommandError(call.name, body.strip())
        return body

    def bgapi(self, call: ApiCall, timeout: float | None = None) -> str:
        """`bgapi <line>`: returns the Job-UUID; await the BACKGROUND_JOB with wait_job()."""
        frame = self.send(commands.bgapi(call), timeout)
        job = frame.headers.get("Job-UUID")
        if not job:
            raise EslCommandError(call.name, frame.reply_text)
        return job

    def bgapi_wait(self, call: ApiCall, timeout: float | None = None) -> Event:
        """bgapi, then its BACKGROUND_JOB event (each step with the timeout)."""
        return self.wait_job(self.bgapi(call, timeout), timeout)

    def wait_job(self, job_uuid: str, timeout: float | None = None) -> Event:
        """The BACKGROUND_JOB event of a bgapi sent on this connection (body `+OK ...` or `-ERR <CAUSE>`)."""
        entry = self._jobs.get(job_uuid)
        if entry is None:
            raise EslError(f"unknown job {job_uuid}")
        try:
            return entry[1].get(timeout=self.command_timeout if timeout is None else timeout)
        except gevent.Timeout:
            raise EslTimeout(f"{self.name}: no BACKGROUND_JOB for {job_uuid}") from None
        finally:
            if entry[1].ready():
                self._jobs.pop(job_uuid, None)

    def wait_for(self, key: str, predicate: Callable[[Event], bool] | None = None,
                 timeout: float | None = None) -> Event:
        """Block until an event with this key (name, CUSTOM subclass or '*') matching predicate arrives.
        Register before triggering the event (call it from a greenlet spawned first), or it may be missed."""
        result: AsyncResult = AsyncResult()

        def waiter(event: Event) -> None:
            if not result.ready() and (predicate is None or predicate(event)):
                result.set(event)

        self.on(key, waiter)
        try:
            return result.get(timeout=self.command_timeout if timeout is None else timeout)
        except gevent.Timeout:
            raise EslTimeout(f"{self.name}: no {key} event within the timeout") from None
        finally:
            self.off(key, waiter)

    def close(self) -> None:
        """Close for good: pending commands fail, no reconnect (the supervisor owns reconnecting)."""
        if self.state is State.CLOSED:
            return
        self._shutdown(State.CLOSED, EslNotConnected(f"{self.name}: closed"))

    def drop(self, reason: str = "dropped") -> None:
        """Abort the socket (e.g. heartbeats stopped) without closing for good: connect() may run again."""
        if self.state is not State.CLOSED:
            self._shutdown(State.DISCONNECTED, EslNotConnected(f"{self.name}: {reason}"))

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._closed.wait(timeout)

    # ------------------------------------------------------------------ internals
    def _attach(self, sock: socket.socket) -> None:
        self._sock = sock
        self._closed.clear()
        self.disconnect_notice = None
        self._reader = gevent.spawn(self._read_loop, sock)
        self._dispatcher = gevent.spawn(self._dispatch_loop, self._events)

    def _request(self, command: Command, timeout: float | None) -> Frame:
        wait = self.command_timeout if timeout is None else timeout
        result = AsyncResult()
        data = command.wire()
        with self._send_lock:
            sock = self._sock
            if sock is None:
                raise EslNotConnected(f"{self.name}: not connected")
            # Queue position and bytes on the wire must be one atomic step for FIFO reply matching.
            self._pending.append(result)
            try:
                with gevent.Timeout(wait, EslTimeout(f"{self.name}: sending {command.verb} timed out")):
                    sock.sendall(data)
            except (OSError, EslTimeout) as exc:
                # A half-written command corrupts the stream: this connection is finished.
                gevent.spawn(self._shutdown, State.DISCONNECTED, EslNotConnected(f"{self.name}: send failed"))
                if isinstance(exc, EslTimeout):
                    raise
                raise EslNotConnected(f"{self.name}: send failed: {exc}") from exc
        try:
            return result.get(timeout=wait)
        except gevent.Timeout:
            # The entry stays queued so the late reply is consumed in order, not given to the next caller.
            raise EslTimeout(f"{self.name}: no reply to {command.verb} within {wait}s") from None

    def _read_loop(self, sock: socket.socket) -> None:
        parser = FrameParser()
        error: Exception = EslNotConnected(f"{self.name}: connection lost")
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for frame in parser.feed(data):
                    self._on_frame(frame)
        except OSError as exc:
            error = EslNotConnected(f"{self.name}: connection lost: {exc}")
        except EslError as exc:  # a framing error: the stream can't be trusted any more
            log.error("%s: %s", self.name, exc)
            error = EslNotConnected(f"{self.name}: protocol error: {exc}")
        if self._sock is sock:
            self._shutdown(State.DISCONNECTED, error)

    def _on_frame(self, frame: Frame) -> None:
        kind = frame.content_type
        if kind == "command/reply" or kind == "api/response":
            if self._pending:
                result = self._pending.popleft()
                job = frame.headers.get("Job-UUID")
                if job:  # created here, before its BACKGROUND_JOB can be read: no race with wait_job
                    self._track_job(job)
                result.set(frame)
            else:
                self._on_unsolicited(frame)
        elif kind == "text/event-json" or kind == "text/event-plain":
            try:
                event = from_frame(frame)
            except ValueError:
                log.warning("%s: undecodable %s event dropped", self.name, kind)
                return
            if event.name == "BACKGROUND_JOB" and event.job_uuid in self._jobs:
                self._jobs[event.job_uuid][1].set(event)
            self._events.put(event)
        elif kind == "text/disconnect-notice":
            self.disconnect_notice = frame
            self._on_disconnect_notice(frame)
        elif kind == "auth/request" or kind == "text/rude-rejection":
            self._on_unsolicited(frame)

    def _on_unsolicited(self, frame: Frame) -> None:
        """Frames that are no reply to a pending command (auth/request, connect data in subclasses)."""

    def _on_disconnect_notice(self, frame: Frame) -> None:
        """Inbound: FreeSWITCH closes the socket right after; the reader sees EOF. Outbound overrides."""

    def _track_job(self, job: str) -> None:
        now = time.monotonic()
        if len(self._jobs) > 1000:  # jobs nobody waited for expire, so the table stays bounded
            for key, (created, _) in list(self._jobs.items()):
                if now - created > JOB_TTL_S:
                    del self._jobs[key]
        self._jobs[job] = (now, AsyncResult())

    def _dispatch_loop(self, queue: Queue) -> None:
        dispatch = self.router.dispatch
        for event in queue:
            if event is _STOP:
                break
            dispatch(event)

    def _shutdown(self, state: State, error: Exception) -> None:
        with self._send_lock:
            sock, self._sock = self._sock, None
        if sock is None and self.state in (State.DISCONNECTED, State.CLOSED):
            if state is State.CLOSED:
                self.state = State.CLOSED
            return
        self.state = state
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        while self._pending:
            self._pending.popleft().set_exception(error)
        for _, result in self._jobs.values():  # kept (with the error) so wait_job() reports it; they expire
            if not result.ready():
                result.set_exception(error)
        self._events.put(_STOP)
        self._events = Queue()
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent():
            reader.kill(block=False)
        self._closed.set()
        for callback in list(self._disconnect_callbacks):
            try:
                callback(self)
            except Exception:
                log.exception("%s: disconnect callback failed", self.name)


class EslConnection(EslProtocol):
    """Inbound ESL client to one FreeSWITCH node."""

    def __init__(self, host: str, port: int, password: str, *, connect_timeout: float = 5.0,
                 command_timeout: float = 10.0, name: str | None = None) -> None:
        super().__init__(command_timeout, name or f"esl {host}:{port}")
        self.host = host
        self.port = port
        self._auth_command = commands.auth(password)  # validated now; the password itself is never logged
        self.connect_timeout = connect_timeout
        self._auth_request = Flag()
        self._rejected = False
        self.subscription: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def connect(self) -> None:
        """Open the socket and authenticate, all within connect_timeout. Raises EslTimeout, EslAuthError,
        EslNotConnected (refused / dropped)."""
        if self.state is State.READY:
            return
        if self.state is State.CLOSED:
            raise EslNotConnected(f"{self.name}: closed for good")
        self.state = State.CONNECTING
        self._auth_request.clear()
        self._rejected = False
        deadline = time.monotonic() + self.connect_timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except TimeoutError:
            self.state = State.DISCONNECTED
            raise EslTimeout(f"{self.name}: connect timed out") from None
        except OSError as exc:
            self.state = State.DISCONNECTED
            raise EslNotConnected(f"{self.name}: connect failed: {exc}") from exc
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._attach(sock)
        try:
            self._authenticate(deadline)
        except BaseException:
            self._shutdown(State.DISCONNECTED, EslNotConnected(f"{self.name}: authentication failed"))
            raise

    def _authenticate(self, deadline: float) -> None:
        self.state = State.AUTHENTICATING
        if not self._auth_request.wait(max(0.0, deadline - time.monotonic())):
            if self._sock is None:
                raise EslNotConnected(f"{self.name}: closed before auth/request")
            raise EslTimeout(f"{self.name}: no auth/request within {self.connect_timeout}s")
        if self._sock is None or self._rejected:
            raise EslAuthError(f"{self.name}: rejected before authentication (ACL)")
        try:
            reply = self._request(self._auth_command, max(0.01, deadline - time.monotonic()))
        except EslNotConnected:
            raise EslAuthError(f"{self.name}: connection closed during authentication") from None
        if reply.reply_text != "+OK accepted":
            raise EslAuthError(f"{self.name}: authentication refused ({reply.reply_text})")
        self.state = State.READY

    def _on_unsolicited(self, frame: Frame) -> None:
        if frame.content_type == "auth/request":
            self._auth_request.set()
        elif frame.content_type == "text/rude-rejection":
            log.warning("%s: rude rejection (ACL)", self.name)
            self._rejected = True
            self._auth_request.set()  # wakes connect(), which fails with EslAuthError

    def subscribe(self, names: Iterable[str], subclasses: Iterable[str] = (), timeout: float | None = None) -> None:
        """`event json <names> CUSTOM <subclasses>`; remembered so a supervisor can resubscribe."""
        names, subclasses = tuple(names), tuple(subclasses)
        reply = self.send(commands.event_json(names, subclasses), timeout)
        if not reply.reply_text.startswith("+OK"):
            raise EslCommandError("event", reply.reply_text)
        self.subscription = (names, subclasses)

    def exit(self, timeout: float = 2.0) -> None:
        """Polite goodbye (`exit`), then close."""
        try:
            if self.state is State.READY:
                self.send(commands.exit_(), timeout)
        except EslError:
            pass
        self.close()

    def __enter__(self) -> EslConnection:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.exit()

"""Keeps one FreeSWITCH node connected: connect, authenticate, subscribe, and on any drop reconnect with
exponential backoff and jitter, resubscribe, then call on_connected (the caller's reconciliation hook).
Tracks the node's HEARTBEAT (Session-Count, Max-Sessions) and liveness; a node whose heartbeats stop is
dropped and reconnected (a half-open TCP connection otherwise looks alive forever).

The backoff is capped at 1.5 s by default: a node that comes back is reconnected within about 1.5 s
(issue 3 asks for 2 s), at the cost of one refused TCP connect per ~1 s while it is down."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gevent
from gevent.event import Event as Flag

from esl.connection import EslConnection, State
from esl.errors import EslError
from esl.events import Event
from esl.router import Handler

log = logging.getLogger(__name__)

CALL_EVENTS = ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
               "CHANNEL_HANGUP_COMPLETE", "DTMF", "BACKGROUND_JOB", "HEARTBEAT")
AUDIO_FORK_SUBCLASSES = tuple(f"mod_audio_fork::{name}" for name in (
    "connect", "connect_failed", "disconnect", "play_audio", "kill_audio", "json", "transcription", "error",
    "buffer_overrun", "transfer"))


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: in [d/2, d], d = min(maximum, initial * 2**attempt)."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 30)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(slots=True)
class NodeLoad:
    """What the node's last HEARTBEAT said (data only: calls/nodes.py turns it into a choice of node)."""

    session_count: int | None = None
    max_sessions: int | None = None
    idle_cpu: float | None = None
    last_heartbeat: float | None = None  # time.monotonic()
    reserved: int = 0  # calls started here since the last heartbeat (heartbeats come only every 20 s)


class EslSupervisor:
    def __init__(self, host: str, port: int, password: str, *, events: Iterable[str] = CALL_EVENTS,
                 subclasses: Iterable[str] = AUDIO_FORK_SUBCLASSES,
                 on_connected: Callable[[EslConnection], object] | None = None,
                 backoff_initial: float = 0.1, backoff_max: float = 1.5, heartbeat_timeout: float = 65.0,
                 connect_timeout: float = 5.0, command_timeout: float = 10.0, name: str | None = None) -> None:
        self.connection = EslConnection(host, port, password, connect_timeout=connect_timeout,
                                        command_timeout=command_timeout, name=name)
        self.name = self.connection.name
        self.events = tuple(events)
        self.subclasses = tuple(subclasses)
        self.on_connected = on_connected
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.heartbeat_timeout = heartbeat_timeout
        self.load = NodeLoad()
        self.connects = 0  # successful (re)connections, for observability and tests
        self._ready = Flag()
        self._stopped = False
        self._since = time.monotonic()
        self._runner: gevent.Greenlet | None = None
        self.connection.on("HEARTBEAT", self._on_heartbeat)

    # ------------------------------------------------------------------ public
    def start(self) -> EslSupervisor:
        if self._runner is None:
            self._stopped = False
            self._runner = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        self._stopped = True
        self.connection.close()
        if self._runner is not None:
            self._runner.kill(block=True, timeout=2)
            self._runner = None
        self._ready.clear()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def on(self, key: str, handler: Handler) -> None:
        """Handlers survive reconnects (they live on the connection's router)."""
        self.connection.on(key, handler)

    @property
    def alive(self) -> bool:
        """READY and a HEARTBEAT (or the connect) within heartbeat_timeout."""
        if self.connection.state is not State.READY:
            return False
        last = self.load.last_heartbeat if self.load.last_heartbeat is not None else self._since
        return time.monotonic() - max(last, self._since) < self.heartbeat_timeout

    # ------------------------------------------------------------------ internals
    def _on_heartbeat(self, event: Event) -> None:
        self.load.session_count = event.session_count
        self.load.max_sessions = event.max_sessions
        try:
            self.load.idle_cpu = float(event.get("Idle-CPU") or "nan")
        except ValueError:
            self.load.idle_cpu = None
        self.load.last_heartbeat = time.monotonic()
        self.load.reserved = 0

    def _run(self) -> None:
        attempt = 0
        while not self._stopped:
            if self._connect_once():
                attempt = 0
                self._watch()
            self._ready.clear()
            if self._stopped:
                break
            delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max)
            attempt += 1
            log.info("%s: reconnecting in %.2fs", self.name, delay)
            gevent.sleep(delay)

    def _connect_once(self) -> bool:
        conn = self.connection
        try:
            conn.connect()
            conn.subscribe(self.events, self.subclasses)
        except EslError as exc:
            log.warning("%s", exc)  # the message already names the node
            conn.drop("connect failed")
            return False
        self.connects += 1
        self._since = time.monotonic()
        self.load.last_heartbeat = None
        self._ready.set()
        log.info("%s: connected and subscribed", self.name)
        if self.on_connected is not None:
            gevent.spawn(self._call_hook, conn)
        return True

    def _call_hook(self, conn: EslConnection) -> None:
        try:
            self.on_connected(conn)
        except Exception:
            log.exception("%s: on_connected hook failed", self.name)

    def _watch(self) -> None:
        """Return when the connection is gone; drop it when heartbeats stop."""
        check = max(0.05, min(1.0, self.heartbeat_timeout / 4))
        while not self._stopped:
            if self.connection.wait_closed(check):
                return
            if not self.alive:
                log.warning("%s: no HEARTBEAT for %ss, reconnecting", self.name, self.heartbeat_timeout)
                self.connection.drop("heartbeat lost")
                return

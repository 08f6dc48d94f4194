"""Which app instance owns each FreeSWITCH node's channel events: one at a time, by a PostgreSQL advisory lock.

Every instance connects to every node and may send any node commands (dial, hang up, transfer, play, record);
FreeSWITCH runs a command whichever connection it comes on. Only the channel events are owned: exactly one
instance drives a node's calls from them (state transitions, billing, call.ended, reconciliation, the
watchdog), so nothing is done twice.

How: a session-level advisory lock per node, pg_try_advisory_lock(VOXBRIDGE, crc32(node name)), held on one
dedicated connection outside the pool. The lock lives exactly as long as that session: when the owner dies
(SIGKILL, crash, host gone) PostgreSQL ends its session and frees its locks, and another instance's next
try (every OWNERSHIP_INTERVAL_S) takes the node, reconciles it (calls/reconcile.py) and goes on. The session
sets TCP keepalives so a vanished host is noticed within seconds rather than the kernel's two hours. The owner
pings its connection each interval; a failed ping gives up every node at once (its locks are gone with it).

With SQLite there is one instance (config refuses API_WORKERS>1 on SQLite): it owns every node (OwnAll).
All instances must name the nodes alike (the same FREESWITCH_ESL_HOST list): the lock key is the name.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import gevent
import gevent.event

log = logging.getLogger(__name__)

LOCK_CLASS = 0x5642  # "VB": the first key of the two-key advisory lock, so other applications' locks never clash
OWNERSHIP_INTERVAL_S = 1.0


def lock_key(node_name: str) -> int:
    """The second advisory-lock key of a node: a signed 32-bit crc of its name."""
    return zlib.crc32(node_name.encode()) - 2 ** 31


class Ownership(Protocol):
    def owns(self, node_name: str) -> bool: ...

    def owned(self) -> list[str]: ...

    def start(self, on_acquired: Callable[[str], object], on_lost: Callable[[str], object]) -> None: ...

    def stop(self) -> None: ...

    def wait_first_pass(self, timeout: float | None = None) -> bool: ...


class OwnAll:
    """A single instance (SQLite, or tests that build one controller): every node is its own."""

    def __init__(self, node_names: Iterable[str] = ()) -> None:
        self.names = list(node_names)

    def owns(self, node_name: str) -> bool:
        return True

    def owned(self) -> list[str]:
        return list(self.names)

    def start(self, on_acquired: Callable[[str], object], on_lost: Callable[[str], object]) -> None:
        pass  # reconciliation runs from each node's on_connected, as with one process

    def stop(self) -> None:
        pass

    def wait_first_pass(self, timeout: float | None = None) -> bool:
        return True


class AdvisoryLocks:
    """Node ownership by PostgreSQL session-level advisory locks on a dedicated connection."""

    def __init__(self, node_names: Iterable[str], connect: Callable[[], Any],
                 interval_s: float = OWNERSHIP_INTERVAL_S) -> None:
        self.names = list(node_names)
        self._connect = connect
        self.interval_s = interval_s
        self._owned: set[str] = set()
        self._conn: Any = None
        self._runner: gevent.Greenlet | None = None
        self._first_pass = gevent.event.Event()
        self._on_acquired: Callable[[str], object] = lambda name: None
        self._on_lost: Callable[[str], object] = lambda name: None

    def owns(self, node_name: str) -> bool:
        return node_name in self._owned

    def owned(self) -> list[str]:
        return sorted(self._owned)

    def start(self, on_acquired: Callable[[str], object], on_lost: Callable[[str], object]) -> None:
        self._on_acquired, self._on_lost = on_acquired, on_lost
        if self._runner is None:
            self._runner = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.kill(block=True, timeout=2)
            self._runner = None
        self._drop_connection()  # closing the session frees the locks: another instance takes over at once

    def wait_first_pass(self, timeout: float | None = None) -> bool:
        return self._first_pass.wait(timeout)

    def _run(self) -> None:
        while True:
            try:
                self._pass()
            except Exception as exc:  # the connection broke: every lock went with it
                log.warning("node ownership: lock connection lost (%s); giving up %s", exc, self.owned() or "none")
                self._give_up_all()
            self._first_pass.set()
            gevent.sleep(self.interval_s)

    def _pass(self) -> None:
        if self._conn is None:
            self._conn = self._connect()
        cursor = self._conn.cursor()
        cursor.execute("SELECT 1")  # the ping: a dead session raises here
        for name in self.names:
            if name in self._owned:
                continue
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, lock_key(name)))
            if cursor.fetchone()[0]:
                self._owned.add(name)
                log.info("node ownership: this instance now owns %s", name)
                gevent.spawn(self._hook, self._on_acquired, name)

    def _give_up_all(self) -> None:
        lost, self._owned = self._owned, set()
        self._drop_connection()
        for name in sorted(lost):
            gevent.spawn(self._hook, self._on_lost, name)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # already broken: closing it is only tidying up
                log.debug("node ownership: closing the lock connection: %s", exc)

    @staticmethod
    def _hook(hook: Callable[[str], object], name: str) -> None:
        try:
            hook(name)
        except Exception:
            log.exception("node ownership hook for %s failed", name)


def postgres_connector(db: Any) -> Callable[[], Any]:
    """A function opening the dedicated lock session to the peewee database `db` (same parameters, off the pool),
    autocommit, with TCP keepalives on both ends so a vanished peer frees the locks within seconds."""

    def connect() -> Any:
        import psycopg2

        params = {k: v for k, v in db.connect_params.items() if v is not None}
        conn = psycopg2.connect(dbname=db.database, application_name="voxbridge-node-ownership", keepalives=1,
                                keepalives_idle=5, keepalives_interval=2, keepalives_count=3, connect_timeout=5,
                                **params)
        conn.autocommit = True
        cursor = conn.cursor()
        for setting, value in (("tcp_keepalives_idle", 5), ("tcp_keepalives_interval", 2),
                               ("tcp_keepalives_count", 3)):
            cursor.execute(f"SET {setting} = {int(value)}")  # constants only
        return conn

    return connect


def build_ownership(node_names: Iterable[str]) -> Ownership:
    """AdvisoryLocks on PostgreSQL, OwnAll on SQLite (one instance)."""
    from models import database, is_postgres

    names = list(node_names)
    if is_postgres():
        return AdvisoryLocks(names, postgres_connector(database.obj))
    return OwnAll(names)

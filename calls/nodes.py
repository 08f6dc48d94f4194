"""The FreeSWITCH nodes, the one place that chooses where a call goes: name them, pick one, send it commands.

This used to be three layers (esl.supervisor.NodeLoad's ratio, esl.pool.EslPool's pick, and this module's
capacity); it is now one. esl.supervisor.EslSupervisor keeps a node connected and records what its HEARTBEAT
says (NodeLoad, data only); everything that turns that into a choice lives here:

- pick(): the live node with the lowest (sessions + reserved) / max_sessions that still has room; the new
  call is reserved against it until the node's next HEARTBEAT (heartbeats come only every 20 s).
- capacity(): free sessions over the live nodes, in calls.

Every app instance connects to every node: any instance may send any node commands (dial, hang up,
transfer). Only the channel events are owned by one instance per node (calls/ownership.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import gevent

from esl.commands import ApiCall
from esl.events import Event
from esl.supervisor import EslSupervisor

UNKNOWN_NODE_CAPACITY = 100  # before a node's first HEARTBEAT tells its real Max-Sessions


class HostPort(Protocol):
    host: str
    port: int


class Node:
    """One FreeSWITCH: commands go over its supervised inbound connection."""

    def __init__(self, supervisor: EslSupervisor):
        self.supervisor = supervisor
        self.name = supervisor.name
        # Every event FreeSWITCH sends carries its Core-UUID (one per process: a restarted switch has a new
        # one), and so does an outbound socket's connect data: it is how a socket is matched to its node.
        self.core_uuid: str | None = None

    def learn(self, event: Event) -> None:
        core = event.get("Core-UUID")
        if core:
            self.core_uuid = core

    def api(self, call: ApiCall, timeout: float | None = None) -> str:
        return self.supervisor.connection.api(call, timeout)

    def bgapi(self, call: ApiCall, timeout: float | None = None) -> str:
        return self.supervisor.connection.bgapi(call, timeout)

    def wait_job(self, job_uuid: str, timeout: float) -> Event:
        return self.supervisor.connection.wait_job(job_uuid, timeout)

    @property
    def alive(self) -> bool:
        return self.supervisor.alive

    @property
    def connected(self) -> bool:
        return self.supervisor.wait_ready(0)

    def sessions(self) -> int:
        """Sessions from the last HEARTBEAT plus the calls started here since."""
        load = self.supervisor.load
        return (load.session_count or 0) + load.reserved

    def ratio(self) -> float:
        maximum = self.supervisor.load.max_sessions
        return self.sessions() / maximum if maximum else self.sessions() / 1000.0

    def free_sessions(self) -> int:
        load = self.supervisor.load
        if load.max_sessions is None:
            return max(0, UNKNOWN_NODE_CAPACITY - load.reserved)
        return max(0, load.max_sessions - self.sessions())


class NodePool:
    def __init__(self, nodes: Iterable[HostPort], password: str, timeout_s: float = 10.0,
                 events: Iterable[str] | None = None, subclasses: Iterable[str] | None = None,
                 **supervisor_kwargs: Any):
        self._on_connected: Callable[[Node], object] | None = None
        kwargs: dict[str, Any] = dict(supervisor_kwargs, command_timeout=timeout_s, on_connected=self._connected)
        if events is not None:
            kwargs["events"] = tuple(events)
        if subclasses is not None:
            kwargs["subclasses"] = tuple(subclasses)
        supervisors = [EslSupervisor(n.host, n.port, password, **kwargs) for n in nodes]
        if not supervisors:
            raise ValueError("NodePool needs at least one node")
        self.nodes = {sup.name: Node(sup) for sup in supervisors}

    def _connected(self, connection: Any) -> None:
        node = self.nodes.get(connection.name)
        if node is not None and self._on_connected is not None:
            self._on_connected(node)

    def start(self, on_event: Callable[[str, Event], None] | None = None,
              on_connected: Callable[[Node], object] | None = None) -> NodePool:
        self._on_connected = on_connected
        for node in self.nodes.values():
            if on_event is not None:
                node.supervisor.on("*", lambda event, node=node: self._deliver(node, event, on_event))
            node.supervisor.start()
        return self

    @staticmethod
    def _deliver(node: Node, event: Event, on_event: Callable[[str, Event], None]) -> None:
        node.learn(event)
        on_event(node.name, event)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.supervisor.stop()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once at least one node is connected."""
        waiters = [gevent.spawn(node.supervisor.wait_ready, timeout) for node in self.nodes.values()]
        try:
            done = gevent.wait(waiters, timeout=timeout, count=1)
            return any(w.value for w in done)
        finally:
            gevent.killall(waiters, block=False)

    def live(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.alive]

    def capacity(self) -> int:
        return sum(node.free_sessions() for node in self.live())

    def pick(self, reserve: bool = True) -> Node | None:
        """The live node with the lowest load that still has room, or None. reserve=True counts the new call
        against it until the node's next HEARTBEAT."""
        candidates = [node for node in self.live() if node.ratio() < 1.0]
        if not candidates:
            return None
        best = min(candidates, key=Node.ratio)
        if reserve:
            best.supervisor.load.reserved += 1
        return best

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def health(self) -> list[dict[str, Any]]:
        return [{"node": name, "alive": node.supervisor.alive, "sessions": node.supervisor.load.session_count,
                 "max_sessions": node.supervisor.load.max_sessions} for name, node in self.nodes.items()]

"""The FreeSWITCH nodes as the call controller sees them: pick one, send it commands, watch it.

A thin layer over esl.pool.EslPool: it names nodes, turns "no live node" into None, and reports
capacity in calls (free sessions from each node's last HEARTBEAT, minus calls started since).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from esl.commands import ApiCall
from esl.errors import NoLiveNode
from esl.events import Event
from esl.pool import EslPool
from esl.supervisor import EslSupervisor

UNKNOWN_NODE_CAPACITY = 100  # before a node's first HEARTBEAT tells its real Max-Sessions


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

    def free_sessions(self) -> int:
        load = self.supervisor.load
        if load.max_sessions is None:
            return max(0, UNKNOWN_NODE_CAPACITY - load.reserved)
        return max(0, load.max_sessions - (load.session_count or 0) - load.reserved)


class NodePool:
    def __init__(self, nodes: Iterable[Any], password: str, timeout_s: float, events: Iterable[str],
                 subclasses: Iterable[str]):
        self._on_connected: Callable[[Node], object] | None = None
        self.pool = EslPool(list(nodes), password, events=tuple(events), subclasses=tuple(subclasses),
                            command_timeout=timeout_s, on_connected=self._connected)
        self.nodes = {sup.name: Node(sup) for sup in self.pool.supervisors}

    def _connected(self, connection) -> None:
        node = self.nodes.get(connection.name)
        if node is not None and self._on_connected is not None:
            self._on_connected(node)

    def start(self, on_event: Callable[[str, Event], None], on_connected: Callable[[Node], object]) -> None:
        self._on_connected = on_connected
        for node in self.nodes.values():
            node.supervisor.on("*", lambda event, node=node: self._deliver(node, event, on_event))
        self.pool.start()

    @staticmethod
    def _deliver(node: Node, event: Event, on_event: Callable[[str, Event], None]) -> None:
        node.learn(event)
        on_event(node.name, event)

    def stop(self) -> None:
        self.pool.stop()

    def wait_ready(self, timeout: float) -> bool:
        return self.pool.wait_ready(timeout)

    def capacity(self) -> int:
        return sum(self.nodes[sup.name].free_sessions() for sup in self.pool.live())

    def pick(self) -> Node | None:
        try:
            return self.nodes[self.pool.pick().name]
        except NoLiveNode:
            return None

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def health(self) -> list[dict[str, Any]]:
        return [{"node": name, "alive": node.supervisor.alive, "sessions": node.supervisor.load.session_count,
                 "max_sessions": node.supervisor.load.max_sessions} for name, node in self.nodes.items()]

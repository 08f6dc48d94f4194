"""Several FreeSWITCH nodes: one supervisor each; pick() chooses the least loaded live node."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import gevent

from esl.errors import NoLiveNode
from esl.router import Handler
from esl.supervisor import EslSupervisor


class HostPort(Protocol):
    host: str
    port: int


class EslPool:
    def __init__(self, nodes: Iterable[HostPort], password: str, **supervisor_kwargs: object) -> None:
        self.supervisors = [EslSupervisor(node.host, node.port, password, **supervisor_kwargs) for node in nodes]
        if not self.supervisors:
            raise ValueError("EslPool needs at least one node")

    def start(self) -> EslPool:
        for sup in self.supervisors:
            sup.start()
        return self

    def stop(self) -> None:
        for sup in self.supervisors:
            sup.stop()

    def on(self, key: str, handler: Handler) -> None:
        for sup in self.supervisors:
            sup.on(key, handler)

    def live(self) -> list[EslSupervisor]:
        return [sup for sup in self.supervisors if sup.alive]

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once at least one node is connected."""
        waiters = [gevent.spawn(sup.wait_ready, timeout) for sup in self.supervisors]
        try:
            done = gevent.wait(waiters, timeout=timeout, count=1)
            return any(w.value for w in done)
        finally:
            gevent.killall(waiters, block=False)

    def pick(self, reserve: bool = True) -> EslSupervisor:
        """The live node with the lowest (sessions + reserved) / max_sessions that still has room.
        reserve=True counts the new call against it until the node's next HEARTBEAT."""
        candidates = [sup for sup in self.live() if sup.load.ratio < 1.0]
        if not candidates:
            raise NoLiveNode("no live FreeSWITCH node with capacity")
        best = min(candidates, key=lambda sup: sup.load.ratio)
        if reserve:
            best.load.reserved += 1
        return best

    def by_name(self, name: str) -> EslSupervisor | None:
        return next((sup for sup in self.supervisors if sup.name == name), None)

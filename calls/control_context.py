"""What every part of the call controller shares: the configuration, the FreeSWITCH nodes, the pipeline's
hooks and the live calls (calls/live_call.py). One object, so that replacing the configuration or the media
hooks on the controller (the tests do) is seen by every part at once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from calls.live_call import LiveCall, LiveCalls
from calls.media_hooks import MediaHooks
from config import Config
from esl.commands import ApiCall

if TYPE_CHECKING:
    from calls.nodes import Node, NodePool


@dataclass
class ControlContext:
    config: Config
    pool: NodePool
    media: MediaHooks
    calls: LiveCalls

    def node_of(self, live: LiveCall) -> Node:
        """The node that carries a live call's channel."""
        return self.pool.node(live.node)

    def api(self, live: LiveCall, command: ApiCall) -> str:
        """Send a command for a live call to the node that carries it."""
        return self.node_of(live).api(command)

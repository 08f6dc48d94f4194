"""What every part of the call controller shares: the configuration, the FreeSWITCH nodes, the pipeline's
hooks, the live calls (calls/live_call.py) and which nodes' events this instance owns (calls/ownership.py).
One object, so that replacing the configuration or the media hooks on the controller (the tests do) is seen by
every part at once."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from calls.live_call import LiveCall, LiveCalls
from calls.media_hooks import MediaHooks
from calls.ownership import OwnAll, Ownership
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
    # Which nodes' channel events this instance drives; a single instance owns them all.
    ownership: Ownership = field(default_factory=OwnAll)

    def node_of(self, live: LiveCall) -> Node:
        """The node that carries a live call's channel."""
        return self.pool.node(live.node)

    def api(self, live: LiveCall, command: ApiCall) -> str:
        """Send a command for a live call to the node that carries it, whichever instance owns that node's
        events: FreeSWITCH runs a command whichever connection it comes on (a LiveCall made from the row for one
        command, calls/cross_instance.py remote_live, names the node too)."""
        return self.node_of(live).api(command)

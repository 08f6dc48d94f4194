"""FreeSWITCH Event Socket client: framing, events, command builder, connection, supervisor, outbound server.

Import from the submodules (esl.commands, esl.connection, ...); the names below are the common ones."""
from esl.connection import EslConnection, State
from esl.errors import (
    EslAuthError,
    EslCommandError,
    EslError,
    EslNotConnected,
    EslTimeout,
    FrameError,
    NoLiveNode,
    SessionGone,
    UnsafeValue,
)
from esl.events import Event
from esl.outbound import OutboundServer, OutboundSession
from esl.supervisor import EslSupervisor

__all__ = [
    "EslAuthError", "EslCommandError", "EslConnection", "EslError", "EslNotConnected",
    "EslSupervisor", "EslTimeout", "Event", "FrameError", "NoLiveNode", "OutboundServer", "OutboundSession",
    "SessionGone", "State", "UnsafeValue",
]

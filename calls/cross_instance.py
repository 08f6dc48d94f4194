"""A live call as several app instances see it: who may change what, and how a call moves between instances.

The truth about a live call is its `calls` row: status, node (the FreeSWITCH that carries it, written before
the originate is sent), channel_uuid, job_uuid, and the CallEvent markers of a requested hangup or transfer.
In memory (LiveCalls, calls/live_call.py) an instance keeps only what it needs to drive the call:

| who                                   | what it holds in memory                      | what it may change          |
|---------------------------------------|----------------------------------------------|-----------------------------|
| the owner of the call's node          | LiveCall, adopted from the row on the first   | status, billing, call.ended |
|  (calls/ownership.py)                 | event or by reconciliation                   | (from the node's events)    |
| the dialing instance, until the       | LiveCall (job in flight)                     | the attempt, if the job     |
|  originate's job returns              |                                              | fails (-ERR)                |
| any instance (API, agent tools)       | nothing: a LiveCall made from the row for    | sends commands to the node, |
|                                       | one command (remote_live)                    | writes request markers      |
| where a socket or an audio stream     | LiveCall for the socket (held_here) / the    | the stream and its session  |
|  lands                                | voice Session (calls/media.py)               |                             |

Every state change is a conditional UPDATE (calls/state.py): two instances racing on a call cannot both move
it, so call.ended (written with the final transition) is enqueued once per call.

A voice session that runs on an instance other than the node's owner marks its start and its end on the row
(REMOTE_SESSION CallEvents, written by the instance it runs on): at the hang-up the owner waits (bounded) for
the end marker before it ends the attempt, so call.ended carries the agent's turn the hang-up cut off there,
as it does when the session runs on the owner (calls/ending.py stops a local session first).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent

from calls.control_context import ControlContext
from calls.live_call import UUID_RE, LiveCall, LiveCalls
from esl.events import Event
from models import LIVE_STATUSES, WEB, Call, CallEvent, database

if TYPE_CHECKING:
    from calls.nodes import Node

log = logging.getLogger(__name__)
REMOTE_SESSION = "voice session on a non-owner"  # + " started" / " ended"; data: the attempt
REMOTE_SESSION_WAIT_S = 5.0  # as calls/ending.py waits for a local session: a few database writes
REMOTE_SESSION_POLL_S = 0.05

# Events that concern a channel (HEARTBEAT, BACKGROUND_JOB, ... do not): only these may adopt a call.
CHANNEL_EVENTS = frozenset({"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
                            "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE_COMPLETE", "DTMF", "CUSTOM"})


def live_from_row(calls: LiveCalls, call: Call) -> LiveCall:
    """A LiveCall made from the database row (the node and channel it names), for driving or one command."""
    return LiveCall(call.id, call.organization_id, call.attempt, call.node, call.channel_uuid or call.id,
                    job_uuid=call.job_uuid, hangup_requested=calls.hangup_requested(call))


def adopt_from_event(ctx: ControlContext, node_name: str, event: Event) -> None:
    """The owner of `node_name` meets an event of a call it does not drive yet (dialed by another instance, or
    an inbound call whose socket landed elsewhere): when the row says the call is live on this node, drive it."""
    if event.name not in CHANNEL_EVENTS:
        return
    calls = ctx.calls
    call_id = calls.call_id_of(event)
    if not call_id or not UUID_RE.match(call_id) or call_id in calls:
        return
    call = Call.get_or_none(Call.id == call_id)
    if call is None or call.status not in LIVE_STATUSES or call.direction == WEB or call.node != node_name:
        return
    live = calls.adopt(call, node_name, call.channel_uuid or call.id)
    live.job_uuid = call.job_uuid
    live.hangup_requested = calls.hangup_requested(call)


def observe_foreign(ctx: ControlContext, note_bridged_leg: Callable[[Event], None], event: Event) -> None:
    """An event of a node another instance owns: only this instance's own memory is touched (never the row).

    The far end's SIP status on a loopback B-leg is noted for a job this instance is waiting on; the keys a
    caller presses reach a voice session running here; the hang-up of a call whose socket or stream is held
    here releases it (the owner ends the attempt)."""
    name = event.name
    if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        note_bridged_leg(event)
    call_id = ctx.calls.call_id_of(event)
    if not call_id:
        return
    if name == "DTMF" and event.unique_id == call_id:
        ctx.media.on_dtmf(call_id, event.dtmf_digit or "")
    elif name == "CHANNEL_HANGUP_COMPLETE":
        live = ctx.calls.get(call_id)
        if live is not None and event.unique_id == live.channel:
            ctx.calls.forget(call_id)
        if event.unique_id == call_id:
            release_media(ctx, call_id)


def release_media(ctx: ControlContext, call_id: str) -> None:
    """The call hung up and its voice session runs here, not on the owner: record the agent's cut-off turn,
    free the session and say so on the row (the owner waits for that before call.ended); the owner analyses
    the call (once, calls/media.py analyze)."""
    try:
        ran_here = call_id in getattr(ctx.media, "sessions", {})
        ctx.media.end_session(call_id)
        ctx.media.release(call_id)
        call = Call.get_or_none(Call.id == call_id) if ran_here else None
        if call is not None:
            note_remote_session(call, "ended")
    except Exception:
        log.exception("call %s: releasing its voice session failed", call_id)


def session_is_remote(controller: Any, call: Call) -> bool:
    """Whether a voice session for `call` starting here runs on an instance that does not own its node."""
    owns = getattr(getattr(controller, "ownership", None), "owns", None)
    return owns is not None and bool(call.node) and not owns(call.node)


def note_remote_session(call: Call, what: str) -> None:
    """Mark on the row that a voice session of the call's attempt "started" or "ended" on a non-owner."""
    CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                     reason=f"{REMOTE_SESSION} {what}", data={"attempt": call.attempt})


def remote_session_pending(call: Call) -> bool:
    """Whether the attempt's latest voice session runs on another instance and has not marked its end."""
    rows = CallEvent.select(CallEvent.reason, CallEvent.data).where(
        CallEvent.call == call.id, CallEvent.reason.startswith(REMOTE_SESSION)).order_by(CallEvent.id)
    marks = [r.reason for r in rows if isinstance(r.data, dict) and r.data.get("attempt") == call.attempt]
    return bool(marks) and marks[-1].endswith(" started")


def wait_remote_session(call: Call, timeout: float = REMOTE_SESSION_WAIT_S) -> bool:
    """Wait (polling the row, bounded) until the call's voice session on another instance has recorded its
    last turn and marked its end; False when it did not within `timeout` (that instance may be gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.connection_context():
            if not remote_session_pending(call):
                return True
        gevent.sleep(REMOTE_SESSION_POLL_S)
    log.warning("call %s: its voice session on another instance did not end within %.0f s; ending the call "
                "anyway", call.id, timeout)
    return False


def remote_live(ctx: ControlContext, call: Call) -> LiveCall | None:
    """For a command on a call this instance does not drive: a LiveCall from the row when the call is live
    on a node this instance knows, else None (queued, not yet dialed, or a web call)."""
    fresh = Call.get_or_none(Call.id == call.id)
    if fresh is None or fresh.status not in LIVE_STATUSES or not fresh.node or fresh.node not in ctx.pool.nodes:
        return None
    return live_from_row(ctx.calls, fresh)


def driving_or_remote(ctx: ControlContext, call_id: str) -> tuple[LiveCall | None, Call | None]:
    """The call's LiveCall here, else one from its row (a voice session may run on a non-owning instance)."""
    live = ctx.calls.get(call_id)
    call = Call.get_or_none(Call.id == call_id)
    if live is None and call is not None:
        live = remote_live(ctx, call)
    return live, call


def node_acquired(ctx: ControlContext, reconcile: Callable[[Node], object], name: str) -> None:
    """This instance now owns `name`: reconcile it (adopt what it still carries, close what it lost)."""
    node = ctx.pool.node(name)
    if node.connected:
        reconcile(node)
    # else: the pool's on_connected reconciles it once the connection is up


def node_lost(ctx: ControlContext, name: str) -> None:
    """Another instance may own `name` now: stop driving its calls here (the new owner adopts them), except the
    ones whose originate job or socket is still held here (their hang-up event releases them)."""
    for call_id, live in list(ctx.calls.items()):
        if live.node == name and live.job_uuid is not None and not live.held_here:
            ctx.calls.forget(call_id)
    log.warning("no longer owning %s: its calls are left to the instance that takes it", name)

"""A live call as several app instances see it: who may change what, and how a call moves between instances.

The truth about a live call is its `calls` row: status, node (the FreeSWITCH that carries it, written before
the originate is sent), channel_uuid, job_uuid, and the CallEvent markers of a requested hangup or transfer.
In memory (CallController.live, a LiveCall per call) an instance keeps only what it needs to drive the call:

| who                                   | what it holds in memory                      | what it may change          |
|---------------------------------------|----------------------------------------------|-----------------------------|
| the owner of the call's node          | LiveCall, adopted from the row on the first   | status, billing, call.ended |
|  (calls/ownership.py)                 | event or by reconciliation                   | (from the node's events)    |
| the dialing instance, until the       | LiveCall (job in flight)                     | the attempt, if the job     |
|  originate's job returns              |                                              | fails (-ERR)                |
| any instance (API, agent tools)       | nothing: a LiveCall made from the row for    | sends commands to the node, |
|                                       | one command                                  | writes request markers      |
| where a socket or an audio stream     | LiveCall for the socket (_hold) / the voice  | the stream and its session  |
|  lands                                | Session (calls/media.py)                     |                             |

Every state change is a conditional UPDATE (calls/state.py): two instances racing on a call cannot both move
it, so call.ended (written with the final transition) is enqueued once per call.
"""
from __future__ import annotations

import logging
from typing import Any

from models import LIVE_STATUSES, WEB, Call

log = logging.getLogger(__name__)

# Events that concern a channel (HEARTBEAT, BACKGROUND_JOB, ... do not): only these may adopt a call.
CHANNEL_EVENTS = frozenset({"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
                            "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE_COMPLETE", "DTMF", "CUSTOM"})


def event_call_id(event: Any) -> str | None:
    return event.get("variable_voxbridge_call_id") or event.get("Unique-ID")


def live_from_row(control: Any, call: Call) -> Any:
    """A LiveCall made from the database row (the node and channel it names), for driving or one command."""
    from calls.controller import LiveCall

    return LiveCall(call.id, call.organization_id, call.attempt, call.node, call.channel_uuid or call.id,
                    job_uuid=call.job_uuid, hangup_requested=control._hangup_requested(call))


def adopt_from_event(control: Any, node_name: str, event: Any) -> None:
    """The owner of `node_name` meets an event of a call it does not drive yet (dialed by another instance, or
    an inbound call whose socket landed elsewhere): when the row says the call is live on this node, drive it."""
    from calls.controller import UUID_RE

    if event.name not in CHANNEL_EVENTS:
        return
    call_id = event_call_id(event)
    if not call_id or not UUID_RE.match(call_id) or call_id in control.live:
        return
    call = Call.get_or_none(Call.id == call_id)
    if call is None or call.status not in LIVE_STATUSES or call.direction == WEB or call.node != node_name:
        return
    control.live.setdefault(call.id, live_from_row(control, call))
    control.limits.add(call.id, call.organization_id)


def observe_foreign(control: Any, node_name: str, event: Any) -> None:
    """An event of a node another instance owns: only this instance's own memory is touched (never the row).

    The far end's SIP status on a loopback B-leg is noted for a job this instance is waiting on; the keys a
    caller presses reach a voice session running here; the hang-up of a call whose socket or stream is held
    here releases it (the owner ends the attempt)."""
    name = event.name
    if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        control._note_bridged_leg(event)
    call_id = event_call_id(event)
    if not call_id:
        return
    if name == "DTMF" and event.get("Unique-ID") == call_id:
        control.media.on_dtmf(call_id, event.get("DTMF-Digit") or "")
    elif name == "CHANNEL_HANGUP_COMPLETE":
        live = control.live.get(call_id)
        if live is not None and event.get("Unique-ID") == (live.channel_uuid or call_id):
            forget_local(control, call_id)
        if event.get("Unique-ID") == call_id:
            release_media(control, call_id)


def forget_local(control: Any, call_id: str) -> None:
    """Drop this instance's memory of a call another instance drives (its row is left alone)."""
    control.limits.remove(call_id)
    control.live.pop(call_id, None)


def release_media(control: Any, call_id: str) -> None:
    """The call hung up and its voice session runs here, not on the owner: record the agent's cut-off turn and
    free the session; the owner analyses the call (once, calls/media.py analyze)."""
    release = getattr(control.media, "release", None)
    if release is None:
        return
    try:
        control.media.end_session(call_id)
        release(call_id)
    except Exception:
        log.exception("call %s: releasing its voice session failed", call_id)


def remote_live(control: Any, call: Call) -> Any:
    """For a command on a call this instance does not drive: a LiveCall from the row when the call is live
    on a node this instance knows, else None (queued, not yet dialed, or a web call)."""
    fresh = Call.get_or_none(Call.id == call.id)
    if fresh is None or fresh.status not in LIVE_STATUSES or not fresh.node or fresh.node not in control.pool.nodes:
        return None
    return live_from_row(control, fresh)


def node_acquired(control: Any, name: str) -> None:
    """This instance now owns `name`: reconcile it (adopt what it still carries, close what it lost)."""
    node = control.pool.node(name)
    if node.connected:
        control.reconcile(node)
    # else: on_connected reconciles it once the connection is up


def node_lost(control: Any, name: str) -> None:
    """Another instance may own `name` now: stop driving its calls here (the new owner adopts them), except the
    ones whose originate job or socket is still held here (their hang-up event releases them)."""
    for call_id, live in list(control.live.items()):
        if live.node == name and live.job_uuid is not None and not getattr(live, "held_here", False):
            forget_local(control, call_id)
    log.warning("no longer owning %s: its calls are left to the instance that takes it", name)

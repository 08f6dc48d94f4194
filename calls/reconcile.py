"""Reconciliation after (re)connecting to a FreeSWITCH node: adopt the calls it still has, close the ones
it lost, hang up channels whose calls are closed.

What happens to a live call (calling, ringing, in-progress) of that node, by direction and by whether its
channel still exists (uuid_exists, the authority: show channels lags):

| channel | direction | state                               | outcome                                          |
|---------|-----------|-------------------------------------|--------------------------------------------------|
| exists  | any       | any                                 | adopted: driven again, counted in the limits     |
| exists  | any       | calling/ringing, channel ACTIVE     | adopted and moved to in-progress (answered while |
|         |           |                                     | nobody owned the node's events)                  |
| gone    | any       | answered                            | completed, billed from its answer to now         |
| gone    | any       | not answered, hangup was requested  | canceled                                         |
| gone    | outbound  | calling, never sent (no job uuid)   | requeued, its attempt given back: nothing rang   |
| gone    | outbound  | sent (job uuid) or ringing          | failed, retried on the usual backoff             |
| gone    | inbound   | not answered                        | failed, "inbound call vanished during restart"   |

With several app instances (calls/ownership.py) this runs on the instance that owns the node, when it connects
or takes the node over. A call another instance may be originating right now (CALLING, claimed or dialed within
IN_FLIGHT_S) whose channel does not exist yet is left alone and looked at again IN_FLIGHT_S later: closing it
now could have it dialed twice.

Web calls (direction `web`) are not FreeSWITCH's: they are left alone here (webcall/calls.py closes them).

An inbound call is never requeued: the queue would dial it out, to the organization's own number with the
original caller's number as caller ID. Nobody can call a caller back who hung up on a ringing line.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import gevent

from calls.call_control import CallControl
from calls.control_context import ControlContext
from calls.live_call import UUID_RE
from calls.state import finish_attempt, transition
from esl import commands
from esl.errors import EslError
from esl.responses import show_channels
from models import (
    CALLING,
    CANCELED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    LIVE_STATUSES,
    QUEUED,
    WEB,
    Call,
    Organization,
    database,
    utcnow,
)

if TYPE_CHECKING:
    from calls.nodes import Node

AnsweredHook = Callable[[Call, str], None]

log = logging.getLogger(__name__)

VANISHED = "the channel vanished from FreeSWITCH (lost while the app or the switch was down)"
INBOUND_VANISHED = "inbound call vanished during restart"
# An originate's channel exists within milliseconds of the bgapi; past this a CALLING call without one is not
# in flight any more (its dialer died, or the channel was lost).
IN_FLIGHT_S = 15.0


def reconcile(ctx: ControlContext, control: CallControl, node: Node,
              on_answered: AnsweredHook | None = None) -> dict[str, int]:
    """Adopt calls `node` still has, close the ones it lost, kill orphans; counts of each. on_answered starts
    what an answer starts (ChannelEvents.start_answered), for a call found answered whose CHANNEL_ANSWER was
    lost."""
    calls = ctx.calls
    counts = {"adopted": 0, "closed": 0, "orphans_killed": 0, "in_flight": 0}
    with database.connection_context():
        answered = answered_channels(node)
        # Web calls have no channel on any node (webcall/ ends them): uuid_exists would say they vanished.
        for call in Call.select().where(Call.status.in_(LIVE_STATUSES), Call.direction != WEB,
                                        (Call.node == node.name) | Call.node.is_null()):
            mine = calls.get(call.id)
            if call.status == CALLING and mine is not None and mine.job_uuid is None:
                # Claimed by this process and being originated right now: uuid_exists cannot know it yet, and
                # requeueing it would dial it twice.
                continue
            channel = call.channel_uuid or call.id
            # Driven before asking: a hang-up whose event comes while uuid_exists is on its way then ends the
            # call here (and frees its slot). Adopted only after a "true", a call whose end was handled in that
            # moment would be driven again, holding its slot for good.
            live = calls.adopt(call, node.name, channel)
            try:
                exists = node.api(commands.uuid_exists(channel)).strip() == "true"
            except Exception:
                if mine is None:
                    calls.forget(call.id)
                raise
            if exists and calls.get(call.id) is not live:
                continue  # ended by its own hang-up event meanwhile
            if exists:
                counts["adopted"] += 1
                if channel in answered and call.status != IN_PROGRESS:
                    mark_answered(call, channel, on_answered)
                if calls.hangup_requested(call):  # asked for before the drop: carry it out now
                    live.hangup_requested = True
                    control.kill(live, channel)
                continue
            call_id = call.id
            call = Call.get_or_none(Call.id == call_id)  # fresh: an event may have ended it meanwhile
            ended = call is None or call.status not in LIVE_STATUSES
            # Claimed when the rows were read, dialed on another node since: not this node's call.
            elsewhere = not ended and call.node is not None and call.node != node.name
            flying = not ended and not elsewhere and in_flight(call)  # maybe being dialed by another instance
            if ended or elsewhere or flying:
                if mine is None:
                    calls.forget(call_id)  # not driven here after all
                counts["in_flight"] += int(flying)  # looked at again later
                continue
            close_vanished(ctx, call)
            counts["closed"] += 1
        counts["orphans_killed"] = kill_orphans(node, UUID_RE)
    log.info("reconciled %s: %s", node.name, counts)
    calls.reconciled = True
    if counts["in_flight"]:
        gevent.spawn_later(IN_FLIGHT_S, _again, ctx, control, node, on_answered)
    return counts


def answered_channels(node: Node) -> set[str]:
    """The channels FreeSWITCH says are answered (show channels' callstate ACTIVE); empty when it cannot say."""
    try:
        rows = show_channels(node.api(commands.show_channels_json()))
    except (EslError, ValueError) as exc:
        log.warning("%s: show channels failed: %s", node.name, exc)
        return set()
    return {row["uuid"] for row in rows if isinstance(row.get("uuid"), str) and row.get("callstate") == "ACTIVE"}


def mark_answered(call: Call, channel: str, on_answered: AnsweredHook | None) -> None:
    """The call was answered while no instance handled the node's events (its CHANNEL_ANSWER is lost): move it
    to in-progress as of now (the real answer time is unknown; billing starts here) and start what an answer
    starts (recording, the agent's audio stream)."""
    if transition(call, IN_PROGRESS, reason="answered (found answered by reconciliation)", answered_at=utcnow(),
                  channel_uuid=channel) and on_answered is not None:
        on_answered(call, channel)


def in_flight(call: Call) -> bool:
    """CALLING and claimed (no node yet) or dialed within IN_FLIGHT_S: an originate may be on its way."""
    if call.status != CALLING:
        return False
    since = call.dialed_at if call.node is not None else call.updated_at
    return since is not None and utcnow() - since < dt.timedelta(seconds=IN_FLIGHT_S)


def _again(ctx: ControlContext, control: CallControl, node: Node, on_answered: AnsweredHook | None) -> None:
    """The second look at calls that were in flight, while this instance still owns the node."""
    if not ctx.ownership.owns(node.name):
        return
    try:
        reconcile(ctx, control, node, on_answered)
    except Exception:
        log.exception("reconciling %s again failed", node.name)


def kill_orphans(node: Node, uuid_re: re.Pattern[str]) -> int:
    """Channels FreeSWITCH still has for calls the database has closed (the app died before the hangup,
    or closed them as vanished): hang them up. show channels lags and keeps ghost rows, so each one
    is confirmed with uuid_exists first."""
    try:
        rows = show_channels(node.api(commands.show_channels_json()))
    except (EslError, ValueError) as exc:
        log.warning("%s: show channels failed: %s", node.name, exc)
        return 0
    ids = {row.get("uuid") for row in rows if isinstance(row.get("uuid"), str) and uuid_re.match(row["uuid"])}
    if not ids:
        return 0
    closed = [c.id for c in Call.select(Call.id).where(Call.id.in_(list(ids)), Call.status.not_in(LIVE_STATUSES))]
    killed = 0
    for channel in closed:
        if node.api(commands.uuid_exists(channel)).strip() == "true":
            log.warning("%s: killing orphan channel %s (its call is closed)", node.name, channel)
            node.api(commands.uuid_kill(channel, "MANAGER_REQUEST"))
            killed += 1
    return killed


def close_vanished(ctx: ControlContext, call: Call) -> None:
    """Close a live call whose channel is gone, as the table in this module's docstring says."""
    ctx.calls.forget(call.id)
    inbound = call.direction == "inbound"
    if call.answered_at is not None:
        _bill_vanished(ctx, call, f"{INBOUND_VANISHED}; {VANISHED}" if inbound else VANISHED)
    elif ctx.calls.hangup_requested(call):
        finish_attempt(call, CANCELED, f"{VANISHED}; its hangup had been requested", retryable=False)
    elif inbound:
        finish_attempt(call, FAILED, f"{INBOUND_VANISHED}: {VANISHED}", retryable=False)
    elif call.status == CALLING and call.job_uuid is None:
        # Claimed but never sent to FreeSWITCH: nothing rang, so the attempt is given back.
        transition(call, QUEUED, reason=f"requeued: {VANISHED}", attempt=call.attempt - 1,
                   next_attempt_at=utcnow())
    else:
        finish_attempt(call, FAILED, VANISHED, hangup_cause="NORMAL_TEMPORARY_FAILURE", retryable=True,
                       retry_base_s=ctx.config.retry_backoff_s)


def _bill_vanished(ctx: ControlContext, call: Call, reason: str) -> None:
    # The real end is unknown (it was lost): bill from the answer to now, at most the call limit.
    billsec = min(int((utcnow() - call.answered_at).total_seconds()), ctx.config.max_call_duration_s)
    billed = math.ceil(max(billsec, 1) / 60)
    with database.atomic():
        ended = finish_attempt(call, COMPLETED, reason, hangup_cause="NORMAL_CLEARING", retryable=False,
                               duration_s=max(billsec, 0), billed_minutes=billed)
        # Only when this closed it: the call's own hang-up event, handled meanwhile, bills it otherwise.
        if ended not in LIVE_STATUSES:
            Organization.update(minutes_used=Organization.minutes_used + billed).where(
                Organization.id == call.organization_id).execute()

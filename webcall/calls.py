"""A web call's life in the database: created live, answered when the browser's stream opens, ended once.

A web call never rings and is never dialed: it is created `in-progress` (the queue claims outbound calls only,
reconciliation and the telephony watchdog leave direction `web` alone), `answered_at` is set by the first stream
that opens it (which is what makes its token single-use), and it ends `completed` and billed from that answer
(every started minute, as phone calls are), or `failed` and unbilled when no browser ever talked on it. The end
writes call.ended like any other call (calls/state.py); the media bridge then writes call.analyzed.
"""
from __future__ import annotations

import datetime as dt
import logging
import math

from calls.state import transition
from models import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    LIVE_STATUSES,
    WEB,
    Agent,
    Call,
    CallEvent,
    Organization,
    database,
    utcnow,
)
from webcall.tokens import CLOSE_GONE, CLOSE_USED, WebTokenError

log = logging.getLogger(__name__)

NEVER_CONNECTED = "the browser never connected"
LOST = "web call lost: the app restarted while it was live"


def create(org: Organization, agent: Agent, webhook_url: str | None = None) -> Call:
    """A live web call for `agent` (its first timeline event says so). Limits are the caller's to check."""
    now = utcnow()
    with database.atomic():
        call = Call.create(organization=org, agent=agent, direction=WEB, to_number="", from_number=None,
                           status=IN_PROGRESS, attempt=1, max_attempts=1, queued_at=now, dialed_at=now,
                           next_attempt_at=now, webhook_url=webhook_url, context={})
        CallEvent.create(call=call.id, from_status=None, to_status=IN_PROGRESS, reason="web call created")
    return call


def admit(call_id: str) -> Call:
    """The call a browser's stream may open, now marked answered; WebTokenError when it may not.

    The conditional UPDATE is the single use: of two streams with the same token, one sets answered_at."""
    call = Call.get_or_none(Call.id == call_id)
    if call is None or call.direction != WEB or call.status not in LIVE_STATUSES or call.agent_id is None:
        raise WebTokenError("no such live web call", CLOSE_GONE)
    now = utcnow()
    taken = (Call.update(answered_at=now, updated_at=now)
             .where(Call.id == call_id, Call.answered_at.is_null(), Call.status.in_(LIVE_STATUSES)).execute())
    if not taken:
        raise WebTokenError("token already used", CLOSE_USED)
    CallEvent.create(call=call_id, from_status=call.status, to_status=call.status, reason="browser connected")
    call.answered_at = now
    return call


def end(call_id: str, reason: str, unserved: bool = False, now: dt.datetime | None = None,
        cap_s: int | None = None) -> bool:
    """End a live web call once (False when it had already ended): completed and billed from its answer, or
    failed and unbilled when it was never answered or the app could not serve it (`unserved`)."""
    call = Call.get_or_none(Call.id == call_id)
    if call is None or call.direction != WEB or call.status not in LIVE_STATUSES:
        return False
    now = now or utcnow()
    served = call.answered_at is not None and not unserved
    talk_s = max((now - call.answered_at).total_seconds(), 0.0) if served else 0.0
    if cap_s is not None:
        talk_s = min(talk_s, cap_s)
    billed = math.ceil(talk_s / 60) if talk_s > 0 else 0
    fields = {"hangup_cause": "NORMAL_CLEARING" if served else "NORMAL_TEMPORARY_FAILURE",
              "duration_s": int(talk_s), "billed_minutes": billed, "ended_at": now}
    if not served:
        fields["failure_reason"] = reason
    with database.atomic():
        if not transition(call, COMPLETED if served else FAILED, reason=reason, **fields):
            return False
        if billed:
            Organization.update(minutes_used=Organization.minutes_used + billed).where(
                Organization.id == call.organization_id).execute()
    return True


def sweep(token_ttl_s: float, owned: set[str], grace_s: float = 5.0) -> int:
    """End the web calls no browser can open any more: their token expired unused. Returns how many."""
    cutoff = utcnow() - dt.timedelta(seconds=token_ttl_s + grace_s)
    stale = [c.id for c in Call.select(Call.id).where(
        Call.direction == WEB, Call.status.in_(LIVE_STATUSES), Call.answered_at.is_null(), Call.created_at < cutoff)]
    return sum(1 for call_id in stale if call_id not in owned and end(call_id, NEVER_CONNECTED))


def close_lost(max_call_s: int) -> int:
    """At start: web calls still live belong to no running stream (only one process serves them), so they end:
    answered ones billed from their answer up to now (at most the call limit), the others unbilled."""
    lost = [c.id for c in Call.select(Call.id).where(Call.direction == WEB, Call.status.in_(LIVE_STATUSES))]
    closed = sum(1 for call_id in lost if end(call_id, LOST, cap_s=max_call_s))
    if closed:
        log.warning("closed %d web call(s) left live by an earlier run", closed)
    return closed

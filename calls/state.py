"""The call state machine: allowed transitions, the timeline, retries and the webhooks they cause.

Every transition is a conditional UPDATE (WHERE status = <expected>), so two workers racing on
one call cannot both move it; the loser sees False and leaves it alone.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from calls.representation import call_to_dict
from models import (
    BUSY,
    CALLING,
    CANCELED,
    COMPLETED,
    FAILED,
    FINAL_STATUSES,
    IN_PROGRESS,
    NO_ANSWER,
    QUEUED,
    RINGING,
    SCHEDULED,
    Call,
    CallEvent,
    Organization,
    database,
    utcnow,
)
from webhooks.outbox import enqueue

log = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({CALLING, CANCELED, SCHEDULED, FAILED}),
    SCHEDULED: frozenset({QUEUED, CALLING, CANCELED, FAILED}),
    CALLING: frozenset({RINGING, IN_PROGRESS, COMPLETED, FAILED, NO_ANSWER, BUSY, CANCELED, QUEUED}),
    RINGING: frozenset({IN_PROGRESS, COMPLETED, FAILED, NO_ANSWER, BUSY, CANCELED, QUEUED}),
    # -> QUEUED only for an answering machine's attempt that its policy retries (finish_attempt's retry_answered)
    IN_PROGRESS: frozenset({COMPLETED, FAILED, CANCELED, QUEUED}),
}
RETRYABLE = frozenset({NO_ANSWER, BUSY, FAILED})


class InvalidTransition(ValueError):
    pass


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(call: Call, to_status: str, reason: str | None = None, data: dict[str, Any] | None = None,
               **fields: Any) -> bool:
    """Move `call` to `to_status` if it is still where we think; record the event; queue webhooks.

    Returns False (and changes nothing) when another worker moved the call first.
    """
    from_status = call.status
    if not can_transition(from_status, to_status):
        raise InvalidTransition(f"call {call.id}: {from_status} -> {to_status} is not allowed")
    now = utcnow()
    fields["status"] = to_status
    fields["updated_at"] = now
    if to_status in FINAL_STATUSES:
        fields.setdefault("ended_at", now)
    with database.atomic():
        updated = (Call.update(**fields)
                   .where(Call.id == call.id, Call.status == from_status).execute())
        if not updated:
            return False
        for name, value in fields.items():
            setattr(call, name, value)
        CallEvent.create(call=call.id, from_status=from_status, to_status=to_status, reason=reason, data=data)
        if to_status in FINAL_STATUSES:
            org = Organization.get_by_id(call.organization_id)
            enqueue(org, "call.ended", call_to_dict(call), call=call)
    log.info("call %s %s -> %s%s", call.id, from_status, to_status, f" ({reason})" if reason else "")
    return True


def retry_delay(attempt: int, base_s: int) -> dt.timedelta:
    """base, 2x base, 4x base ... between attempts, capped at 6 hours."""
    return dt.timedelta(seconds=min(base_s * (2 ** max(attempt - 1, 0)), 6 * 3600))


def finish_attempt(call: Call, outcome: str, reason: str | None = None, retry_base_s: int = 60,
                   retryable: bool | None = None, retry_answered: bool = False, **fields: Any) -> str:
    """End one dial attempt: requeue it with backoff when retryable and attempts remain, else close it.

    Never retries a completed (answered) call, unless retry_answered (an answering machine answered and the
    call's policy says try again): that attempt's answer is then cleared for the next one. Returns the status
    the call ended in.
    """
    if retryable is None:
        retryable = outcome in RETRYABLE
    if retry_answered:
        retryable = True
        if call.attempt < call.max_attempts:
            fields.update(answered_at=None, answered_by=None, answered_by_ms=None)
    else:
        retryable = retryable and call.answered_at is None and fields.get("answered_at") is None
    if retryable and call.attempt < call.max_attempts:
        next_at = utcnow() + retry_delay(call.attempt, retry_base_s)
        note = f"{outcome}: {reason}" if reason else outcome
        fields.update(next_attempt_at=next_at, failure_reason=note)
        ok = transition(call, QUEUED, reason=f"retry after {note} (attempt {call.attempt} of "
                        f"{call.max_attempts})", data={"outcome": outcome}, **fields)
        return QUEUED if ok else call.status
    if reason and outcome != COMPLETED:
        fields.setdefault("failure_reason", reason)
    transition(call, outcome, reason=reason, **fields)
    return call.status

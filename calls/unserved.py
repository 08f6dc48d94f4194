"""A call the app answered but could not serve ends `failed`, with the reason, unbilled.

When an answered call's voice session cannot start (its agent's voice or provider fails even offline), the
media bridge hangs the call up. That hang-up is not the end of a conversation: nobody was spoken to, so the
call must not end `completed` and be billed like one. The hang-up request's CallEvent carries
{"unserved": true}; the controller asks `unserved_reason` when the channel's HANGUP arrives.
"""
from __future__ import annotations

from calls.causes import Outcome
from models import FAILED, Call, CallEvent

MARK = "unserved"  # key in the data of the hang-up request's CallEvent
UNSERVED = Outcome(FAILED, False, "answered, but the app could not serve the call")


def unserved_reason(call: Call, request_prefix: str) -> str | None:
    """The reason given with an 'unserved' hang-up request of the call's current attempt, else None."""
    rows = (CallEvent.select(CallEvent.reason, CallEvent.data)
            .where(CallEvent.call == call.id, CallEvent.reason.startswith(request_prefix)).order_by(CallEvent.id))
    for row in rows:
        data = row.data if isinstance(row.data, dict) else {}
        if data.get(MARK) and data.get("attempt") == call.attempt:
            return row.reason[len(request_prefix):].lstrip(": ") or UNSERVED.meaning
    return None

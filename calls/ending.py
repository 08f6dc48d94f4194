"""Ending a call's attempt: the one way a live call driven here is closed (its outcome, billing, retry).

Every path ends here: the channel's CHANNEL_HANGUP_COMPLETE, a failed originate, a call that was never dialed,
the watchdog, and a hangup of a call no channel of which is driven here. The agent's session is stopped first,
so the call.ended webhook carries the whole transcript.
"""
from __future__ import annotations

import logging
import math

import gevent

from calls.causes import Outcome, outcome_for
from calls.control_context import ControlContext
from calls.live_call import HANGUP_REQUESTED
from calls.machine_detection import retry_machine
from calls.state import finish_attempt
from calls.unserved import UNSERVED, unserved_reason
from models import CANCELED, LIVE_STATUSES, Call, Organization, database

log = logging.getLogger(__name__)
# How long ending an attempt waits for the agent's session to record its cut-off turn: long enough for a
# few database writes, short enough that a stuck pipeline cannot hold a call open.
MEDIA_END_WAIT_S = 5.0
CANCELED_BEFORE_ANSWER = Outcome(CANCELED, False, "hung up on request before an answer")


class AttemptEnd:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx

    def end(self, call_id: str, cause: str | None, sip_code: int | None, billsec: int = 0,
            reason: str | None = None, attempt: int | None = None, billmsec: int = 0) -> None:
        """Close the call's current attempt (`attempt`: only if it is still that one) with FreeSWITCH's cause."""
        call = Call.get_or_none(Call.id == call_id)
        if call is None or call.status not in LIVE_STATUSES:
            return
        if attempt is not None and attempt != call.attempt:
            return  # a late result of an earlier attempt (e.g. BACKGROUND_JOB after the HANGUP)
        self.ctx.calls.forget(call_id)
        # The agent's turn the hang-up cut off is recorded first, so call.ended carries the whole transcript.
        self._end_media_session(call_id)
        call = Call.get_or_none(Call.id == call_id)  # with the turn it recorded
        if call is None or call.status not in LIVE_STATUSES:
            return
        answered = call.answered_at is not None
        outcome = outcome_for(cause, sip_code, answered)
        if not answered and self.ctx.calls.hangup_requested(call):
            # A ringing call hung up on request ends with whatever cause (NORMAL_CLEARING, ORIGINATOR_CANCEL,
            # a -ERR job): it was canceled, never a retryable no-answer.
            outcome = CANCELED_BEFORE_ANSWER
        # Every started minute is billed; billmsec keeps a 20-second call from rounding to zero seconds.
        talk_ms = max(billmsec, billsec * 1000)
        billed = math.ceil(talk_ms / 60_000) if answered and talk_ms > 0 else 0
        unserved = unserved_reason(call, HANGUP_REQUESTED)
        if unserved is not None:  # answered but never served (no voice): no conversation, nothing billed
            outcome, billed, reason = UNSERVED, 0, unserved
        fields = {"hangup_cause": cause, "sip_code": sip_code, "duration_s": billsec if answered else 0,
                  "billed_minutes": billed}
        # The SIP status is named only when the far end gave one: never inferred from the cause.
        said = f"{cause or 'unknown'}: {outcome.meaning}" + (f" (SIP {sip_code})" if sip_code else "")
        with database.atomic():
            ended = finish_attempt(call, outcome.status, reason or said,
                                   retry_base_s=self.ctx.config.retry_backoff_s, retryable=outcome.retryable,
                                   retry_answered=unserved is None and retry_machine(call), **fields)
            # Billed only by the one that moved the call (another ender, e.g. a reconciliation, may have won).
            if billed and ended not in LIVE_STATUSES:
                Organization.update(minutes_used=Organization.minutes_used + billed).where(
                    Organization.id == call.organization_id).execute()
        self.ctx.calls.limits.room_made(call.organization_id)  # a dispatcher waiting for room claims at once
        self.ctx.media.on_hangup(call_id)

    def _end_media_session(self, call_id: str) -> None:
        """Stop the call's agent session, never letting a media failure or hang keep the call from ending.

        It runs in a greenlet of its own: on a timeout the waiter gives up and the session is left to finish
        (killing it mid-query would leave a database connection busy)."""
        worker = gevent.spawn(self._end_media_guarded, call_id)
        worker.join(MEDIA_END_WAIT_S)
        if not worker.ready():
            log.warning("call %s: the agent session did not stop within %.0f s; ending the call anyway",
                        call_id, MEDIA_END_WAIT_S)

    def _end_media_guarded(self, call_id: str) -> None:
        try:
            self.ctx.media.end_session(call_id)
        except Exception:
            log.exception("call %s: stopping the agent session failed; ending the call anyway", call_id)

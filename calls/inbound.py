"""Admitting an inbound call: dialed number -> organization -> its active inbound agent.

Every decision leaves a Call row (the operator sees rejected calls too) and names its cause;
the cause is also the hangup cause FreeSWITCH reports to the caller's network.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import phonenumbers

from calls.inbound_routing import InboundOrigin, attribute
from calls.representation import call_to_dict
from calls.state import transition
from models import FAILED, IN_PROGRESS, LIVE_STATUSES, Agent, Call, CallEvent, PhoneNumber, database, utcnow
from webhooks.outbox import enqueue

log = logging.getLogger(__name__)

UUID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class InboundDecision:
    call: Call | None
    accepted: bool
    hangup_cause: str | None = None
    reason: str | None = None


def normalize_did(number: str, region: str) -> str | None:
    """E.164 for a dialed number as carriers send it (+1..., 1..., national), or None."""
    digits = (number or "").strip()
    if not re.fullmatch(r"\+?[0-9]{3,20}", digits):
        return None
    try:
        parsed = phonenumbers.parse(digits if digits.startswith("+") else digits, region)
        if not phonenumbers.is_valid_number(parsed) and not digits.startswith("+"):
            parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _reject(channel_uuid: str, did: str, caller: str | None, org, agent, cause: str, reason: str) -> InboundDecision:
    now = utcnow()
    with database.atomic():
        call = Call.create(id=channel_uuid, organization=org, agent=agent, direction="inbound", to_number=did[:20],
                           from_number=(caller or "")[:20] or None, status=FAILED, hangup_cause=cause,
                           failure_reason=reason, attempt=1, max_attempts=1, queued_at=now, ended_at=now,
                           next_attempt_at=now)
        CallEvent.create(call=call, from_status=None, to_status=FAILED, reason=reason)
        if org is not None:
            enqueue(org, "call.ended", call_to_dict(call), call=call)
    log.warning("inbound call %s to %s rejected (%s): %s", channel_uuid, did, cause, reason)
    return InboundDecision(call, False, cause, reason)


def admit(channel_uuid: str, dialed: str, caller: str | None, region: str,
          account: str | None = None, origin: InboundOrigin | None = None) -> InboundDecision:
    """Decide an inbound call; on acceptance the Call exists in `calling` with id = channel uuid.

    `origin` says how FreeSWITCH admitted the call (calls.inbound_routing); `account` alone is the
    vb_account_id of a caller that authenticated as one account."""
    if not UUID_RE.match(channel_uuid or ""):
        raise ValueError(f"not a FreeSWITCH channel uuid: {channel_uuid!r}")
    existing = Call.get_or_none(Call.id == channel_uuid)
    if existing is not None:
        # The socket reconnected for a channel already decided: admitted again only while that inbound call is
        # live. An ended call, or a call of another direction with this uuid, is never driven again here (a
        # LiveCall registered for it would hold its concurrency slot with no hang-up left to free it).
        if existing.direction == "inbound" and existing.status in LIVE_STATUSES:
            return InboundDecision(existing, True)
        cause = (existing.hangup_cause or "CALL_REJECTED") if existing.status == FAILED else "NORMAL_CLEARING"
        return InboundDecision(existing, False, cause,
                               f"call {existing.id} is {existing.direction} and {existing.status}: not driven again")
    did = normalize_did(dialed, region)
    caller_e164 = normalize_did(caller or "", region) or None
    if did is None:
        return _reject(channel_uuid, (dialed or "")[:20], caller_e164, None, None, "UNALLOCATED_NUMBER",
                       "the dialed number is not a valid phone number")
    number = PhoneNumber.get_or_none(PhoneNumber.number == did)
    if number is None:
        return _reject(channel_uuid, did, caller_e164, None, None, "UNALLOCATED_NUMBER",
                       f"{did} is not assigned to any organization")
    org = number.organization
    via = attribute(number, did, origin or InboundOrigin(account=account))
    if via.rejection:
        return _reject(channel_uuid, did, caller_e164, org, None, "CALL_REJECTED", via.rejection)
    agent = None
    if number.agent_id:
        agent = Agent.get_or_none(Agent.id == number.agent_id, Agent.active, Agent.deleted_at.is_null(),
                                  Agent.direction == "inbound")
    if agent is None:
        agent = (Agent.select().where(Agent.organization == org, Agent.direction == "inbound", Agent.active,
                                      Agent.deleted_at.is_null()).order_by(Agent.created_at, Agent.id).first())
    if agent is None:
        return _reject(channel_uuid, did, caller_e164, org, None, "NO_ROUTE_DESTINATION",
                       f"{org.name} has no active inbound agent")
    if org.minutes_used >= org.minutes_included:
        return _reject(channel_uuid, did, caller_e164, org, agent, "CALL_REJECTED",
                       "the organization's minutes allowance is exhausted")
    now = utcnow()
    with database.atomic():
        call = Call.create(id=channel_uuid, organization=org, agent=agent, direction="inbound", to_number=did,
                           from_number=caller_e164, status="calling", attempt=1, max_attempts=1, queued_at=now,
                           dialed_at=now, next_attempt_at=now, channel_uuid=channel_uuid)
        CallEvent.create(call=call, from_status=None, to_status="calling", reason=f"inbound call to {did}",
                         data={"sip_account_id": via.account_id} if via.account_id else None)
    return InboundDecision(call, True)


def answered(call: Call) -> bool:
    return transition(call, IN_PROGRESS, reason="answered", answered_at=utcnow())

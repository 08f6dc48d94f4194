"""What an inbound call's agent knows before it answers: allowed SIP headers and the inbound webhook's reply.

Between admitting an inbound call (calls/inbound.py) and answering it, the controller calls prepare():
  1. the X- headers the operator allows (INBOUND_SIP_HEADERS) are read from the channel variables sofia sets
     for them (`variable_sip_h_X-Customer-Id`) and become variables (`x_customer_id`), bounded and sanitized;
  2. when the organization has an inbound webhook URL, it is asked (webhooks/inbound_hook.py) and may add
     variables, hand the call to another active inbound agent of the organization, or reject the call;
  3. the result is the call's `context`, which fills the agent's {{placeholders}} like an outbound call's.
A slow, down or confused webhook never stops the call: it goes on with the agent's defaults, and the failure
is a CallEvent on the call's timeline ("inbound webhook failed: ..."). The caller's number is the built-in
caller_number. Header and webhook values are text for speech and the prompt only.
"""
from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from calls.inbound import InboundDecision
from calls.state import transition
from config import Config
from esl.events import Event
from models import CALLING, FAILED, Agent, Call, CallEvent, Organization, database
from pipeline.variables import NAME, sanitize
from webhooks.inbound_hook import HookFailed, HookReply, ask, payload, reply_summary

log = logging.getLogger(__name__)

HEADER_PREFIX = "variable_sip_h_"  # sofia: SOFIA_SIP_HEADER_PREFIX "sip_h_", as a channel variable in events
MAX_HEADERS = 20
MAX_HEADER_VALUE = 256
PREPARED = "inbound context"  # the CallEvent reason prepare() leaves, so a reconnected socket does not ask again


def variable_name(header: str) -> str:
    """X-Customer-Id -> x_customer_id."""
    return header.lower().replace("-", "_")


def allowed_headers(channel: Event | None, allowed: Iterable[str]) -> dict[str, str]:
    """The allowed X- headers the INVITE carried, {name as received: sanitized value}; at most MAX_HEADERS."""
    patterns = [pattern.lower() for pattern in allowed]
    headers = getattr(channel, "headers", None) or {}
    if not patterns or not isinstance(headers, dict):
        return {}
    found: dict[str, str] = {}
    for key, value in headers.items():
        if not key.startswith(HEADER_PREFIX):
            continue
        name = key[len(HEADER_PREFIX):]
        if not any(fnmatch.fnmatchcase(name.lower(), pattern) for pattern in patterns):
            continue
        if not NAME.match(variable_name(name)):
            continue
        text = sanitize(value)[:MAX_HEADER_VALUE]
        if text and len(found) < MAX_HEADERS:
            found[name] = text
    return found


def _record(call: Call, reason: str, data: dict[str, Any]) -> None:
    CallEvent.create(call=call.id, from_status=call.status, to_status=call.status, reason=reason[:300], data=data)


def _agent_for(org: Organization, agent_id: str) -> Agent:
    agent = Agent.get_or_none(Agent.id == agent_id, Agent.organization == org, Agent.direction == "inbound",
                              Agent.active, Agent.deleted_at.is_null())
    if agent is None:
        raise HookFailed(f"agent_id {agent_id[:36]!r} is not an active inbound agent of this organization")
    return agent


def _ask(org: Organization, call: Call, headers: dict[str, str], config: Config) -> HookReply:
    body = payload(call.id, call.from_number, call.to_number, call.agent_id, headers)
    return ask(org.inbound_webhook_url, org.signing_secrets(), body,
               float(getattr(config, "inbound_webhook_timeout_s", 2.0)),
               bool(getattr(config, "webhook_allow_private", False)))


def prepare(decision: InboundDecision, channel: Event | None, config: Config) -> InboundDecision:
    """Fill an admitted inbound call's context (and maybe its agent) before it is answered; a rejection by the
    webhook ends the call failed with CALL_REJECTED. Opens its own database connections: the webhook is
    waited for with none held."""
    call = decision.call
    if not decision.accepted or call is None:
        return decision
    with database.connection_context():
        call = Call.get_or_none(Call.id == call.id)
        if call is None or call.status != CALLING or \
                CallEvent.select().where(CallEvent.call == call.id, CallEvent.reason == PREPARED).exists():
            return decision  # a reconnected socket: this call was prepared already
        org = Organization.get_by_id(call.organization_id)
    headers = allowed_headers(channel, getattr(config, "inbound_sip_headers", ()) or ())
    if not headers and not org.inbound_webhook_url:
        return decision  # nothing to learn: the agent's defaults and the built-ins, and no rows written
    context = {variable_name(name): value for name, value in headers.items()}
    agent, hook = None, {"asked": False}
    if org.inbound_webhook_url:
        hook["asked"] = True
        try:
            reply = _ask(org, call, headers, config)
            with database.connection_context():
                agent = _agent_for(org, reply.agent_id) if reply.agent_id and not reply.reject else None
            hook.update(reply_summary(reply))
            if reply.reject is not None:
                return _rejected(call, reply.reject)
            context.update(reply.variables)
        except HookFailed as exc:
            log.warning("call %s: inbound webhook failed (%s); the call goes on with the defaults", call.id, exc)
            hook["failed"] = str(exc)[:300]
    with database.connection_context(), database.atomic():
        fields: dict[str, Any] = {"context": context}
        if agent is not None:
            fields["agent"] = agent.id
        Call.update(**fields).where(Call.id == call.id).execute()
        if "failed" in hook:
            _record(call, f"inbound webhook failed: {hook['failed']}", {"url_host": _host(org.inbound_webhook_url)})
        _record(call, PREPARED, {"sip_headers": sorted(headers), "webhook": hook})
        call.context = context
        if agent is not None:
            call.agent_id = agent.id
    return InboundDecision(call, True)


def _rejected(call: Call, reason: str) -> InboundDecision:
    said = f"rejected by the inbound webhook: {reason}"
    with database.connection_context():
        transition(call, FAILED, reason=said, hangup_cause="CALL_REJECTED", failure_reason=said)
        _record(call, PREPARED, {"webhook": {"asked": True, "rejected": True}})
    log.info("inbound call %s %s", call.id, said)
    return InboundDecision(call, False, "CALL_REJECTED", said)


def _host(url: str | None) -> str:
    return (urlparse(url or "").hostname or "")[:100]

"""The inbound webhook: asked, before an inbound call is answered, what the agent should know.

An organization with an `inbound_webhook_url` gets one signed POST per inbound call (the same
`VoxBridge-Signature` as every webhook, webhooks/signing.py), event type `call.inbound`:

    {"id": "...", "type": "call.inbound", "created_at": "...Z",
     "data": {"call_id": "...", "from": "+14155550100", "to": "+14155550199", "agent_id": "...",
              "sip_headers": {"X-Customer-Id": "42"}}}

and may answer 2xx with a JSON object (every key optional):

    {"variables": {"name": "Ada"}, "agent_id": "<another inbound agent of the organization>"}
    {"reject": true, "reason": "blocked caller"}

The caller is waiting in silence meanwhile, so there is one attempt with a short deadline and no retry. Any
failure - the SSRF guard refusing the URL, no answer in time, a non-2xx status, a reply that is not the shape
above - raises HookFailed, and the call goes on with its defaults (calls/inbound_context.py records why).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import gevent
import urllib3

from models import new_id, utcnow
from pipeline.variables import MAX_VARIABLES, NAME, is_value, sanitize
from webhooks.signing import SIGNATURE_HEADER, sign
from webhooks.targets import Resolver, UnsafeTarget, check_target, request_pinned

EVENT_TYPE = "call.inbound"
MAX_REPLY_BYTES = 64 * 1024
REPLY_KEYS = {"variables", "agent_id", "reject", "reason"}


class HookFailed(Exception):
    """The inbound webhook gave no usable answer; the message says why (kept on the call's timeline)."""


@dataclass(frozen=True)
class HookReply:
    variables: dict[str, str] = field(default_factory=dict)
    agent_id: str | None = None
    reject: str | None = None  # the receiver's reason, when it refuses the call


def payload(call_id: str, caller: str | None, called: str, agent_id: str | None,
            sip_headers: dict[str, str]) -> bytes:
    body = {"id": new_id(), "type": EVENT_TYPE, "created_at": utcnow().isoformat() + "Z",
            "data": {"call_id": call_id, "from": caller, "to": called, "agent_id": agent_id,
                     "sip_headers": sip_headers}}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def parse_reply(raw: bytes) -> HookReply:
    """The receiver's answer, or HookFailed naming what is wrong with it (an empty body means "go on")."""
    if not raw.strip():
        return HookReply()
    try:
        reply = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HookFailed("the reply is not JSON") from None
    if not isinstance(reply, dict):
        raise HookFailed("the reply is not a JSON object")
    unknown = sorted(set(reply) - REPLY_KEYS)
    if unknown:
        raise HookFailed(f"unknown key {unknown[0][:40]!r} in the reply (allowed: {', '.join(sorted(REPLY_KEYS))})")
    if reply.get("reject") not in (None, True, False):
        raise HookFailed("reject must be true or false")
    if reply.get("reject"):
        reason = reply.get("reason")
        return HookReply(reject=sanitize(reason)[:200] if isinstance(reason, str) and reason.strip()
                         else "rejected by the inbound webhook")
    variables = reply.get("variables") or {}
    if not isinstance(variables, dict) or len(variables) > MAX_VARIABLES:
        raise HookFailed(f"variables must be an object of at most {MAX_VARIABLES} entries")
    for name, value in variables.items():
        if not NAME.match(name) or not is_value(value):
            raise HookFailed(f"variables.{name[:40]} must be named with letters, digits and _ and hold text "
                             "or a number")
    agent_id = reply.get("agent_id")
    if agent_id is not None and (not isinstance(agent_id, str) or not 1 <= len(agent_id) <= 36):
        raise HookFailed("agent_id must be an agent id")
    return HookReply(variables={name: sanitize(value) for name, value in variables.items()}, agent_id=agent_id)


def ask(url: str, secrets: list[str], body: bytes, timeout_s: float, allow_private: bool = False,
        resolve: Resolver | None = None) -> HookReply:
    """One signed POST of `body` to `url`, answered within `timeout_s` in all (DNS, connect, reply)."""
    try:
        with gevent.Timeout(timeout_s, HookFailed(f"no answer within {timeout_s:g} s")):
            target = check_target(url, allow_private, resolve)
            headers = {"Content-Type": "application/json", "User-Agent": "VoxBridge-Webhooks/1",
                       SIGNATURE_HEADER: sign(secrets, body)}
            status, raw, cut = request_pinned(target, "POST", body, headers, timeout_s, MAX_REPLY_BYTES)
    except UnsafeTarget as exc:
        raise HookFailed(f"refused destination: {exc}") from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        raise HookFailed(f"unreachable: {type(exc).__name__}: {str(exc)[:150]}") from None
    if not 200 <= status < 300:
        raise HookFailed(f"HTTP {status}")
    if cut:
        raise HookFailed(f"the reply is larger than {MAX_REPLY_BYTES // 1024} KB")
    return parse_reply(raw)


def reply_summary(reply: HookReply) -> dict[str, Any]:
    """What the call's timeline keeps of a reply: names, not values (values may be personal data)."""
    return {"variables": sorted(reply.variables), "agent_id": reply.agent_id, "rejected": reply.reject is not None}

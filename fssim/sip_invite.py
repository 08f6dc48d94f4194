"""An INVITE from outside arriving on the external profile: sofia's admission, then the public dialplan.

What mod_sofia does with it (sofia.c sofia_handle_sip_i_invite, FreeSWITCH 1.10):
  1. For each `apply-inbound-acl` list of the profile, in order, the source address is looked up
     (switch_network_list_validate_ip_token). The first list that allows it admits the call without a
     challenge: sip_acl_authed_by=<list>, sip_authorized=true, and when the matching node carries a token
     (a directory user's `cidr`, token "<id>@<domain>") sip_acl_token=<token> and switch_ivr_set_user puts
     that user's variables (its domain's, then its own) on the channel. When several users allow the same
     address, one node wins (see fssim.registry.AclList.lookup) and only its user's variables are set.
  2. No list allows it and auth-calls is on: a Digest challenge (407). A caller that answers it with a
     directory user's credentials (id or number-alias, password; from an address its auth-acl allows) is
     admitted with sip_authorized=true and that user's variables; any other is refused.
  3. The channel enters the profile's context (public) at the dialed number: the dialplan runs.
The simulator has no SIP stack: `invite` takes the source address and credentials a test gives it.
"""
from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass

from fssim.channel import Channel
from fssim.registry import Registry, User

PROFILE = "external"
_VAR = re.compile(r"\$\{([^}]*)\}")  # ${var}: expanded from the channel when the application runs


@dataclass(frozen=True)
class Refused:
    """The INVITE got a final SIP answer before any channel existed (a challenge nobody could meet)."""

    code: int
    reason: str


def _setting(params: list[tuple[str, str]], name: str, default: str = "") -> str:
    return next((value for key, value in params if key == name), default)


def _user_variables(user: User) -> dict[str, str]:
    return {**user.variables, "user_name": user.id, "domain_name": user.domain}


def admission(registry: Registry, source_ip: str, credentials: tuple[str, str] | None = None
              ) -> dict[str, str] | Refused:
    """The channel variables sofia sets for an INVITE from `source_ip`, or why it is refused."""
    params = registry.profile_params(PROFILE)
    for name in (value for key, value in params if key == "apply-inbound-acl"):
        acl = registry.acls.get(name)
        if acl is None:
            continue
        allowed, token = acl.lookup(source_ip)
        if not allowed:
            continue
        variables = {"sip_acl_authed_by": name, "sip_authorized": "true"}
        if token:
            variables["sip_acl_token"] = token
            user = registry.user(token) if "@" in token else None
            if user is not None:
                variables.update(_user_variables(user))
        return variables
    if _setting(params, "auth-calls", "false") != "true":
        return {}
    if credentials is None:
        return Refused(407, "Proxy Authentication Required")
    realm = _setting(params, "challenge-realm")
    user = registry.user(f"{credentials[0]}@{realm}")
    if user is None or user.params.get("password") != credentials[1]:
        return Refused(403, "Forbidden")
    auth_acl = user.params.get("auth-acl")
    if auth_acl and not registry.acl_check(source_ip, auth_acl):
        return Refused(403, "Forbidden")
    return {"sip_authorized": "true", **_user_variables(user)}


def header_variables(headers: dict[str, str] | None) -> list[tuple[str, str]]:
    """The channel variables sofia makes of an INVITE's extra headers (sofia_glue_set_extra_headers, prefix
    sip_h_): each X- header but X-FS-, and each P- header, with a non-empty value, named as received."""
    out = []
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if ((lowered.startswith("x-") and not lowered.startswith("x-fs-")) or lowered.startswith("p-")) and value:
            out.append((f"sip_h_{name}", value))
    return out


def invite(switch, did: str, source_ip: str, caller: str = "15551230000",
           credentials: tuple[str, str] | None = None, headers: dict[str, str] | None = None) -> Channel | Refused:
    """A call from `caller` at `source_ip` to `did`; on admission the public dialplan runs on the channel.
    `headers`: extra SIP headers the INVITE carries ({"X-Customer-Id": "42"})."""
    admitted = admission(switch.registry, source_ip, credentials)
    if isinstance(admitted, Refused):
        return admitted
    uid = str(uuidlib.uuid4())
    name = f"sofia/{PROFILE}/{caller}@{source_ip}"
    ch = Channel(uid, name, "inbound", "sofia", did, context="public", cid_name=caller, cid_num=caller,
                 callee_name="", callee_num="", source="mod_sofia", network_addr=source_ip,
                 session_id=next(switch.session_ids))
    for key, value in (("direction", "inbound"), ("uuid", uid), ("session_id", str(ch.session_id)),
                       ("sip_from_user", caller), ("sip_from_host", source_ip), ("sip_to_user", did),
                       ("sip_req_user", did), ("sip_network_ip", source_ip), ("sip_network_port", "5060"),
                       ("sip_received_ip", source_ip), ("sip_call_id", str(uuidlib.uuid4())),
                       ("sip_profile_name", PROFILE), ("channel_name", name), ("read_codec", "PCMU"),
                       ("read_rate", "8000"), ("write_codec", "PCMU"), ("write_rate", "8000"), ("call_uuid", uid),
                       *header_variables(headers), *admitted.items()):
        ch.set_var(key, value)
    switch._register(ch)  # noqa: SLF001 - the switch's own bookkeeping, shared with its inbound_call
    switch.greenlets.spawn(_life, switch, ch)
    return ch


def _life(switch, ch: Channel) -> None:
    switch.channel_event(ch, "CHANNEL_CREATE")
    ch.hit_dialplan = True
    apps = switch.registry.hunt(ch.context, ch.dest, ch.variables)
    if apps is None:
        switch.hangup(ch, "NO_ROUTE_DESTINATION")
    else:
        ch.set_state("CS_EXECUTE", "4", "RINGING")
        for name, data in apps:
            if not ch.up:
                break
            switch.run_app(ch, name, _VAR.sub(lambda m: ch.variables.get(m.group(1), ""), data), top=True)
        if ch.up:
            switch.hangup(ch, "NORMAL_CLEARING")
    switch._finish(ch)  # noqa: SLF001

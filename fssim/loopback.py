"""mod_loopback's B-leg: the channel a `loopback/<number>/<context>` originate hands to the dialplan.

Here it mirrors the A-leg's life in events (CREATE, ANSWER, HANGUP, HANGUP_COMPLETE, DESTROY), as in
captures/call-events-json.jsonl, and stands for the channel that bridges the far end's SIP leg.
"""
from __future__ import annotations

from fssim.channel import SIP_PHRASES, Channel
from fssim.dialstring import DialString


def b_leg(a: Channel, ds: DialString, session_id: int) -> Channel:
    """The B-leg as the capture shows it: inbound, its own uuid, the originate's variables copied
    (origination_uuid and voxbridge_call_id included), loopback_leg=B pointing back at the A-leg."""
    uid = a.variables["other_loopback_leg_uuid"]
    name = f"loopback/{ds.target}-b"
    b = Channel(uid, name, "inbound", "loopback", ds.target, context=ds.context or "default",
                cid_name=a.cid_name, cid_num=a.cid_num, callee_num=ds.target, source="mod_loopback",
                session_id=session_id)
    for k, val in (("direction", "inbound"), ("uuid", uid), ("call_uuid", uid),
                   ("session_id", str(b.session_id)), ("channel_name", name), ("read_codec", "L16"),
                   ("read_rate", "8000"), ("write_codec", "L16"), ("write_rate", "8000")):
        b.set_var(k, val)
    for k, val in ds.variables.items():
        b.set_var(k, a.uuid if k == "origination_uuid" else val)
    b.set_var("other_loopback_leg_uuid", a.uuid)
    b.set_var("loopback_leg", "B")
    return b


def far_end_ended(b: Channel, cause: str, status: int | None) -> None:
    """What the B-leg learns when the SIP leg it bridged (dialplan voxbridge_outbound) ends with `status`.

    mod_sofia (sofia.c) sets sip_invite_failure_status and _phrase on the bridging channel, its signal-bond
    partner, for a refusal >= 400; switch_channel.c sets last_bridge_hangup_cause and
    last_bridge_proto_specific_hangup_cause ("sip:486", "sip:200" after a BYE) on it when the SIP leg hangs
    up. The B-leg then hangs up with that cause, and mod_loopback hangs the A-leg up after it, so the
    B-leg's CHANNEL_HANGUP comes first and the A-leg carries none of these variables. Read from the
    FreeSWITCH 1.10 sources; no capture shows a loopback call to a SIP peer that refuses.
    """
    if status is None:
        return
    if status >= 400:
        b.set_var("sip_invite_failure_status", str(status))
        b.set_var("sip_invite_failure_phrase", SIP_PHRASES.get(status, "Unknown"))
    b.set_var("last_bridge_hangup_cause", cause)
    b.set_var("last_bridge_proto_specific_hangup_cause", f"sip:{status}")

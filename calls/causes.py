"""How a FreeSWITCH hangup cause (and SIP code) ends a call attempt: the one table.

Causes and their Q.850 codes are FreeSWITCH's (switch_channel.c); SIP codes are what the far end
answered, read from the channel variables FreeSWITCH sets (far_end_sip_code). An answered call is
always `completed`, whatever the cause of its end: it was a conversation, and it is never dialed again.

The meanings name no SIP code: a cause does not tell which SIP response (if any) caused it, and a
reason that says "SIP 486" while the call's sip_code is null would contradict it. The code the far
end really gave is appended where the call knows it.
"""
from __future__ import annotations

from dataclasses import dataclass

from esl.events import Event
from models import BUSY, CANCELED, COMPLETED, FAILED, NO_ANSWER


@dataclass(frozen=True)
class Outcome:
    status: str
    retryable: bool
    meaning: str


CAUSES: dict[str, Outcome] = {
    "USER_BUSY": Outcome(BUSY, True, "the called party is busy"),
    "NO_ANSWER": Outcome(NO_ANSWER, True, "rang without an answer"),
    "NO_USER_RESPONSE": Outcome(NO_ANSWER, True, "the called party's device did not respond"),
    "SUBSCRIBER_ABSENT": Outcome(NO_ANSWER, True, "the called party is not reachable"),
    "ALLOTTED_TIMEOUT": Outcome(NO_ANSWER, True, "the originate timeout expired"),
    "PROGRESS_TIMEOUT": Outcome(NO_ANSWER, True, "no progress before the timeout"),
    "ORIGINATOR_CANCEL": Outcome(NO_ANSWER, True, "the attempt was cancelled before an answer"),
    "NORMAL_TEMPORARY_FAILURE": Outcome(FAILED, True, "temporary failure: nothing answered"),
    "NORMAL_CIRCUIT_CONGESTION": Outcome(FAILED, True, "circuit congestion"),
    "SWITCH_CONGESTION": Outcome(FAILED, True, "the switch is congested"),
    "NETWORK_OUT_OF_ORDER": Outcome(FAILED, True, "the network is out of order"),
    "DESTINATION_OUT_OF_ORDER": Outcome(FAILED, True, "the destination is out of order"),
    "RECOVERY_ON_TIMER_EXPIRE": Outcome(FAILED, True, "SIP transaction timeout"),
    "SERVICE_UNAVAILABLE": Outcome(FAILED, True, "service unavailable"),
    "GATEWAY_DOWN": Outcome(FAILED, True, "the gateway is down"),
    "MEDIA_TIMEOUT": Outcome(FAILED, True, "RTP stopped arriving"),
    "CALL_REJECTED": Outcome(FAILED, False, "the call was rejected"),
    "UNALLOCATED_NUMBER": Outcome(FAILED, False, "the number does not exist"),
    "NO_ROUTE_DESTINATION": Outcome(FAILED, False, "no route to the destination"),
    "INVALID_NUMBER_FORMAT": Outcome(FAILED, False, "invalid number format"),
    "INCOMPATIBLE_DESTINATION": Outcome(FAILED, False, "no codec in common"),
    "INVALID_GATEWAY": Outcome(FAILED, False, "the gateway does not exist in FreeSWITCH"),
    "OUTGOING_CALL_BARRED": Outcome(FAILED, False, "outgoing calls are barred (e.g. international)"),
    "BEARERCAPABILITY_NOTAUTH": Outcome(FAILED, False, "not authorized by the trunk"),
    "CHAN_NOT_IMPLEMENTED": Outcome(FAILED, False, "the endpoint type is not loaded"),
    "DESTINATION_NOT_OBTAINABLE": Outcome(FAILED, False, "destination not obtainable"),
    "MANAGER_REQUEST": Outcome(CANCELED, False, "hung up on request (uuid_kill)"),
    "NORMAL_CLEARING": Outcome(NO_ANSWER, True, "cleared before an answer"),
}

# SIP final responses that arrive without a telling cause (e.g. via variable_sip_term_status).
SIP_CODES: dict[int, str] = {
    404: "UNALLOCATED_NUMBER", 403: "CALL_REJECTED", 603: "CALL_REJECTED", 486: "USER_BUSY", 600: "USER_BUSY",
    480: "SUBSCRIBER_ABSENT", 408: "RECOVERY_ON_TIMER_EXPIRE", 487: "ORIGINATOR_CANCEL", 484: "INVALID_NUMBER_FORMAT",
    488: "INCOMPATIBLE_DESTINATION", 502: "DESTINATION_OUT_OF_ORDER", 503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
}

UNKNOWN = Outcome(FAILED, False, "unrecognized hangup cause")
FAR_END_ANSWERED = Outcome(COMPLETED, False, "the far end answered and hung up at once")


def far_end_sip_code(event: Event) -> int | None:
    """The SIP status the far end answered, from the variables FreeSWITCH sets; None when it gave none.

    A sofia leg carries its own (sip_term_status: a refusal's status, or 200 for a BYE). A leg that bridged a
    sofia leg (the loopback B-leg on the default route runs the dialplan's bridge) gets the far end's from
    mod_sofia and switch_channel.c: sip_invite_failure_status for a refusal >= 400, and
    last_bridge_proto_specific_hangup_cause ("sip:486") when the SIP leg hangs up."""
    for name in ("variable_sip_term_status", "variable_sip_invite_failure_status"):
        code = _sip_status(event.get(name))
        if code is not None:
            return code
    proto = event.get("variable_last_bridge_proto_specific_hangup_cause") or ""
    return _sip_status(proto[4:]) if proto.startswith("sip:") else None


def _sip_status(text: str | None) -> int | None:
    if not text or not text.isdigit() or len(text) != 3:
        return None
    code = int(text)
    return code if 100 <= code <= 699 else None


def outcome_for(cause: str | None, sip_code: int | None = None, answered: bool = False) -> Outcome:
    """The status an attempt ends in. Answered calls are completed; unknown causes fail without retry."""
    if answered:
        return Outcome(COMPLETED, False, "the call was answered")
    if sip_code == 200:
        # The far end answered (200 OK) and hung up before the answer reached the call's own leg (a loopback
        # A-leg sees the B-leg's answer a moment later): a call that was picked up, never a retryable no-answer.
        return FAR_END_ANSWERED
    name = (cause or "").strip().upper()
    if name in CAUSES and name != "NORMAL_CLEARING":
        return CAUSES[name]
    if sip_code in SIP_CODES:
        return CAUSES[SIP_CODES[sip_code]]
    return CAUSES.get(name, UNKNOWN)

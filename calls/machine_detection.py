"""Answering-machine detection for outbound calls: the policy (agent setting, per-call override), the
gate in front of the call's session, and the outcome kept on the call.

The policy is an object, on the agent (`settings.machine_detection`) and optionally on one call
(`machine_detection` in POST /v1/calls/outbound, which replaces the agent's):

    {"mode": "leave_message",             # off (default) | hangup | leave_message | continue
     "message": "Hi, this is Acme ...",   # leave_message: said once after the beep or the greeting
     "timeout_ms": 5000,                  # no decision by then: treated as a person (answered_by unknown)
     "retry": false}                      # a machine is not retried unless true (attempts permitting)

The outcome, `answered_by` (human / machine / unknown) and `answered_by_ms` (audio time from answer to the
decision), is on the call, in call.ended, and on its timeline with the reason.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from models import Agent, Call, CallEvent, database
from pipeline.amd import MACHINE, AmdDecision
from pipeline.frames import TurnRecord
from pipeline.machine_detection import MODES, MachineDetectionGate, MachinePolicy
from pipeline.session_config import SessionConfig

log = logging.getLogger(__name__)

KEYS = {"mode": str, "message": str, "timeout_ms": int, "retry": bool}
TIMEOUT_MS = (2000, 15000)
MAX_MESSAGE = 1000


def check(value: Any, field: str = "machine_detection") -> list[str]:
    """Problems with a machine_detection object, each naming its key; [] when it is fine."""
    if not isinstance(value, dict):
        return [f"{field} must be an object"]
    problems = []
    for key, item in value.items():
        kind = KEYS.get(key)
        if kind is None:
            problems.append(f"{field}: unknown key {str(key)[:40]!r} (known: {', '.join(KEYS)})")
        elif not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            problems.append(f"{field}.{key} must be {'an integer' if kind is int else kind.__name__}")
    if problems:
        return problems
    mode = value.get("mode", "off")
    if mode not in MODES:
        problems.append(f"{field}.mode must be one of {', '.join(MODES)}")
    message = value.get("message")
    if mode == "leave_message" and not (message or "").strip():
        problems.append(f"{field}.message is required when mode is leave_message")
    if message is not None and len(message) > MAX_MESSAGE:
        problems.append(f"{field}.message is longer than {MAX_MESSAGE} characters")
    timeout = value.get("timeout_ms", 5000)
    if not TIMEOUT_MS[0] <= timeout <= TIMEOUT_MS[1]:
        problems.append(f"{field}.timeout_ms must be from {TIMEOUT_MS[0]} to {TIMEOUT_MS[1]}")
    return problems


def policy_for(agent_settings: Any, call: Call) -> tuple[MachinePolicy, bool]:
    """The call's policy and whether a machine may be retried: the call's own, else the agent's, else off.
    Inbound calls are never gated (whoever dialled us is no answering machine)."""
    chosen = call.machine_detection if isinstance(call.machine_detection, dict) else None
    if chosen is None and isinstance(agent_settings, dict):
        chosen = agent_settings.get("machine_detection")
    if call.direction != "outbound" or not isinstance(chosen, dict) or check(chosen):
        return MachinePolicy(), False
    return (MachinePolicy(mode=chosen.get("mode", "off"), message=chosen.get("message"),
                          timeout_ms=chosen.get("timeout_ms", 5000)), bool(chosen.get("retry", False)))


def retry_machine(call: Call) -> bool:
    """Whether this attempt, answered by a machine, is to be tried again (the policy's `retry`)."""
    if call.answered_by != MACHINE:
        return False
    agent = Agent.get_or_none(Agent.id == call.agent_id) if call.agent_id else None
    return policy_for(agent.settings if agent is not None else None, call)[1]


def record_decision(call_id: str, decision: AmdDecision) -> None:
    """The outcome on the call (one UPDATE) and on its timeline."""
    Call.update(answered_by=decision.answered_by, answered_by_ms=decision.at_ms).where(Call.id == call_id).execute()
    call = Call.get_or_none(Call.id == call_id)
    if call is not None:
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"answered by {decision.answered_by} after {decision.at_ms} ms",
                         data={"answered_by": decision.answered_by, "at_ms": decision.at_ms,
                               "why": decision.reason[:200]})


def after_detection(config: SessionConfig, answered_by: str) -> SessionConfig:
    """The session's settings once detection is over: whoever answered has spoken (or stayed silent past the
    timeout) and waits, so the agent greets at once; after a machine ("continue") the agent is told."""
    context = {**(config.context or {}), "answered_by": answered_by}
    prompt = config.system_prompt
    if answered_by == MACHINE:
        prompt += ("\n\nThis call was answered by an answering machine or voicemail, not a person: leave a short "
                   "message that makes sense when played back later, then end the call.")
    return dataclasses.replace(config, greeting_start="immediate", context=context, system_prompt=prompt)


def build_gate(call_id: str, policy: MachinePolicy, sample_rate: int, make_session: Callable[[str], Any],
               send: Callable, tts: Any, on_turn: Callable[[TurnRecord], None],
               end_call: Callable[[str], None], stt: Any = None) -> MachineDetectionGate:
    """The gate for one call, its outcome recorded on the call and its message in the transcript; with `stt`
    (the call's own, when AMD_WORDS is on) the callee's words are heard during detection too."""
    def on_decision(decision: AmdDecision) -> None:
        # On the audio path's greenlet: a connection of its own, handed back to the pool at once (a greenlet
        # that merely autoconnected would keep one per call).
        opened = database.is_closed()
        try:
            if opened:
                database.connect()
            record_decision(call_id, decision)
        except Exception:  # the call goes on; the log says what was lost
            log.exception("call %s: could not record answered_by %s", call_id, decision.answered_by)
        finally:
            if opened and not database.is_closed():
                database.close()

    def on_message(text: str, played_ms: float) -> None:
        on_turn(TurnRecord("agent", text, 0, int(played_ms), source="voicemail"))

    return MachineDetectionGate(policy, sample_rate, make_session, send, on_decision, synthesize=tts.synthesize,
                                end_call=end_call, on_message=on_message, stt=stt)

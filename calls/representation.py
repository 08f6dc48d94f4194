"""The public JSON shape of a call, shared by the API and the webhooks."""
from __future__ import annotations

import datetime as dt
from typing import Any

from models import Call
from pipeline.latency import summarize


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=value.microsecond).isoformat() + "Z"


def call_to_dict(call: Call, include_transcript: bool = True) -> dict[str, Any]:
    body = {
        "id": call.id,
        "object": "call",
        "organization_id": call.organization_id,
        "agent_id": call.agent_id,
        "direction": call.direction,
        "to": call.to_number or None,  # a web call dialed no number
        "from": call.from_number,
        "status": call.status,
        "context": call.context,
        "webhook_url": call.webhook_url,
        "schedule_at": iso(call.schedule_at),
        "attempt": call.attempt,
        "max_attempts": call.max_attempts,
        "next_attempt_at": iso(call.next_attempt_at) if call.status in ("queued", "scheduled") else None,
        "hangup_cause": call.hangup_cause,
        "sip_code": call.sip_code,
        "failure_reason": call.failure_reason,
        "queued_at": iso(call.queued_at),
        "dialed_at": iso(call.dialed_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": call.duration_s,
        "billed_minutes": call.billed_minutes,
        "answers": call.answers,
        "machine_detection": call.machine_detection,
        "answered_by": call.answered_by,
        "answered_by_ms": call.answered_by_ms,
        "recording_path": call.recording_path,
        # p50/max of each agent-turn latency component (pipeline/latency.py), from the stored transcript
        "latency": summarize(call.transcript or []),
        "created_at": iso(call.created_at),
    }
    if include_transcript:
        body["transcript"] = call.transcript
    return body

"""Calls and their timeline."""
from __future__ import annotations

import peewee

from models.agent import Agent
from models.base import BaseModel, JSONField, new_id, utcnow
from models.tenancy import Organization

QUEUED, SCHEDULED, CALLING, RINGING, IN_PROGRESS = "queued", "scheduled", "calling", "ringing", "in-progress"
COMPLETED, FAILED, NO_ANSWER, BUSY, CANCELED = "completed", "failed", "no-answer", "busy", "canceled"
STATUSES = (QUEUED, SCHEDULED, CALLING, RINGING, IN_PROGRESS, COMPLETED, FAILED, NO_ANSWER, BUSY, CANCELED)
PENDING_STATUSES = (QUEUED, SCHEDULED)
LIVE_STATUSES = (CALLING, RINGING, IN_PROGRESS)
FINAL_STATUSES = (COMPLETED, FAILED, NO_ANSWER, BUSY, CANCELED)
# A call's direction: dialed out, dialed in, or a browser talking to an agent (webcall/: never dialed, no channel).
OUTBOUND, INBOUND, WEB = "outbound", "inbound", "web"
CALL_DIRECTIONS = (INBOUND, OUTBOUND, WEB)


class Call(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    # Null only for inbound calls to numbers no organization owns: recorded for operators, never listed by the API.
    organization = peewee.ForeignKeyField(Organization, backref="calls", null=True, on_delete="CASCADE")
    agent = peewee.ForeignKeyField(Agent, backref="calls", null=True, on_delete="SET NULL")
    direction = peewee.CharField(max_length=10)
    to_number = peewee.CharField(max_length=20)
    from_number = peewee.CharField(max_length=20, null=True)
    status = peewee.CharField(max_length=16, default=QUEUED)
    context = JSONField(default=dict)
    webhook_url = peewee.CharField(max_length=2000, null=True)
    schedule_at = peewee.DateTimeField(null=True)
    attempt = peewee.IntegerField(default=0)
    max_attempts = peewee.IntegerField(default=3)
    next_attempt_at = peewee.DateTimeField(null=True)
    hangup_cause = peewee.CharField(max_length=64, null=True)
    sip_code = peewee.IntegerField(null=True)
    failure_reason = peewee.TextField(null=True)
    node = peewee.CharField(max_length=200, null=True)
    channel_uuid = peewee.CharField(max_length=36, null=True)
    job_uuid = peewee.CharField(max_length=36, null=True)
    recording_path = peewee.CharField(max_length=500, null=True)
    recording_object = peewee.CharField(max_length=600, null=True)  # its S3 key once uploaded (migration 6)
    queued_at = peewee.DateTimeField(default=utcnow)
    dialed_at = peewee.DateTimeField(null=True)
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    duration_s = peewee.IntegerField(null=True)
    billed_minutes = peewee.IntegerField(default=0)
    transcript = JSONField(default=list)
    answers = JSONField(null=True)
    machine_detection = JSONField(null=True)  # this call's answering-machine policy (else the agent's)
    answered_by = peewee.CharField(max_length=10, null=True)  # human / machine / unknown, when detection ran
    answered_by_ms = peewee.IntegerField(null=True)  # audio time from answer to that decision
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("status", "next_attempt_at"), False),
            (("organization", "created_at"), False),
        )


class CallEvent(BaseModel):
    """One row per status transition (and notable happenings), for the timeline and audits."""

    id = peewee.BigAutoField()
    call = peewee.ForeignKeyField(Call, backref="events", on_delete="CASCADE")
    from_status = peewee.CharField(max_length=16, null=True)
    to_status = peewee.CharField(max_length=16)
    reason = peewee.TextField(null=True)
    data = JSONField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

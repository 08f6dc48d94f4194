"""The webhook outbox: rows written in the same transaction as the change they report."""
from __future__ import annotations

import peewee

from models.base import BaseModel, new_id, utcnow
from models.tenancy import Organization

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookDelivery(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)  # the event id
    organization = peewee.ForeignKeyField(Organization, on_delete="CASCADE")
    call_id = peewee.CharField(max_length=36, null=True, index=True)
    event_type = peewee.CharField(max_length=50)
    url = peewee.CharField(max_length=2000)
    payload = peewee.TextField()  # the exact bytes that are signed and sent
    status = peewee.CharField(max_length=10, default=PENDING)
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(default=utcnow)
    last_status_code = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    delivered_at = peewee.DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


class WebhookAttempt(BaseModel):
    """One POST of a delivery (migration 5): when, how long, and the HTTP status or the error."""

    id = peewee.AutoField()
    delivery = peewee.ForeignKeyField(WebhookDelivery, backref="attempt_rows", on_delete="CASCADE")
    attempted_at = peewee.DateTimeField(default=utcnow)
    status_code = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    duration_ms = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("delivery", "attempted_at"), False),)

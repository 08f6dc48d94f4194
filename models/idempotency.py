"""Stored first responses for Idempotency-Key requests (per organization, 24 h)."""
from __future__ import annotations

import datetime as dt

import peewee

from models.base import BaseModel, utcnow
from models.tenancy import Organization

IDEMPOTENCY_TTL = dt.timedelta(hours=24)


class IdempotencyRecord(BaseModel):
    organization = peewee.ForeignKeyField(Organization, on_delete="CASCADE")
    key = peewee.CharField(max_length=255)
    request_hash = peewee.CharField(max_length=64)
    status_code = peewee.IntegerField()
    response_body = peewee.TextField()
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        # The composite key is what makes a key single-use: of two concurrent requests with one
        # key, the second INSERT fails and that request replays the first one's response.
        primary_key = peewee.CompositeKey("organization", "key")


def expired_before(now: dt.datetime | None = None) -> dt.datetime:
    """Records created at or before this instant are past the 24 h window."""
    return (now or utcnow()) - IDEMPOTENCY_TTL


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete every organization's records older than the TTL; returns how many went."""
    return IdempotencyRecord.delete().where(IdempotencyRecord.created_at <= expired_before(now)).execute()

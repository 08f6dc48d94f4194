"""Stored first responses for Idempotency-Key requests (per organization, 24 h)."""
from __future__ import annotations

import peewee

from models.base import BaseModel, utcnow
from models.tenancy import Organization


class IdempotencyRecord(BaseModel):
    organization = peewee.ForeignKeyField(Organization, on_delete="CASCADE")
    key = peewee.CharField(max_length=255)
    request_hash = peewee.CharField(max_length=64)
    status_code = peewee.IntegerField()
    response_body = peewee.TextField()
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        primary_key = peewee.CompositeKey("organization", "key")

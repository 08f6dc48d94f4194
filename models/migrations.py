"""Versioned schema: each step runs once, in order, in a transaction, on PostgreSQL and SQLite.

A new table or column is a new step appended to STEPS; a step never changes once released.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from models.agent import Agent
from models.base import BaseModel, database, utcnow
from models.call import Call, CallEvent
from models.idempotency import IdempotencyRecord
from models.number import PhoneNumber
from models.tenancy import ApiKey, Organization
from models.webhook import WebhookDelivery

log = logging.getLogger(__name__)


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    description = peewee.CharField(max_length=200)
    applied_at = peewee.DateTimeField(default=utcnow)


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[peewee.Database], None]


def _initial(db: peewee.Database) -> None:
    # Version 1's phone_number had no sip_account column; step 2 adds it, as it did for real databases.
    tables = [Organization, ApiKey, Agent, Call, CallEvent, PhoneNumber, WebhookDelivery, IdempotencyRecord]
    sip_field = PhoneNumber._meta.fields["sip_account"]
    PhoneNumber._meta.remove_field("sip_account")
    try:
        db.create_tables(tables)
    finally:
        PhoneNumber._meta.add_field("sip_account", sip_field)


def _sip_accounts(db: peewee.Database) -> None:
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator
    from playhouse.migrate import migrate as run

    from models.sip_account import SipAccount

    db.create_tables([SipAccount])
    migrator = PostgresqlMigrator(db) if isinstance(db, peewee.PostgresqlDatabase) else SqliteMigrator(db)
    run(migrator.add_column("phone_number", "sip_account_id", PhoneNumber.sip_account))


def _idempotency_expiry_index(db: peewee.Database) -> None:
    # The dispatcher purges expired Idempotency-Key records every few minutes: by age, not by key.
    db.execute_sql('CREATE INDEX IF NOT EXISTS "idempotency_record_created_at" '
                   'ON "idempotency_record" ("created_at")')


STEPS: list[Step] = [
    Step(1, "organizations, keys, agents, calls, events, numbers, webhook outbox, idempotency", _initial),
    Step(2, "customer SIP accounts; numbers bound to an account", _sip_accounts),
    Step(3, "index idempotency records by age for the purge", _idempotency_expiry_index),
]


def register(step: Step) -> None:
    """Feature packages append their steps here at import time; versions must stay unique."""
    if any(s.version == step.version for s in STEPS):
        raise ValueError(f"migration {step.version} already registered")
    STEPS.append(step)
    STEPS.sort(key=lambda s: s.version)


def current_version(db: peewee.Database | None = None) -> int:
    db = db or database.obj
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()
    return row or 0


def migrate(db: peewee.Database | None = None) -> list[int]:
    """Apply pending steps; return the versions applied."""
    db = db or database.obj
    db.create_tables([SchemaVersion])
    applied = []
    for step in STEPS:
        if step.version <= current_version(db):
            continue
        with db.atomic():
            step.apply(db)
            SchemaVersion.create(version=step.version, description=step.description)
        log.info("schema migrated to version %d: %s", step.version, step.description)
        applied.append(step.version)
    return applied

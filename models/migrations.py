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


# Columns later steps add: version 1 is created without them, as it was for real databases.
_LATER_FIELDS = ((PhoneNumber, "sip_account"), (Organization, "name_key"),
                 (Organization, "previous_webhook_secret"), (Organization, "previous_secret_expires_at"),
                 (ApiKey, "last_used_at"), (Call, "recording_object"), (Call, "machine_detection"),
                 (Call, "answered_by"), (Call, "answered_by_ms"))
_LATER_FIELDS += ((Agent, "tools"), (Agent, "keypad"))  # migration 9


def _initial(db: peewee.Database) -> None:
    tables = [Organization, ApiKey, Agent, Call, CallEvent, PhoneNumber, WebhookDelivery, IdempotencyRecord]
    removed = [(model, name, model._meta.fields[name]) for model, name in _LATER_FIELDS]
    for model, name, _field in removed:
        model._meta.remove_field(name)
    try:
        db.create_tables(tables)
    finally:
        for model, name, field in removed:
            model._meta.add_field(name, field)


def _migrator(db: peewee.Database):
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

    return PostgresqlMigrator(db) if isinstance(db, peewee.PostgresqlDatabase) else SqliteMigrator(db)


def _sip_accounts(db: peewee.Database) -> None:
    from playhouse.migrate import migrate as run

    from models.sip_account import SipAccount

    db.create_tables([SipAccount])
    run(_migrator(db).add_column("phone_number", "sip_account_id", PhoneNumber.sip_account))


def _idempotency_expiry_index(db: peewee.Database) -> None:
    # The dispatcher purges expired Idempotency-Key records every few minutes: by age, not by key.
    db.execute_sql('CREATE INDEX IF NOT EXISTS "idempotency_record_created_at" '
                   'ON "idempotency_record" ("created_at")')


def _unique_org_names(db: peewee.Database) -> None:
    """Organizations whose names differ only in case or spacing were allowed before: the oldest keeps
    its name, each later one is renamed "<name> (<first 8 of its id>)" and logged, then the unique
    index makes the database refuse another."""
    from playhouse.migrate import migrate as run

    from models.tenancy import name_key

    run(_migrator(db).add_column("organization", "name_key",
                                 peewee.CharField(max_length=200, null=True)))
    seen: set[str] = set()
    rows = db.execute_sql('SELECT "id", "name" FROM "organization" ORDER BY "created_at", "id"').fetchall()
    for org_id, name in rows:
        key = name_key(name)
        if key in seen:
            new_name = f"{name[:185]} ({org_id[:8]})"
            log.warning("organization %s renamed from %r to %r: another organization already has that name "
                        "(organization names are unique from schema version 4)", org_id, name, new_name)
            name, key = new_name, name_key(new_name)
        seen.add(key)
        db.execute_sql('UPDATE "organization" SET "name" = %s, "name_key" = %s WHERE "id" = %s'
                       .replace("%s", db.param), (name, key, org_id))
    db.execute_sql('CREATE UNIQUE INDEX "organization_name_key" ON "organization" ("name_key")')


def _console_api(db: peewee.Database) -> None:
    from playhouse.migrate import migrate as run

    from models.webhook import WebhookAttempt

    migrator = _migrator(db)
    run(migrator.add_column("organization", "previous_webhook_secret", peewee.CharField(max_length=100, null=True)),
        migrator.add_column("organization", "previous_secret_expires_at", peewee.DateTimeField(null=True)),
        migrator.add_column("api_key", "last_used_at", peewee.DateTimeField(null=True)))
    db.create_tables([WebhookAttempt])


def _recording_objects(db: peewee.Database) -> None:
    from playhouse.migrate import migrate as run

    run(_migrator(db).add_column("call", "recording_object", peewee.CharField(max_length=600, null=True)))


def _machine_detection(db: peewee.Database) -> None:
    from playhouse.migrate import migrate as run

    from models.base import JSONField

    migrator = _migrator(db)
    run(migrator.add_column("call", "machine_detection", JSONField(null=True)),
        migrator.add_column("call", "answered_by", peewee.CharField(max_length=10, null=True)),
        migrator.add_column("call", "answered_by_ms", peewee.IntegerField(null=True)))


def _console_users(db: peewee.Database) -> None:
    from models.console_user import ConsoleUser

    db.create_tables([ConsoleUser])


STEPS: list[Step] = [
    Step(1, "organizations, keys, agents, calls, events, numbers, webhook outbox, idempotency", _initial),
    Step(2, "customer SIP accounts; numbers bound to an account", _sip_accounts),
    Step(3, "index idempotency records by age for the purge", _idempotency_expiry_index),
    Step(4, "organization names unique regardless of case (duplicates renamed)", _unique_org_names),
    Step(5, "signing secret rotation, API keys' last use, webhook delivery attempts", _console_api),
    Step(6, "recordings uploaded to object storage: the call keeps the object key", _recording_objects),
    Step(7, "answering-machine detection: a call's policy and who answered", _machine_detection),
    Step(11, "web console users (email, password hash, sessions, one-time sign-in links)", _console_users),
]


def register(step: Step) -> None:
    """Feature packages append their steps here at import time; versions must stay unique."""
    if any(s.version == step.version for s in STEPS):
        raise ValueError(f"migration {step.version} already registered")
    STEPS.append(step)
    STEPS.sort(key=lambda s: s.version)


def _agent_tools(db: peewee.Database) -> None:
    from playhouse.migrate import migrate as run

    migrator = _migrator(db)
    run(migrator.add_column("agent", "tools", Agent.tools), migrator.add_column("agent", "keypad", Agent.keypad))


register(Step(9, "agents' customer HTTP tools and keypad options", _agent_tools))


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


def _call_variables(db: peewee.Database) -> None:
    from playhouse.migrate import migrate as run

    from models.base import JSONField

    migrator = _migrator(db)
    run(migrator.add_column("agent", "variables", JSONField(default=dict)),
        migrator.add_column("agent", "timezone", peewee.CharField(max_length=64, default="UTC")),
        migrator.add_column("organization", "inbound_webhook_url", peewee.CharField(max_length=2000, null=True)))


_LATER_FIELDS += ((Agent, "variables"), (Agent, "timezone"), (Organization, "inbound_webhook_url"))  # migration 8
register(Step(8, "call variables: agents' declared variables and time zone, organizations' inbound webhook",
              _call_variables))

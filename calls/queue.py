"""Claiming due calls from the queue.

On PostgreSQL the claim is one statement: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
LOCKED) RETURNING, so any number of dispatcher processes can poll together and each due call
goes to exactly one of them. SQLite (one process, the embedded default) takes the write lock up
front with BEGIN IMMEDIATE instead.
"""
from __future__ import annotations

from models import CALLING, PENDING_STATUSES, Call, CallEvent, database, is_postgres, utcnow


def due_query(now, limit: int, organization_ids: list[str] | None = None):
    query = (Call.select(Call.id)
             .where(Call.status.in_(PENDING_STATUSES), Call.next_attempt_at <= now)
             .order_by(Call.next_attempt_at, Call.id).limit(limit))
    if organization_ids is not None:
        query = query.where(Call.organization.in_(organization_ids))
    return query


def count_due() -> int:
    now = utcnow()
    return Call.select().where(Call.status.in_(PENDING_STATUSES), Call.next_attempt_at <= now).count()


def claim_due(limit: int, worker: str = "") -> list[Call]:
    """Move up to `limit` due calls to `calling` (attempt + 1) and return them; each call once only."""
    if limit <= 0:
        return []
    now = utcnow()
    if is_postgres():
        with database.atomic():
            subquery = due_query(now, limit).for_update("FOR UPDATE SKIP LOCKED")
            claimed = list(Call.update(status=CALLING, attempt=Call.attempt + 1, dialed_at=now, updated_at=now,
                                       node=None, channel_uuid=None, job_uuid=None)
                           .where(Call.id.in_(subquery)).returning(Call).execute())
            _record(claimed, worker)
        return claimed
    with database.obj.atomic("IMMEDIATE"):
        ids = [row.id for row in due_query(now, limit)]
        if not ids:
            return []
        previous = dict(Call.select(Call.id, Call.status).where(Call.id.in_(ids)).tuples())
        (Call.update(status=CALLING, attempt=Call.attempt + 1, dialed_at=now, updated_at=now,
                     node=None, channel_uuid=None, job_uuid=None)
         .where(Call.id.in_(ids)).execute())
        claimed = list(Call.select().where(Call.id.in_(ids)))
        for call in claimed:
            call._previous_status = previous.get(call.id)
        _record(claimed, worker)
    return claimed


def _record(claimed: list[Call], worker: str) -> None:
    if not claimed:
        return
    rows = [{"call": c.id, "from_status": getattr(c, "_previous_status", None) or "queued",
             "to_status": CALLING, "reason": f"claimed for attempt {c.attempt}" + (f" by {worker}" if worker else "")}
            for c in claimed]
    CallEvent.insert_many(rows).execute()

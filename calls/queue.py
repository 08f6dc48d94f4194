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
            # UPDATE ... FROM the locked due rows: RETURNING sees the new row, so the old status
            # (queued or scheduled) comes from the subquery, for an honest timeline.
            due = (due_query(now, limit).select_extend(Call.status.alias("previous_status"))
                   .for_update("FOR UPDATE SKIP LOCKED").alias("due"))
            claimed = list(Call.update(status=CALLING, attempt=Call.attempt + 1, dialed_at=now, updated_at=now,
                                       node=None, channel_uuid=None, job_uuid=None)
                           .from_(due).where(Call.id == due.c.id)
                           .returning(Call, due.c.previous_status).execute())
            for call in claimed:
                call._previous_status = call.previous_status
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
    rows = [{"call": c.id, "from_status": c._previous_status,
             "to_status": CALLING, "reason": f"claimed for attempt {c.attempt}" + (f" by {worker}" if worker else "")}
            for c in claimed]
    CallEvent.insert_many(rows).execute()

"""Claiming due calls from the queue, fairly across organizations.

A claim takes the oldest due calls of organizations that have room under their concurrent-call
limit (live calls counted in the database, inbound ones included), at most their room each. An
organization at its limit therefore never holds back the others, and its calls stay `queued`
untouched (no claim, defer and re-claim loop); each records once that it waits for capacity.

On PostgreSQL the claim locks the rows it takes with FOR UPDATE SKIP LOCKED and holds a
transaction-scoped advisory lock while it counts and claims: two dispatcher processes counting the
same room at once would together overshoot an organization's limit. SQLite (one process, the
embedded default) takes the write lock up front with BEGIN IMMEDIATE instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from peewee import SQL, Value, fn

from models import (
    CALLING,
    LIVE_STATUSES,
    PENDING_STATUSES,
    Call,
    CallEvent,
    Organization,
    database,
    is_postgres,
    utcnow,
)

WAITING_FOR_CAPACITY = "waiting for capacity: organization concurrent-call limit"
# pg_advisory_xact_lock key of the claim: any constant no other part of the app uses ("VBCLAIM").
CLAIM_LOCK_KEY = 0x5642434C41494D
# Passes over the queue per claim: each pass takes due calls of organizations with room; a pass that
# filled an organization's room leaves its other calls for the next pass to skip.
CLAIM_PASSES = 4


@dataclass
class Claim:
    calls: list[Call] = field(default_factory=list)
    full: set[str] = field(default_factory=set)  # organizations at their limit during this claim


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


def claim_due(limit: int, worker: str = "", org_max: int | None = None) -> list[Call]:
    """Move up to `limit` due calls to `calling` (attempt + 1) and return them; each call once only."""
    return claim(limit, worker, org_max).calls


def claim(limit: int, worker: str = "", org_max: int | None = None) -> Claim:
    """The fair claim: `org_max` is ORG_MAX_CONCURRENT_CALLS (None: only organizations' own limits)."""
    if limit <= 0:
        return Claim()
    if is_postgres():
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK_KEY,))
            return _claim(limit, worker, org_max, lock=True)
    with database.obj.atomic("IMMEDIATE"):
        return _claim(limit, worker, org_max, lock=False)


def _claim(limit: int, worker: str, org_max: int | None, lock: bool) -> Claim:
    now = utcnow()
    live = dict(Call.select(Call.organization, fn.COUNT(Call.id))
                .where(Call.status.in_(LIVE_STATUSES), Call.organization.is_null(False))
                .group_by(Call.organization).tuples())
    limits = _org_limits(list(live), org_max)
    room = {org: limits[org] - count for org, count in live.items() if limits.get(org) is not None}
    result = Claim(full={org for org, left in room.items() if left <= 0})
    taken: list[tuple[str, str, str | None]] = []  # (call id, previous status, previous node)
    for _ in range(CLAIM_PASSES):
        wanted = limit - len(taken)
        # Outbound only: a pending inbound call (none should exist) would be dialed to the number it came in on.
        query = (Call.select(Call.id, Call.organization, Call.status, Call.node)
                 .where(Call.status.in_(PENDING_STATUSES), Call.next_attempt_at <= now, Call.direction == "outbound")
                 .order_by(Call.next_attempt_at, Call.id).limit(wanted))
        if result.full:
            query = query.where(Call.organization.not_in(list(result.full)))
        if taken:
            query = query.where(Call.id.not_in([call_id for call_id, _, _ in taken]))
        if lock:
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        rows = list(query.tuples())
        new = [org for _, org, _, _ in rows if org not in room]
        for org, org_limit in _org_limits(new, org_max).items():
            room[org] = org_limit if org_limit is not None else limit
        for call_id, org, status, node in rows:
            if org is None:  # not an organization's call: no organization limit applies
                taken.append((call_id, status, node))
                continue
            if room[org] > 0:
                taken.append((call_id, status, node))
                room[org] -= 1
            if room[org] <= 0:
                result.full.add(org)
        if len(rows) < wanted or len(taken) >= limit:
            break
    if taken:
        result.calls = _mark_claimed({call_id: (status, node) for call_id, status, node in taken}, now, worker)
    return result


def _org_limits(org_ids: list[str], org_max: int | None) -> dict[str, int | None]:
    """Each organization's concurrent-call limit: its own setting, never above ORG_MAX_CONCURRENT_CALLS."""
    ids = [org for org in org_ids if org is not None]
    if not ids:
        return {}
    own = dict(Organization.select(Organization.id, Organization.max_concurrent_calls)
               .where(Organization.id.in_(ids)).tuples())
    limits: dict[str, int | None] = {}
    for org in ids:
        mine = own.get(org)
        limits[org] = min(mine or org_max, org_max) if org_max is not None else mine
    return limits


def _mark_claimed(previous: dict[str, tuple[str, str | None]], now, worker: str) -> list[Call]:
    """previous: each call's status and node before the claim. The claim clears the node (the new attempt has
    none yet); each claimed call keeps the last one as previous_node, where a channel of its last originate would
    be (None: no originate has carried it)."""
    ids = list(previous)
    update = (Call.update(status=CALLING, attempt=Call.attempt + 1, dialed_at=now, updated_at=now,
                          node=None, channel_uuid=None, job_uuid=None)
              .where(Call.id.in_(ids), Call.status.in_(PENDING_STATUSES)))
    if is_postgres():
        claimed = list(update.returning(Call).execute())
    else:
        update.execute()
        claimed = list(Call.select().where(Call.id.in_(ids)))
    order = {call_id: n for n, call_id in enumerate(ids)}
    claimed.sort(key=lambda call: order[call.id])  # oldest due first, as the dialer should start them
    for call in claimed:
        call._previous_status, call.previous_node = previous[call.id]
    _record(claimed, worker)
    return claimed


def _record(claimed: list[Call], worker: str) -> None:
    if not claimed:
        return
    rows = [{"call": c.id, "from_status": c._previous_status,
             "to_status": CALLING, "reason": f"claimed for attempt {c.attempt}" + (f" by {worker}" if worker else "")}
            for c in claimed]
    CallEvent.insert_many(rows).execute()


def note_waiting(org_ids: set[str]) -> int:
    """Record once on each due call of these organizations (at their limit) that it waits for capacity.

    Once per wait: a call already carrying the note since its last change (updated_at) gets no other."""
    if not org_ids:
        return 0
    now = utcnow()
    noted = CallEvent.select(SQL("1")).where(CallEvent.call == Call.id, CallEvent.reason == WAITING_FOR_CAPACITY,
                                             CallEvent.created_at >= Call.updated_at)
    stamp = Value(now, converter=CallEvent.created_at.db_value)
    waiting = (Call.select(Call.id, Call.status, Call.status, Value(WAITING_FOR_CAPACITY), stamp)
               .where(Call.organization.in_(list(org_ids)), Call.status.in_(PENDING_STATUSES),
                      Call.next_attempt_at <= now, ~fn.EXISTS(noted)))
    with database.atomic():
        return CallEvent.insert_from(waiting, [CallEvent.call, CallEvent.from_status, CallEvent.to_status,
                                               CallEvent.reason, CallEvent.created_at]).as_rowcount().execute()

"""Building queued calls directly in the database, fast, for queue and dispatcher tests."""
import datetime as dt

from models import Call, new_id, utcnow


def queued_calls(org, agent, count: int, due_in_s: float = -1, **fields) -> list[str]:
    now = utcnow()
    rows = [{"id": new_id(), "organization": org.id, "agent": agent.id, "direction": "outbound",
             "to_number": f"+1415555{n % 10000:04d}", "status": "queued",
             "next_attempt_at": now + dt.timedelta(seconds=due_in_s), "queued_at": now, "created_at": now,
             "updated_at": now, **fields} for n in range(count)]
    for start in range(0, len(rows), 500):
        Call.insert_many(rows[start:start + 500]).execute()
    return [r["id"] for r in rows]

"""Fast parameterized multi-row INSERTs for the hot paths (queueing calls, batch campaigns).

peewee builds SQL through a tree of nodes, which costs more than the database round trip when a
batch holds thousands of rows; and on this kind of VM every round trip to PostgreSQL is mostly
kernel time. So the rows of several tables are written with hand-built INSERTs, sent to
PostgreSQL as one multi-statement query (one round trip, one implicit transaction).

Column names come from the models' metadata, never from input, and every value is a bound
parameter, so this is as safe as peewee's own insert.
"""
from __future__ import annotations

from typing import Any

import peewee

from models.base import database, is_postgres

MAX_PARAMS = 30_000  # under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters


def _quote(name: str) -> str:
    open_q, close_q = database.obj.quote
    return f"{open_q}{name}{close_q}"


def insert_statements(model: type[peewee.Model], rows: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """(sql, params) INSERTs for `rows` (dicts keyed by field name, all with the same keys)."""
    if not rows:
        return []
    names = list(rows[0])
    # peewee applies field defaults on insert; do the same for the fields the rows leave out.
    defaults = {name: f.default for name, f in model._meta.fields.items()
                if name not in rows[0] and f.default is not None}
    if defaults:
        names += list(defaults)
        rows = [{**row, **{n: d() if callable(d) else d for n, d in defaults.items()}} for row in rows]
    fields = [model._meta.fields[name] for name in names]
    columns = ", ".join(_quote(f.column_name) for f in fields)
    one = "(" + ", ".join([database.obj.param] * len(fields)) + ")"
    head = f"INSERT INTO {_quote(model._meta.table_name)} ({columns}) VALUES "  # noqa: S608 - names from metadata
    per_statement = max(1, MAX_PARAMS // len(fields))
    statements = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        params = [field.db_value(row[name]) for row in chunk for name, field in zip(names, fields, strict=True)]
        statements.append((head + ", ".join([one] * len(chunk)), params))
    return statements


def insert_rows(model: type[peewee.Model], rows: list[dict[str, Any]]) -> None:
    write([(model, rows)])


def write(parts: list[tuple[type[peewee.Model], list[dict[str, Any]]]]) -> None:
    """INSERT every part atomically: one round trip on PostgreSQL, a transaction on SQLite."""
    statements = [s for model, rows in parts for s in insert_statements(model, rows)]
    if not statements:
        return
    if is_postgres() and sum(len(p) for _, p in statements) <= MAX_PARAMS:
        # One simple-protocol query: PostgreSQL runs its statements as one implicit transaction
        # (or inside the caller's explicit one).
        database.execute_sql(";\n".join(sql for sql, _ in statements), [p for _, ps in statements for p in ps])
        return
    with database.atomic():
        for sql, params in statements:
            database.execute_sql(sql, params)

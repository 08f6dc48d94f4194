"""Database selection and the pieces every model shares.

One DatabaseProxy is bound at start-up to PostgreSQL (production) or SQLite (the embedded
default), so models never know which engine they run on.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase

database = peewee.DatabaseProxy()


def utcnow() -> dt.datetime:
    """Naive UTC: both engines store it the same way, so comparisons never mix zones."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


class JSONField(peewee.TextField):
    """JSON kept as text so PostgreSQL and SQLite behave identically."""

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


DEFAULT_POOL_SIZE = 40  # config.py's DATABASE_POOL_SIZE default; app.py passes the configured value


def _postgres(url: str, pool_size: int) -> peewee.Database:
    parsed = urlparse(url)
    # psycopg2 blocks the whole gevent hub unless it is made cooperative.
    try:
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    except ImportError:  # pragma: no cover - psycogreen is in requirements.txt
        pass
    return PooledPostgresqlDatabase(
        parsed.path.lstrip("/") or "postgres",
        user=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        # postgresql:///db?host=/var/run/postgresql selects a Unix socket directory.
        host=parsed.hostname or parse_qs(parsed.query).get("host", [None])[0],
        port=parsed.port or None,
        max_connections=pool_size,
        stale_timeout=300,
        timeout=10,
        autoconnect=True,
    )


def sqlite_path(url: str) -> str:
    """The file of a sqlite:///relative/path or sqlite:////absolute/path URL (or :memory:).

    Anything else is refused: sqlite://var/x.db (two slashes) would otherwise parse as a host
    named "var" and quietly give an in-memory database that loses every call at exit.
    """
    from config import ConfigError

    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
    if not path:
        raise ConfigError(f"DATABASE_URL: {url!r} is not a SQLite file URL; use three slashes for a relative "
                          "path (sqlite:///var/voxbridge.db), four for an absolute one (sqlite:////srv/vb.db)")
    return path


def _sqlite(url: str) -> peewee.Database:
    path = sqlite_path(url)
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return peewee.SqliteDatabase(
        path,
        pragmas={"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"},
        check_same_thread=False,
    )


def open_database(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> peewee.Database:
    """Bind the models to the database at `url` and return it; PostgreSQL through a pool of at most
    `pool_size` connections in this process."""
    scheme = urlparse(url).scheme
    db = _postgres(url, pool_size) if scheme.startswith("postgres") else _sqlite(url)
    database.initialize(db)
    return db


def is_postgres() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)

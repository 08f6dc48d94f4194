"""Shared fixtures: real databases chosen by environment, the app factory, an organization and key.

VOXBRIDGE_TEST_DATABASES lists the engines to run database tests on (default: sqlite,postgres).
TEST_POSTGRES_URL points at a server where a throwaway database is created per test session.
"""
from gevent import monkey

monkey.patch_all()

# websockets.sync (the Deepgram SDK's client, and the test fakes' servers) must close in the order
# gevent needs, or libev aborts the test process: see pipeline/providers/gevent_websockets.py.
from pipeline.providers.gevent_websockets import install as _install_gevent_websockets  # noqa: E402

_install_gevent_websockets()

import os  # noqa: E402
import pathlib  # noqa: E402
import uuid  # noqa: E402

import peewee  # noqa: E402
import pytest  # noqa: E402

from tests.esl.captures import CAPTURES  # noqa: E402

ENGINES = [e.strip() for e in os.environ.get("VOXBRIDGE_TEST_DATABASES", "sqlite,postgres").split(",") if e.strip()]
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def captures_dir() -> pathlib.Path:
    return CAPTURES


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    from urllib.parse import urlparse

    import psycopg2

    name = f"voxbridge_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    parsed = urlparse(POSTGRES_ADMIN_URL)
    url = parsed._replace(path=f"/{name}").geturl()
    yield url
    from models import database

    if database.obj is not None and not database.is_closed():
        database.close()
    try:
        # Only the idle ones: closing a connection a leftover greenlet is still waiting on (psycopg2 in gevent
        # mode holds the connection's mutex across the wait) blocks the whole process; DROP ... WITH (FORCE)
        # ends those sessions from the server side instead.
        database.obj.close_idle()
    except AttributeError:
        pass
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _reset(db: peewee.Database) -> None:
    from models.migrations import STEPS, SchemaVersion  # noqa: F401

    tables = db.get_tables()
    if not tables:
        return
    if isinstance(db, peewee.PostgresqlDatabase):
        # A greenlet an earlier test's teardown killed mid-transaction leaves its connection idle in transaction,
        # holding row locks: TRUNCATE would wait for it forever and hang the whole test process. The database is
        # this process's own, and no test is running, so such leftovers are ended first; a lock still held after
        # that is an error naming the query, not a hang.
        db.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() "
                       "AND state IN ('idle in transaction', 'idle in transaction (aborted)')")
        db.execute_sql("SET lock_timeout = '20s'")
        try:
            db.execute_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables if t != "schema_version")
                           + " RESTART IDENTITY CASCADE")
        except peewee.OperationalError as exc:
            holders = db.execute_sql("SELECT pid, state, left(query, 200) FROM pg_stat_activity WHERE datname = "
                                     "current_database() AND pid <> pg_backend_pid()").fetchall()
            raise RuntimeError(f"emptying the test database: {exc}; other connections: {holders}") from exc
        finally:
            db.execute_sql("SET lock_timeout = 0")
    else:
        db.execute_sql("PRAGMA foreign_keys = OFF")
        for table in tables:
            if table != "schema_version":
                db.execute_sql(f'DELETE FROM "{table}"')
        db.execute_sql("PRAGMA foreign_keys = ON")


@pytest.fixture(scope="session")
def _engines(tmp_path_factory):
    """One migrated database per engine for the whole session; tests empty it, not recreate it."""
    cache: dict[str, peewee.Database] = {}

    def get(request, engine: str) -> peewee.Database:
        from models import database, migrate, open_database

        if engine not in cache:
            if engine == "postgres":
                url = request.getfixturevalue("postgres_url")
            else:
                url = f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/voxbridge.db"
            # A small pool: four test processes share one server's max_connections (100).
            cache[engine] = open_database(url, pool_size=int(os.environ.get("DATABASE_POOL_SIZE", "20")))
            migrate(cache[engine])
        database.initialize(cache[engine])
        return cache[engine]

    return get


@pytest.fixture(params=ENGINES)
def db(request, _engines):
    """A migrated, empty database on each engine in ENGINES (sqlite and postgres by default)."""
    database = _engines(request, request.param)
    database.connect(reuse_if_open=True)
    _reset(database)
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def config():
    from cryptography.fernet import Fernet

    from config import load_config

    return load_config({}, webhook_allow_private=True, rate_limit_per_minute=100_000,
                       sip_secret_key=Fernet.generate_key().decode())


@pytest.fixture
def app(db, config):
    from api import create_app

    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def org(db):
    from models import Organization

    return Organization.create(name="Acme", minutes_included=100, webhook_url="http://127.0.0.1:9/hook")


@pytest.fixture
def api_key(org):
    from models import ApiKey

    return ApiKey.issue(org)[1]


@pytest.fixture
def auth(api_key):
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def outbound_agent(org):
    from models import Agent

    return Agent.create(organization=org, name="Welcome", direction="outbound", greeting="Hello")

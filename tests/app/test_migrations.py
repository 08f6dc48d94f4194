"""The versioned schema: a version-1 database upgrades in place, keeping its rows."""
import uuid
from urllib.parse import urlparse

import psycopg2
import pytest

from models import current_version, database, migrate, open_database
from models.migrations import STEPS, SchemaVersion


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_db(request, tmp_path):
    if request.param == "sqlite":
        yield open_database(f"sqlite:///{tmp_path}/old.db")
        return
    from tests.conftest import POSTGRES_ADMIN_URL

    name = f"voxbridge_mig_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    db = open_database(urlparse(POSTGRES_ADMIN_URL)._replace(path=f"/{name}").geturl())
    yield db
    db.close_all()
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def test_version_1_database_upgrades_to_the_latest(fresh_db):
    fresh_db.create_tables([SchemaVersion])
    STEPS[0].apply(fresh_db)
    SchemaVersion.create(version=1, description=STEPS[0].description)
    assert "sip_account_id" not in [c.name for c in fresh_db.get_columns("phone_number")]
    fresh_db.execute_sql("INSERT INTO organization (id, name, minutes_included, minutes_used, webhook_secret, "
                         "created_at) VALUES ('o1', 'Old', 10, 0, 'whsec_x', '2026-01-01 00:00:00')")
    fresh_db.execute_sql("INSERT INTO phone_number (id, organization_id, number, created_at) "
                         "VALUES ('n1', 'o1', '+14155550100', '2026-01-01 00:00:00')")
    assert migrate(fresh_db) == [s.version for s in STEPS[1:]]
    assert current_version(fresh_db) == STEPS[-1].version
    assert "sip_account_id" in [c.name for c in fresh_db.get_columns("phone_number")]
    from models import PhoneNumber

    assert PhoneNumber.get_by_id("n1").sip_account_id is None
    assert migrate(fresh_db) == []
    database.close()


def test_the_idempotency_purge_reads_an_index_on_age(fresh_db):
    migrate(fresh_db)
    indexes = {ix.name: ix.columns for ix in fresh_db.get_indexes("idempotency_record")}
    assert indexes.get("idempotency_record_created_at") == ["created_at"]
    database.close()


def test_organizations_sharing_a_name_are_renamed_then_names_stay_unique(fresh_db, caplog):
    fresh_db.create_tables([SchemaVersion])
    for step in STEPS[:3]:
        step.apply(fresh_db)
        SchemaVersion.create(version=step.version, description=step.description)
    for org_id, name, created in (("a-first", "Acme", "2026-01-01"), ("b-second", "ACME ", "2026-01-02"),
                                  ("c-third", "acme", "2026-01-03"), ("d-other", "Globex", "2026-01-04")):
        fresh_db.execute_sql("INSERT INTO organization (id, name, minutes_included, minutes_used, webhook_secret, "
                             f"created_at) VALUES ('{org_id}', '{name}', 10, 0, 'whsec_x', '{created} 00:00:00')")
    with caplog.at_level("WARNING", logger="models.migrations"):
        migrate(fresh_db)
    from models import Organization

    names = {o.id: o.name for o in Organization.select()}
    assert names == {"a-first": "Acme", "b-second": "ACME  (b-second)", "c-third": "acme (c-third)",
                     "d-other": "Globex"}
    assert "b-second" in caplog.text and "renamed" in caplog.text
    import peewee

    with pytest.raises(peewee.IntegrityError), fresh_db.atomic():
        Organization.create(name="  globex")
    database.close()

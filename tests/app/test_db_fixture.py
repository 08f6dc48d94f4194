"""The test database fixture never hangs on a connection an earlier test left inside a transaction."""
import gevent
import psycopg2
import pytest

from models import Organization


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_emptying_the_database_ends_a_leftover_transaction_instead_of_waiting_for_it(db):
    from tests.conftest import _reset

    Organization.create(name="Left over", minutes_included=1)
    params = db.connect_params
    leftover = psycopg2.connect(dbname=db.database, **params)
    leftover.cursor().execute("UPDATE organization SET minutes_included = 2")  # row locks, never committed
    with gevent.Timeout(60):  # it waited forever before: TRUNCATE needs those rows
        _reset(db)
    assert Organization.select().count() == 0
    with pytest.raises(psycopg2.OperationalError):
        leftover.cursor().execute("SELECT 1")  # it was ended

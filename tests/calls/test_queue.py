"""Claiming due calls: due-ness, attempt counting, and exactly-once claims across processes."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from calls.dispatcher import NOT_CONFIGURED, Dispatcher
from calls.queue import WAITING_FOR_CAPACITY, claim, claim_due, note_waiting
from models import CALLING, QUEUED, Agent, Call, CallEvent, Organization, database, is_postgres

from .factories import queued_calls
from .fake_dialer import RecordingDialer

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_only_due_calls_are_claimed_and_attempt_counts(org, outbound_agent):
    due = queued_calls(org, outbound_agent, 3)
    queued_calls(org, outbound_agent, 2, due_in_s=3600)
    queued_calls(org, outbound_agent, 1, status="canceled")
    claimed = claim_due(10, "w1")
    assert sorted(c.id for c in claimed) == sorted(due)
    assert all(c.status == CALLING and c.attempt == 1 and c.dialed_at for c in claimed)
    assert claim_due(10) == []
    events = CallEvent.select().where(CallEvent.to_status == CALLING)
    assert events.count() == 3 and all("w1" in e.reason for e in events)


def test_claim_respects_the_limit_and_takes_the_longest_due_first(org, outbound_agent):
    # Ids are random, so id order is not due order: only next_attempt_at can explain the result.
    by_due = [queued_calls(org, outbound_agent, 1, due_in_s=-seconds)[0] for seconds in (10, 50, 30, 40, 20)]
    oldest_first = [by_due[i] for i in (1, 3, 2, 4, 0)]
    first = claim_due(2)
    assert {c.id for c in first} == set(oldest_first[:2])
    assert Call.select().where(Call.status == QUEUED).count() == 3
    second = claim_due(2)
    assert {c.id for c in second} == set(oldest_first[2:4])
    assert [c.id for c in claim_due(2)] == oldest_first[4:]


def test_a_due_scheduled_call_is_claimed_with_a_scheduled_to_calling_event(org, outbound_agent):
    due = queued_calls(org, outbound_agent, 1, status="scheduled", due_in_s=-5)
    queued_calls(org, outbound_agent, 1, status="scheduled", due_in_s=3600)
    plain = queued_calls(org, outbound_agent, 1)
    claimed = claim_due(10)
    assert {c.id for c in claimed} == set(due + plain)
    events = {e.call_id: (e.from_status, e.to_status) for e in CallEvent.select()}
    assert events == {due[0]: ("scheduled", CALLING), plain[0]: (QUEUED, CALLING)}
    assert Call.select().where(Call.status == "scheduled").count() == 1


def test_dispatcher_without_telephony_leaves_calls_queued_and_says_so(org, outbound_agent, caplog):
    queued_calls(org, outbound_agent, 2)
    report = Dispatcher(None).run_once()
    assert report.message == NOT_CONFIGURED
    assert report.message == ("Telephony worker not configured — call remains queued. "
                              "Set FREESWITCH_ESL_* in .env.")
    assert report.waiting == 2 and report.claimed == 0
    assert Call.select().where(Call.status == QUEUED).count() == 2
    assert NOT_CONFIGURED in caplog.text


@pytest.fixture
def second_org(db):
    org = Organization.create(name="Other", minutes_included=100)
    return org, Agent.create(organization=org, name="Sales", direction="outbound", greeting="Hi")


def test_an_organization_at_its_limit_is_skipped_and_its_calls_stay_queued_untouched(org, outbound_agent,
                                                                                      second_org):
    other, other_agent = second_org
    queued_calls(org, outbound_agent, 3, status="in-progress")  # at its limit of 3
    backlog = queued_calls(org, outbound_agent, 200, due_in_s=-60)  # due long before the other's call
    theirs = queued_calls(other, other_agent, 2)
    result = claim(10, org_max=3)
    assert {c.id for c in result.calls} == set(theirs)
    assert result.full == {org.id}
    assert Call.select().where(Call.id.in_(backlog), Call.status == QUEUED, Call.attempt == 0).count() == 200
    assert CallEvent.select().where(CallEvent.call.in_(backlog)).count() == 0


def test_an_organization_gets_at_most_its_room_and_the_others_the_rest(org, outbound_agent, second_org):
    other, other_agent = second_org
    queued_calls(org, outbound_agent, 48, status="ringing")
    mine = queued_calls(org, outbound_agent, 20, due_in_s=-60)
    theirs = queued_calls(other, other_agent, 20)
    claimed = claim_due(10, org_max=50)
    assert sum(c.id in mine for c in claimed) == 2  # 48 live + 2 = the limit of 50
    assert sum(c.id in theirs for c in claimed) == 8
    # Oldest first within each organization: the two taken are the two longest due.
    oldest = [c.id for c in Call.select().where(Call.id.in_(mine)).order_by(Call.next_attempt_at, Call.id)][:2]
    assert {c.id for c in claimed if c.id in mine} == set(oldest)
    assert claim(10, org_max=50).full == {org.id}


def test_an_organizations_own_lower_limit_applies_and_inbound_calls_count(org, outbound_agent):
    org.max_concurrent_calls = 2
    org.save()
    queued_calls(org, outbound_agent, 1, direction="inbound", status="in-progress")
    queued_calls(org, outbound_agent, 5)
    assert len(claim_due(5, org_max=50)) == 1


def test_a_waiting_call_records_that_it_waits_once_not_per_poll(org, outbound_agent):
    queued_calls(org, outbound_agent, 2, status="in-progress")
    backlog = queued_calls(org, outbound_agent, 30)
    for _ in range(5):
        result = claim(10, org_max=2)
        assert result.calls == []
        note_waiting(result.full)
    notes = list(CallEvent.select().where(CallEvent.call.in_(backlog)))
    assert len(notes) == 30 and {n.reason for n in notes} == {WAITING_FOR_CAPACITY}
    assert {(n.from_status, n.to_status) for n in notes} == {(QUEUED, QUEUED)}


def test_dispatcher_hands_claimed_calls_to_the_dialer_within_capacity(org, outbound_agent):
    queued_calls(org, outbound_agent, 5)
    dialer = RecordingDialer(capacity=3)
    report = Dispatcher(dialer).run_once()
    assert report.claimed == 3 and dialer.dialed == dialer.prepared and len(dialer.dialed) == 3
    assert Call.select().where(Call.status == CALLING).count() == 3
    assert dialer.rests == 0  # a full claim: more may be due
    report = Dispatcher(dialer).run_once()
    assert report.claimed == 2 and dialer.rests == 1  # a short one emptied the queue: the pacer rests


# SKIP LOCKED concurrency is PostgreSQL's; the embedded SQLite default runs one dispatcher process.
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_four_dispatcher_processes_claim_1000_calls_each_exactly_once(db, org, outbound_agent):
    assert is_postgres()
    ids = queued_calls(org, outbound_agent, 1000)
    url = os.environ.get("VOXBRIDGE_TEST_CURRENT_URL") or _url_of(db)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests/calls/claim_worker.py"), url, f"w{n}", "25"],
                              stdout=subprocess.PIPE, env=env, cwd=ROOT) for n in range(4)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    claimed = [call_id for result in results for call_id in result]
    assert len(claimed) == len(set(claimed)) == 1000
    assert set(claimed) == set(ids)
    assert sum(1 for r in results if r) >= 2, "the claims should have been shared between processes"
    database.connect(reuse_if_open=True)
    assert Call.select().where(Call.status == CALLING, Call.attempt == 1).count() == 1000


def _url_of(db) -> str:
    params = db.connect_params
    user = params.get("user") or ""
    host = params.get("host") or ""
    port = params.get("port") or 5432
    if host.startswith("/"):
        return f"postgresql:///{db.database}?host={host}"
    return f"postgresql://{user}@{host}:{port}/{db.database}"

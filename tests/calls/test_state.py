"""The call state machine: allowed moves, races, retries with backoff, and call.ended."""
import json

import pytest

from calls.state import InvalidTransition, finish_attempt, retry_delay, transition
from models import (
    BUSY,
    CALLING,
    COMPLETED,
    IN_PROGRESS,
    NO_ANSWER,
    QUEUED,
    RINGING,
    Call,
    CallEvent,
    WebhookDelivery,
    utcnow,
)

from .factories import queued_calls


@pytest.fixture
def call(org, outbound_agent):
    call = Call.get_by_id(queued_calls(org, outbound_agent, 1, max_attempts=2)[0])
    call.attempt = 1
    call.save()
    return call


def test_happy_path_records_every_transition_and_sends_call_ended(call):
    assert transition(call, CALLING)
    assert transition(call, RINGING)
    assert transition(call, IN_PROGRESS, answered_at=utcnow())
    assert transition(call, COMPLETED, hangup_cause="NORMAL_CLEARING")
    assert [(e.from_status, e.to_status) for e in call.events.order_by(CallEvent.id)] == [
        (QUEUED, CALLING), (CALLING, RINGING), (RINGING, IN_PROGRESS), (IN_PROGRESS, COMPLETED)]
    ended = WebhookDelivery.get(WebhookDelivery.event_type == "call.ended")
    assert json.loads(ended.payload)["data"]["status"] == COMPLETED
    assert Call.get_by_id(call.id).ended_at is not None


def test_illegal_transition_raises(call):
    with pytest.raises(InvalidTransition):
        transition(call, COMPLETED)


def test_a_stale_copy_loses_the_race(call):
    stale = Call.get_by_id(call.id)
    assert transition(call, CALLING)
    assert transition(stale, CALLING) is False
    assert call.events.count() == 1


def test_no_answer_is_retried_with_backoff_then_closed(call):
    transition(call, CALLING)
    before = utcnow()
    assert finish_attempt(call, NO_ANSWER, "NO_ANSWER", retry_base_s=60) == QUEUED
    call = Call.get_by_id(call.id)
    assert call.next_attempt_at >= before + retry_delay(1, 60)
    assert WebhookDelivery.select().where(WebhookDelivery.event_type == "call.ended").count() == 0
    call.attempt = 2
    call.save()
    transition(call, CALLING)
    assert finish_attempt(call, BUSY, "USER_BUSY") == BUSY
    assert WebhookDelivery.select().where(WebhookDelivery.event_type == "call.ended").count() == 1


def test_an_answered_call_is_never_retried(call):
    transition(call, CALLING)
    transition(call, IN_PROGRESS, answered_at=utcnow())
    assert finish_attempt(call, COMPLETED, "NORMAL_CLEARING") == COMPLETED
    call2 = Call.get_by_id(call.id)
    assert call2.status == COMPLETED and call2.attempt == 1


def test_backoff_doubles_and_is_capped():
    assert [retry_delay(n, 60).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert retry_delay(30, 60).total_seconds() == 6 * 3600

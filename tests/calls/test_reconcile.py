"""Reconciliation after a restart, pinned as a table: direction x state x "channel exists" -> outcome.

The node is a stand-in that answers uuid_exists from a set of live channels (what FreeSWITCH says after
the app was killed); calls/reconcile.py's docstring has the same table in words.
"""
import datetime as dt

import pytest

from calls.controller import CallController
from calls.reconcile import INBOUND_VANISHED
from models import Call, CallEvent, utcnow

from .factories import queued_calls


class Node:
    name = "fs1"

    def __init__(self, channels):
        self.channels = set(channels)
        self.killed = []

    def api(self, call):
        verb, _, rest = call.line.partition(" ")
        if verb == "uuid_exists":
            return "true" if rest in self.channels else "false"
        if verb == "uuid_kill":
            self.killed.append(rest)
            return "+OK"
        return '{"row_count": 0}'


@pytest.fixture
def control(db):
    from config import load_config

    config = load_config({"FREESWITCH_ESL_HOST": "127.0.0.1:1", "FREESWITCH_ESL_PASSWORD": "s3cret-esl",
                          "RETRY_BACKOFF": "0"})
    return CallController(config, pool=None)


# (direction, status, answered, sent to FreeSWITCH, channel exists) -> (status, attempt, reason contains)
TABLE = [
    ("outbound", "calling", False, False, True, ("calling", 1, None)),
    ("outbound", "ringing", False, True, True, ("ringing", 1, None)),
    ("outbound", "in-progress", True, True, True, ("in-progress", 1, None)),
    ("inbound", "calling", False, False, True, ("calling", 1, None)),
    ("inbound", "in-progress", True, False, True, ("in-progress", 1, None)),
    ("outbound", "calling", False, False, False, ("queued", 0, "requeued: the channel vanished")),
    ("outbound", "calling", False, True, False, ("failed", 1, "the channel vanished")),
    ("outbound", "ringing", False, True, False, ("failed", 1, "the channel vanished")),
    ("outbound", "in-progress", True, True, False, ("completed", 1, "the channel vanished")),
    ("inbound", "calling", False, False, False, ("failed", 1, INBOUND_VANISHED)),
    ("inbound", "ringing", False, False, False, ("failed", 1, INBOUND_VANISHED)),
    ("inbound", "in-progress", True, False, False, ("completed", 1, INBOUND_VANISHED)),
]


@pytest.mark.parametrize("direction,status,answered,sent,exists,expected", TABLE)
def test_reconcile_table(control, org, outbound_agent, direction, status, answered, sent, exists, expected):
    fields = {"direction": direction, "status": status, "attempt": 1, "max_attempts": 1, "node": "fs1",
              "answered_at": utcnow() - dt.timedelta(seconds=30) if answered else None,
              "job_uuid": "7d3c2f4e-0000-4000-8000-000000000001" if sent else None}
    [call_id] = queued_calls(org, outbound_agent, 1, **fields)
    node = Node([call_id] if exists else [])
    counts = control.reconcile(node)
    assert counts["adopted" if exists else "closed"] == 1
    call = Call.get_by_id(call_id)
    want_status, want_attempt, reason = expected
    assert (call.status, call.attempt) == (want_status, want_attempt)
    assert (call_id in control.live) == exists
    if reason is not None:
        last = CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id.desc()).get()
        assert reason in last.reason
    if direction == "inbound" and not exists:
        # Whatever it was, an inbound call is closed; the queue can never dial it.
        assert call.status in ("failed", "completed") and INBOUND_VANISHED in (call.failure_reason or last.reason)


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
def test_a_vanished_call_whose_hangup_was_requested_is_canceled(control, org, outbound_agent, direction):
    from calls.live_call import HANGUP_REQUESTED

    [call_id] = queued_calls(org, outbound_agent, 1, direction=direction, status="ringing", attempt=1,
                             max_attempts=3, node="fs1", job_uuid="7d3c2f4e-0000-4000-8000-000000000002")
    CallEvent.create(call=call_id, from_status="ringing", to_status="ringing",
                     reason=f"{HANGUP_REQUESTED}: through the API", data={"attempt": 1})
    assert control.reconcile(Node([]))["closed"] == 1
    call = Call.get_by_id(call_id)
    assert (call.status, call.attempt) == ("canceled", 1)


def test_a_call_ended_by_its_event_meanwhile_is_not_billed_again_by_reconciliation(control, org, outbound_agent):
    """Reconciliation reads its rows before the uuid_exists round trips; a hang-up event handled meanwhile has
    already closed and billed the call: closing it as vanished from the stale row must not bill it again."""
    from calls.reconcile import close_vanished
    from models import Organization

    [call_id] = queued_calls(org, outbound_agent, 1, status="in-progress", attempt=1, max_attempts=1, node="fs1",
                             answered_at=utcnow() - dt.timedelta(seconds=90))
    stale = Call.get_by_id(call_id)
    Call.update(status="completed", billed_minutes=2).where(Call.id == call_id).execute()  # the event's end
    before = Organization.get_by_id(org.id).minutes_used
    close_vanished(control.ctx, stale)
    assert Organization.get_by_id(org.id).minutes_used == before
    assert Call.get_by_id(call_id).billed_minutes == 2


def test_a_ringing_call_answered_while_nobody_owned_its_node_is_adopted_in_progress(control, org, outbound_agent):
    """The answer happened between the owner's death and the takeover: its CHANNEL_ANSWER went to nobody.
    show channels says ACTIVE: the call is adopted in progress (not left ringing for the watchdog)."""
    import json

    [call_id] = queued_calls(org, outbound_agent, 1, status="ringing", attempt=1, max_attempts=1, node="fs1",
                             job_uuid="7d3c2f4e-0000-4000-8000-000000000003")

    class AnsweredNode(Node):
        def api(self, call):
            if call.line == "show channels as json":
                return json.dumps({"row_count": 1, "rows": [{"uuid": call_id, "callstate": "ACTIVE"}]})
            return super().api(call)

    counts = control.reconcile(AnsweredNode([call_id]))
    assert counts["adopted"] == 1
    call = Call.get_by_id(call_id)
    assert call.status == "in-progress" and call.answered_at is not None and call_id in control.live


def test_a_claimed_call_dialed_on_another_node_meanwhile_is_left_to_that_node(control, org, outbound_agent):
    """Read while claimed (no node yet), dialed on fs2 by its instance during the uuid_exists round trips: fs1's
    reconciliation must not close it as vanished (fs1 never had its channel)."""
    [call_id] = queued_calls(org, outbound_agent, 1, status="calling", attempt=1, max_attempts=3, node=None,
                             updated_at=utcnow() - dt.timedelta(seconds=60))

    class RacingNode(Node):
        def api(self, call):
            if call.line.startswith("uuid_exists"):  # meanwhile another instance dials it on fs2, and it rings
                Call.update(node="fs2", status="ringing", dialed_at=utcnow(),
                            job_uuid="7d3c2f4e-0000-4000-8000-000000000004").where(Call.id == call_id).execute()
            return super().api(call)

    counts = control.reconcile(RacingNode([]))
    assert counts["closed"] == 0
    assert Call.get_by_id(call_id).status == "ringing"

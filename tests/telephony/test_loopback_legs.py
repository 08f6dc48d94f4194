"""The captured loopback call (both legs carry voxbridge_call_id) replayed through the controller:
only the A-leg (Unique-ID = origination_uuid = call id) moves the call."""
import json

import pytest

from calls.controller import CallController
from calls.live_call import LiveCall
from esl.events import parse_json
from models import Call, CallEvent
from tests.esl.captures import rows

A_LEG = "184e74ca-0aeb-4d72-b753-74223c0a57c7"


def captured_events(leg=None):
    """The capture's channel events, voxbridge_call_id set to the call id the way originate sets it."""
    events = []
    for row in rows("call-events-json"):
        head, _, body = row["data"].partition("\n\n")
        if row["dir"] != "s2c" or "text/event-json" not in head:
            continue
        data = json.loads(body)
        if "variable_voxbridge_call_id" in data:
            data["variable_voxbridge_call_id"] = A_LEG
        if leg is None or data.get("variable_loopback_leg") == leg:
            events.append(parse_json(json.dumps(data)))
    return events


@pytest.fixture
def replay(db, caller_org, outbound_agent):
    from config import load_config

    config = load_config({"FREESWITCH_ESL_HOST": "127.0.0.1:1", "FREESWITCH_ESL_PASSWORD": "s3cret-esl"})
    control = CallController(config, pool=None)
    control.reconciled = True
    Call.create(id=A_LEG, organization=caller_org, agent=outbound_agent, direction="outbound",
                to_number="+14155550123", status="calling", attempt=1, max_attempts=3)
    control.live[A_LEG] = LiveCall(A_LEG, caller_org.id, 1, "fs1")
    return control


def test_b_leg_events_alone_never_move_the_call(replay):
    b_events = captured_events("B")
    assert {e.get("Event-Name") for e in b_events} >= {"CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"}
    for event in b_events:
        replay.handle_event("fs1", event)
    assert Call.get_by_id(A_LEG).status == "calling"
    assert CallEvent.select().where(CallEvent.call == A_LEG).count() == 0


def test_the_whole_capture_moves_the_call_only_on_the_a_legs_events(replay):
    for event in captured_events():
        replay.handle_event("fs1", event)
    call = Call.get_by_id(A_LEG)
    assert call.status == "completed" and call.channel_uuid == A_LEG
    transitions = [(e.from_status, e.to_status) for e in CallEvent.select().where(CallEvent.call == A_LEG)
                   .order_by(CallEvent.id)]
    assert transitions == [("calling", "in-progress"), ("in-progress", "completed")]

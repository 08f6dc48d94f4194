"""LiveCalls, the one owner of a live call's in-memory state: the concurrency slot follows the LiveCall, only
the call's own channel matches its events, and a hangup request survives a restart through the database."""
import json
import uuid

from calls.limits import ConcurrencyLimits
from calls.live_call import LiveCalls
from esl.events import Event, parse_json, parse_plain
from models import Call


def _calls() -> LiveCalls:
    return LiveCalls(ConcurrencyLimits(10, 5))


def _live_call(org, status="calling") -> Call:
    return Call.create(id=str(uuid.uuid4()), organization=org, direction="outbound", to_number="+14155550123",
                       status=status, attempt=1, max_attempts=3)


def test_register_and_forget_keep_the_concurrency_slot_with_the_live_call(db, org):
    calls = _calls()
    call = _live_call(org)
    live = calls.register(call.id, org.id, 1, "fs1")
    assert calls[call.id] is live and call.id in calls.limits.live and live.channel == call.id
    assert calls.adopt(call, "fs1", call.id) is live  # known already: kept, not replaced
    calls.forget(call.id)
    assert call.id not in calls and call.id not in calls.limits.live
    calls.forget(call.id)  # forgetting twice is harmless (a late event after the end)


def test_only_the_calls_own_channel_drives_it(db, org):
    calls = _calls()
    call = _live_call(org)
    calls.register(call.id, org.id, 1, "fs1")
    own = parse_json(json.dumps({"Event-Name": "CHANNEL_ANSWER", "Unique-ID": call.id,
                                 "variable_voxbridge_call_id": call.id}))
    b_leg = parse_json(json.dumps({"Event-Name": "CHANNEL_ANSWER", "Unique-ID": str(uuid.uuid4()),
                                   "variable_voxbridge_call_id": call.id, "variable_loopback_leg": "B"}))
    assert calls.driven_call(own).id == call.id
    assert calls.driven_call(b_leg) is None and b_leg.loopback_leg == "B"
    plain = parse_plain(f"Event-Name: CHANNEL_PROGRESS\nUnique-ID: {call.id}\n\n")
    assert calls.driven_call(plain).id == call.id  # plain events match the same way
    assert calls.driven_call(Event("CHANNEL_ANSWER", {"Unique-ID": "not-a-uuid"})) is None
    Call.update(status="completed").where(Call.id == call.id).execute()
    assert calls.driven_call(own) is None  # the database says it is over: memory does not keep it live


def test_a_hangup_request_is_known_after_a_restart_for_that_attempt_only(db, org):
    call = _live_call(org)
    _calls().note_hangup_request(call, "hung up through the API")
    restarted = _calls()  # memory is empty after a restart
    assert restarted.hangup_requested(call)
    call.attempt = 2
    assert not restarted.hangup_requested(call)

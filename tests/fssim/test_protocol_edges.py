"""What mod_event_socket refuses, and how it maps causes: the simulator answers like FreeSWITCH 1.10.

These run against the simulator, or against a live FreeSWITCH when FREESWITCH_ESL_HOST is set
(calls use the `answer_dial` fixture: FREESWITCH_LIVE_ANSWER_DIAL there). The expected texts are
mod_event_socket.c parse_command()'s and mod_commands.c kill_function()'s.
"""
import uuid

import pytest


def reply(esl, line):
    return esl.cmd(line).headers["Reply-Text"]


@pytest.mark.parametrize("line", ["event json", "event plain", "event", "event json NO_SUCH_EVENT",
                                  "event json channel_nonsense HEART_BEAT"])
def test_event_without_a_known_event_name_is_refused(esl, line):
    assert reply(esl, line) == "-ERR no keywords supplied"


def test_a_refused_event_json_still_switches_the_format(esl):
    assert reply(esl, "event json") == "-ERR no keywords supplied"
    assert reply(esl, "event HEARTBEAT") == "+OK event listener enabled json"


def test_event_names_are_case_insensitive_and_unknown_ones_are_skipped(esl):
    assert reply(esl, "event plain no_such_event background_job") == "+OK event listener enabled plain"
    assert reply(esl, "event SWITCH_EVENT_HEARTBEAT") == "+OK event listener enabled plain"


@pytest.mark.parametrize("line, expected", [
    ("nixevent", "-ERR no keywords supplied"),
    ("nixevent NO_SUCH_EVENT", "-ERR no keywords supplied"),
    ("noevents", "-ERR not listening for events"),
    ("nolog", "-ERR not loging"),
    ("log nonsense", "-ERR invalid log level"),
    ("log info", "+OK log level info [6]"),
    ("filter Unique-ID", "-ERR invalid syntax"),
    ("filter delete", "-ERR invalid syntax"),
    ("filter", "-ERR command not found"),
    ("filter delete all", "+OK filter deleted. [all][]"),
    ("filter add Event-Name HEARTBEAT", "+OK filter added. [Event-Name]=[HEARTBEAT]"),
    ("myevents", "-ERR command not found"),
    ("divert_events on", "-ERR not controlling a session."),
    ("nolinger", "-ERR not controlling a session"),
])
def test_inbound_socket_edge_replies(esl, line, expected):
    assert reply(esl, line) == expected


def test_myevents_with_an_unknown_uuid_and_a_format_is_refused(esl):
    assert reply(esl, f"myevents {uuid.uuid4()} json") == "-ERR invalid uuid"


def test_myevents_with_an_unknown_uuid_alone_is_accepted_once(esl):
    assert reply(esl, f"myevents {uuid.uuid4()}") == "+OK Events Enabled"
    assert reply(esl, f"myevents {uuid.uuid4()}") == "-ERR aready enabled."


def _parked_call(esl, dial, **variables):
    u = str(uuid.uuid4())
    pairs = ",".join([f"origination_uuid={u}"] + [f"{k}={v}" for k, v in variables.items()])
    body = esl.api(f"originate {{{pairs}}}{dial} &park()", timeout=30)
    assert body.startswith("+OK "), body
    return u


@pytest.mark.parametrize("given, cause", [("NO_SUCH_CAUSE", "NORMAL_CLEARING"), ("user_busy", "USER_BUSY"),
                                          ("17", "USER_BUSY"), ("", "NORMAL_CLEARING")])
def test_uuid_kill_maps_its_cause_like_str2cause(esl, answer_dial, given, cause):
    assert reply(esl, "event json CHANNEL_HANGUP") == "+OK event listener enabled json"
    u = _parked_call(esl, answer_dial)
    assert esl.api(f"uuid_kill {u} {given}".rstrip()) == "+OK\n"
    assert esl.event("CHANNEL_HANGUP", timeout=10, Unique_ID=u)["Hangup-Cause"] == cause


def test_sendmsg_hangup_with_an_unknown_cause_hangs_up_with_normal_clearing(esl, answer_dial):
    # switch_channel_str2cause starts from NORMAL_CLEARING and keeps it for a name it does not know
    # (checked on FreeSWITCH 1.10.12: uuid_kill <uuid> NO_SUCH_CAUSE -> Hangup-Cause NORMAL_CLEARING).
    assert reply(esl, "event json CHANNEL_HANGUP") == "+OK event listener enabled json"
    u = _parked_call(esl, answer_dial)
    assert reply(esl, f"sendmsg {u}\ncall-command: hangup\nhangup-cause: BOGUS") == "+OK"
    assert esl.event("CHANNEL_HANGUP", timeout=10, Unique_ID=u)["Hangup-Cause"] == "NORMAL_CLEARING"


def test_filters_keep_one_channel_and_a_negative_filter_drops_its_answer(esl, answer_dial):
    u = str(uuid.uuid4())
    assert reply(esl, "event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP") == \
        "+OK event listener enabled json"
    assert reply(esl, f"filter unique-id {u.upper()}") == f"+OK filter added. [unique-id]=[{u.upper()}]"
    assert reply(esl, "filter Event-Name -CHANNEL_ANSWER").startswith("+OK filter added.")
    other = _parked_call(esl, answer_dial)
    assert esl.api(f"originate {{origination_uuid={u}}}{answer_dial} &park()", timeout=30) == f"+OK {u}\n"
    assert esl.event("CHANNEL_CREATE", timeout=10, Unique_ID=u)
    esl.api(f"uuid_kill {other}")
    esl.api(f"uuid_kill {u}")
    assert esl.event("CHANNEL_HANGUP", timeout=10, Unique_ID=u)
    left = esl.events()
    assert all(e.get("Unique-ID") == u for e in left), left
    assert "CHANNEL_ANSWER" not in [e["Event-Name"] for e in left]


def test_custom_swallows_the_names_after_it_as_subclasses(esl, answer_dial):
    # `event json CUSTOM x CHANNEL_ANSWER`: after CUSTOM every word is a subclass, so no answers come
    assert reply(esl, "event json CUSTOM mod_audio_fork::connect CHANNEL_ANSWER") == \
        "+OK event listener enabled json"
    assert reply(esl, "event json CHANNEL_HANGUP") == "+OK event listener enabled json"
    u = _parked_call(esl, answer_dial)
    esl.api(f"uuid_kill {u}")
    assert esl.event("CHANNEL_HANGUP", timeout=10, Unique_ID=u)
    assert not [e for e in esl.events() if e.get("Event-Name") == "CHANNEL_ANSWER"]


def test_myevents_never_passes_events_without_a_unique_id(sim, esl, answer_dial):
    # HEARTBEAT has no Unique-ID: after myevents it is dropped even when subscribed by name
    assert reply(esl, f"myevents {uuid.uuid4()}") == "+OK Events Enabled"
    assert reply(esl, "event json HEARTBEAT CHANNEL_CREATE CHANNEL_HANGUP") == "+OK event listener enabled json"
    u = _parked_call(esl, answer_dial)
    assert esl.event("CHANNEL_CREATE", timeout=5, Unique_ID=u)
    sim.switch.emit("HEARTBEAT", [("Event-Info", "System Ready")])
    esl.api(f"uuid_kill {u}")
    assert esl.event("CHANNEL_HANGUP", timeout=5, Unique_ID=u)
    assert not [e for e in esl.events() if e.get("Event-Name") == "HEARTBEAT"]

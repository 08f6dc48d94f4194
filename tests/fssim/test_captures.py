"""Replays the real FreeSWITCH captures against the simulator: same replies, framing and header sets."""
import json
import os
import re
import uuid

import pytest

from tests.esl.captures import CAPTURES
from tests.fssim.conftest import LIVE

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Replies that depend on time, counters or the machine: compared by shape, not bytes.
VARIABLE = ("api status", "api show calls count", "bgapi ", "api sofia status", "log ")
# Replies that list the configuration (the captures' vanilla switch has no gateway; a live switch under
# test on the shipped configuration has its carrier's): on a live switch, compared by shape.
CONFIGURED = ("api sofia xmlstatus",)


def rows(name):
    with open(CAPTURES / f"{name}.jsonl") as fh:
        return [json.loads(line) for line in fh]


def exchanges(name):
    """(command, [reply frames]) pairs from a capture, skipping events."""
    out, cur = [], None
    for r in rows(name):
        if r["dir"] == "c2s":
            cur = (r["data"], [])
            out.append(cur)
        elif r["dir"] == "s2c" and cur is not None and "text/event-" not in r["data"][:60] \
                and "log/data" not in r["data"][:40]:
            cur[1].append(r["data"])
    return out


def _with_password(command, target):
    """The captures authenticate with ClueCon; a live switch under test may use another password."""
    return f"auth {target[2]}\n\n" if command == "auth ClueCon\n\n" else command


@pytest.mark.parametrize("capture", ["auth-ok", "auth-bad", "api-commands"])
def test_protocol_replies_are_byte_identical(target, esl_raw, capture):
    c = esl_raw()
    greet = c.take(lambda f: True)
    assert greet.raw == rows(capture)[0]["data"].encode()
    for command, replies in exchanges(capture):
        line = command[:-2]
        if line.startswith("bgapi originate") or line == "api reloadacl":
            continue  # covered by the call tests; reloadacl reads the simulator's own registry
        c.send(_with_password(command, target))
        for expected in replies:
            got = c.take(lambda f: f.ctype != "text/event-json", 5)
            assert got is not None, (line, expected)
            if line.startswith(VARIABLE) or line.startswith("api version"):
                assert got.header_order == [ln.split(": ")[0] for ln in expected.split("\n\n")[0].split("\n")]
                assert UUID.sub("U", got.raw.decode()) == UUID.sub("U", expected) or line.startswith(
                    ("api status", "api sofia status", "api show calls", "log ")), (line, got.raw)
            elif LIVE and line.startswith(CONFIGURED):
                assert got.header_order == [ln.split(": ")[0] for ln in expected.split("\n\n")[0].split("\n")]
                assert got.body.split("\n")[:2] == expected.split("\n\n", 1)[1].split("\n")[:2], line
            else:
                assert got.raw.decode() == expected, line


def test_heartbeat_filter_log_replies(target, esl_raw):
    c = esl_raw()
    c.take(lambda f: True)
    for command, replies in exchanges("heartbeat-filter-log"):
        line = command[:-2]
        if line.startswith("bgapi"):
            continue
        c.send(_with_password(command, target))
        got = c.take(lambda f: f.ctype in ("command/reply", "api/response", "text/disconnect-notice"), 5)
        assert got.raw.decode() == replies[0], line
    hb = [r for r in rows("heartbeat-filter-log") if '"HEARTBEAT"' in r["data"]][0]
    real = json.loads(hb["data"].split("\n\n", 1)[1])
    c2 = esl_raw()
    c2.take(lambda f: True)
    c2.send(f"auth {target[2]}\n\n")
    c2.send("event json HEARTBEAT\n\n")
    frame = c2.take(lambda f: f.ctype == "text/event-json", 25 if LIVE else 3)  # FreeSWITCH: every 20 s
    ours = json.loads(frame.body)
    assert list(ours) == list(real)
    assert frame.header_order == ["Content-Length", "Content-Type"]


# The capture's call is a loopback leg that answers (the vanilla configuration's echo extension); a live switch
# on another configuration names its own (e.g. "[vb_country_code=1]loopback/+1.../voxbridge_outbound").
LOOPBACK_DIAL = os.environ.get("FREESWITCH_LIVE_LOOPBACK_DIAL", "loopback/9196/default") if LIVE \
    else "loopback/9196/default"


def _real_events(capture, uid=None):
    out = {}
    for r in rows(capture):
        if r["dir"] != "s2c" or "text/event-json" not in r["data"][:60]:
            continue
        ev = json.loads(r["data"].split("\n\n", 1)[1])
        if ev.get("variable_loopback_leg", "A") == "A":
            out.setdefault(ev.get("Event-Subclass") or ev["Event-Name"], ev)
    return out


def _core_keys(ev):
    # variables depend on what ran on the call; the fixed headers must all be there
    return {k for k in ev if not k.startswith("variable_") and k != "Channel-Call-UUID" or k in (
        "variable_uuid", "variable_direction", "variable_hangup_cause", "variable_hangup_cause_q850",
        "variable_billsec", "variable_duration", "variable_answersec", "variable_start_epoch",
        "variable_answer_epoch", "variable_end_epoch", "variable_billmsec", "variable_channel_name")}


def test_channel_events_have_the_real_header_sets(target, esl_raw):
    real = _real_events("call-events-json")
    c = esl_raw()
    c.take(lambda f: True)
    c.send(f"auth {target[2]}\n\n")
    c.send("event json ALL\n\n")
    u = str(uuid.uuid4())
    c.send(f"bgapi originate {{origination_uuid={u},origination_caller_id_number=15551230000,"
           "origination_caller_id_name=VoxBridge,voxbridge_call_id=call-123,originate_timeout=10}"
           f"{LOOPBACK_DIAL} &park()\n\n")
    taken = [c.take(lambda f: f.ctype == "text/event-json" and '"CHANNEL_EXECUTE"' in f.body, 5)]
    c.send(f"sendmsg {u}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: "
           "tone_stream://%(200,0,440)\n\n")
    taken.append(c.take(lambda f: '"CHANNEL_EXECUTE_COMPLETE"' in f.body and '"playback"' in f.body, 5))
    c.send(f"api uuid_kill {u} NORMAL_CLEARING\n\n")
    # this leg's (on a live switch the bridged legs of the call end too)
    taken.append(c.take(lambda f: '"CHANNEL_DESTROY"' in f.body and f'"Unique-ID":"{u}"' in f.body, 5))
    assert all(taken)
    ours = {}
    for f in taken + c.frames:
        if f.ctype == "text/event-json":
            ev = json.loads(f.body)
            assert f.header_order == ["Content-Length", "Content-Type"]
            if ev.get("Unique-ID") == u:
                ours.setdefault(ev["Event-Name"], ev)
    for name in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_EXECUTE", "CHANNEL_HANGUP",
                 "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"):
        assert name in ours, name
        missing = _core_keys(real[name]) - set(ours[name])
        assert not missing, (name, sorted(missing))
        # same order of the fixed headers as the real switch
        fixed = [k for k in real[name] if not k.startswith(("variable_", "Caller-"))]
        assert [k for k in ours[name] if k in fixed] == fixed, name

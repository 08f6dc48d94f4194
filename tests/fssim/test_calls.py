"""Answer rules, SIP failure causes, originate quirks and a restart mid-call."""
import uuid

import pytest

from fssim import Rules, Simulator
from fssim.dialstring import split_args

SIP = "sofia/external/{}@127.0.0.1:5099"


def originate(esl, number, extra=""):
    u = str(uuid.uuid4())
    rep = esl.cmd(f"bgapi originate {{origination_uuid={u}{extra}}}{SIP.format(number)} &park()")
    assert rep.headers["Reply-Text"].startswith("+OK Job-UUID: ")
    return u


@pytest.mark.parametrize("number,cause,status,q850", [
    ("15551230486", "USER_BUSY", "486", "17"),
    ("15551230603", "CALL_REJECTED", "603", "21"),
    ("15551230404", "UNALLOCATED_NUMBER", "404", "1"),
    ("15551230503", "NORMAL_TEMPORARY_FAILURE", "503", "41"),
])
def test_sip_failures_hangup_complete_before_background_job(sim, esl, number, cause, status, q850):
    esl.cmd("event json CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
    u = originate(esl, number)
    assert esl.event("CHANNEL_CREATE", Unique_ID=u)
    hup = esl.event("CHANNEL_HANGUP_COMPLETE", Unique_ID=u)
    assert (hup["Hangup-Cause"], hup["variable_sip_term_status"], hup["variable_hangup_cause_q850"]) == \
        (cause, status, q850)
    assert hup["variable_billsec"] == "0"
    names = [e.get("Event-Name") for e in esl.events()]
    job = esl.event("BACKGROUND_JOB")
    assert job["_body"] == f"-ERR {cause}\n"
    assert "BACKGROUND_JOB" in names  # it was queued after the hangup, not before


def test_no_answer_rings_then_times_out(sim, esl):
    esl.cmd("event json CHANNEL_PROGRESS CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
    u = originate(esl, "15551230487", ",originate_timeout=10")
    assert esl.event("CHANNEL_PROGRESS", Unique_ID=u)
    hup = esl.event("CHANNEL_HANGUP_COMPLETE", 5, Unique_ID=u)
    assert hup["Hangup-Cause"] == "NO_ANSWER"
    assert esl.event("BACKGROUND_JOB")["_body"] == "-ERR NO_ANSWER\n"


def test_originate_timeout_shorter_than_the_ring(sim, esl):
    esl.cmd("event json CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
    u = originate(esl, "25551230000", ",originate_timeout=0")  # rule rings 0.3 s
    assert esl.event("CHANNEL_HANGUP_COMPLETE", Unique_ID=u)["Hangup-Cause"] == "NO_ANSWER"


def test_answer_after_ringing_then_far_end_hangs_up(sim, esl):
    esl.cmd("event json CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
    u = originate(esl, "25551230000")
    prog = esl.event("CHANNEL_PROGRESS", Unique_ID=u)
    assert prog["Answer-State"] == "ringing"
    ans = esl.event("CHANNEL_ANSWER", Unique_ID=u)
    assert int(ans["Caller-Channel-Answered-Time"]) - int(prog["Caller-Channel-Progress-Time"]) >= 250_000
    assert esl.event("BACKGROUND_JOB")["_body"] == f"+OK {u}\n"
    u2 = originate(esl, "35551230000")  # rule: far end hangs up 0.5 s after answer
    hup = esl.event("CHANNEL_HANGUP_COMPLETE", 5, Unique_ID=u2)
    assert (hup["Hangup-Cause"], hup["variable_sip_term_status"]) == ("NORMAL_CLEARING", "200")
    assert int(hup["variable_billmsec"]) >= 400
    assert esl.api(f"uuid_exists {u}") == "true"


def test_error_endpoint_and_missing_gateway_fail_without_a_channel(sim, esl):
    assert esl.api("originate error/user_busy &park()") == "-ERR USER_BUSY\n"
    assert esl.api("originate sofia/gateway/nope/15551234567 &park()") == "-ERR INVALID_GATEWAY\n"
    assert esl.api("originate nonsense/1 &park()") == "-ERR CHAN_NOT_IMPLEMENTED\n"
    assert esl.api("originate loopback/9196").startswith("-USAGE: ")
    assert esl.api("show channels as json") == '{"row_count": 0}\n'


def test_duplicate_origination_uuid_gets_a_new_uuid(sim, esl):
    u = str(uuid.uuid4())
    assert esl.api(f"originate {{origination_uuid={u}}}loopback/9196/default &park()") == f"+OK {u}\n"
    second = esl.api(f"originate {{origination_uuid={u}}}loopback/9196/default &park()")
    assert second.startswith("+OK ") and second != f"+OK {u}\n"
    assert esl.api("hupall NORMAL_CLEARING") == "+OK hangup all channels with cause NORMAL_CLEARING\n"


def test_unquoted_socket_loses_async_full():
    assert split_args("loopback/1 &socket(127.0.0.1:8040 async full)")[1] == "&socket(127.0.0.1:8040"
    assert split_args("loopback/1 '&socket(127.0.0.1:8040 async full)'")[1] == "&socket(127.0.0.1:8040 async full)"


def test_variables_and_dtmf(sim, esl):
    esl.cmd("event json DTMF")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    assert esl.api(f"uuid_setvar {u} foo bar") == "+OK\n"
    assert esl.api(f"uuid_getvar {u} foo") == "bar"
    assert esl.api(f"uuid_getvar {u} nope") == "_undef_"
    sim.send_dtmf(u, "1#")
    assert esl.event("DTMF", Unique_ID=u)["DTMF-Digit"] == "1"
    assert esl.api(f"uuid_send_dtmf {u} 12#") == f"+OK {u} sent DTMF 12#.\n"
    assert sim.dtmf_sent(u) == ["12#"]


def test_a_scripted_far_end_reacts_to_keys_sent_to_it(sim, esl):
    esl.cmd("event json DTMF")
    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    sim.ivr(u, {"1": b"\x10\x00" * 1600})
    assert esl.api(f"uuid_send_dtmf {u} w1") == f"+OK {u} sent DTMF w1.\n"
    assert sim.dtmf_sent(u) == ["w1"]
    assert len(sim.switch.channels[u].far_end_speech) == 3200  # the menu's answer to "1" is being said
    esl.api(f"uuid_send_dtmf {u} 2")
    assert len(sim.switch.channels[u].far_end_speech) <= 3200  # no answer for a key the menu lacks


def test_heartbeat_carries_capacity(sim, esl):
    esl.cmd("event plain HEARTBEAT")
    esl.api("originate loopback/9196/default &park()")
    hb = esl.event("HEARTBEAT", 3)
    assert (hb["Session-Count"], hb["Max-Sessions"]) == ("1", "1000")
    assert {"Session-Per-Sec", "Idle-CPU", "Up-Time"} <= set(hb)


def test_restart_mid_call_drops_channels_and_connections(sim, esl):
    from tests.fssim.eslclient import EslClient

    u = esl.api("originate loopback/9196/default &park()")[4:-1]
    port = sim.port
    sim.restart()
    assert esl.take(lambda f: False, 2) is None and esl.closed
    assert sim.port == port
    c = EslClient.connect("127.0.0.1", port)
    c.auth("ClueCon")
    assert c.api(f"uuid_exists {u}") == "false"
    assert c.api("show channels as json") == '{"row_count": 0}\n'
    c.close()


def test_rules_from_json(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text('{"rules": [{"match": "9$", "outcome": "busy"}], "default": {"outcome": "rejected"}}')
    rules = Rules.load(str(path))
    assert rules.pick("19").outcome.value == "busy"
    assert rules.pick("18").outcome.value == "rejected"
    with pytest.raises(ValueError):
        Rules.from_dict({"rules": [{"match": "1", "outcome": "explode"}]})


def test_cli_serves(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([sys.executable, "-m", "fssim", "--port", str(port)], cwd=str(
        __import__("pathlib").Path(__file__).resolve().parents[2]), stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the CLI did not listen")
        assert c.recv(100) == b"Content-Type: auth/request\n\n"
        c.close()
    finally:
        proc.terminate()
        proc.wait(5)


def test_simulator_context_manager():
    with Simulator(port=0) as s:
        assert s.port > 0


def test_loopback_originate_emits_the_b_legs_events_like_the_capture(sim, esl):
    """call-events-json: loopback/9196-b (inbound, loopback_leg=B, its own uuid) carries the originate's
    variables; its HANGUP_COMPLETE follows the A-leg's."""
    esl.cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY")
    u = str(uuid.uuid4())
    assert esl.api(f"originate {{origination_uuid={u},voxbridge_call_id={u}}}loopback/9196/default &park()") \
        == f"+OK {u}\n"
    a_create = esl.event("CHANNEL_CREATE", Unique_ID=u)
    b_uuid = a_create["variable_other_loopback_leg_uuid"]
    b_create = esl.event("CHANNEL_CREATE", Unique_ID=b_uuid)
    assert (b_create["Channel-Name"], b_create["Call-Direction"], b_create["variable_loopback_leg"]) == (
        "loopback/9196-b", "inbound", "B")
    assert (b_create["variable_voxbridge_call_id"], b_create["variable_origination_uuid"],
            b_create["variable_other_loopback_leg_uuid"]) == (u, u, u)
    assert b_uuid != u and esl.event("CHANNEL_ANSWER", Unique_ID=b_uuid)["Answer-State"] == "answered"
    assert esl.api(f"uuid_kill {u}") == "+OK\n"
    assert esl.event("CHANNEL_DESTROY", Unique_ID=b_uuid)["variable_loopback_leg"] == "B"
    order = [(e["Event-Name"], e["Unique-ID"]) for e in esl.events()
             if e.get("Event-Name") in ("CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY")]
    assert order == [("CHANNEL_HANGUP_COMPLETE", u), ("CHANNEL_DESTROY", u), ("CHANNEL_HANGUP_COMPLETE", b_uuid)]
    b_hup = esl.event("CHANNEL_HANGUP_COMPLETE", Unique_ID=b_uuid)
    assert (b_hup["Hangup-Cause"], b_hup["variable_voxbridge_call_id"]) == ("NORMAL_CLEARING", u)


def test_sip_originate_has_no_b_leg(sim, esl):
    esl.cmd("event json CHANNEL_CREATE")
    u = originate(esl, "15551230001")
    assert "variable_loopback_leg" not in esl.event("CHANNEL_CREATE", Unique_ID=u)
    assert esl.take(lambda f: (ev := f.event()) is not None and ev.get("Unique-ID") != u, 0.5) is None

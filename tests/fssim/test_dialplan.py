"""Transfers and extension originates go through the dialplan: a missing extension fails the call
with NO_ROUTE_DESTINATION instead of parking it. Without a conf dir the simulator has the
repository's shipped dialplan/ (voxbridge_outbound, voxbridge_transfer, public)."""
import time
import uuid

from fssim.registry import Registry


def _parked(esl):
    u = str(uuid.uuid4())
    assert esl.api(f"originate {{origination_uuid={u}}}sofia/external/15551230001@127.0.0.1:5099 &park()") \
        == f"+OK {u}\n"
    return u


def test_transfer_into_a_missing_context_hangs_up_with_no_route(sim, esl):
    esl.cmd("event json CHANNEL_HANGUP")
    u = _parked(esl)
    assert esl.api(f"uuid_transfer {u} 1000 XML no_such_context") == "+OK\n"
    assert esl.event("CHANNEL_HANGUP", Unique_ID=u)["Hangup-Cause"] == "NO_ROUTE_DESTINATION"


def test_originate_into_a_missing_extension_answers_then_fails_with_no_route(sim, esl):
    esl.cmd("event json CHANNEL_HANGUP")
    body = esl.api("originate sofia/external/15551230001@127.0.0.1:5099 no_such_ext XML default")
    assert body.startswith("+OK ")
    u = body[4:].strip()
    assert esl.event("CHANNEL_HANGUP", Unique_ID=u)["Hangup-Cause"] == "NO_ROUTE_DESTINATION"


def test_transfer_into_the_shipped_transfer_context_runs_its_extension(sim, esl):
    u = _parked(esl)
    assert esl.api(f"uuid_transfer {u} +14155550999 XML voxbridge_transfer") == "+OK\n"
    deadline = time.monotonic() + 5
    while esl.api(f"uuid_getvar {u} vb_transferred") != "true" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert esl.api(f"uuid_getvar {u} vb_transferred") == "true"
    assert esl.api(f"uuid_exists {u}") == "true"


def test_shipped_contexts_resolve_like_the_dialplan_says():
    reg = Registry(None)
    assert {"public", "voxbridge_outbound", "voxbridge_transfer"} <= set(reg.contexts)
    assert reg.hunt("voxbridge_transfer", "+14155550999", {})[-1] == ("transfer", "+14155550999 XML voxbridge_outbound")
    assert reg.hunt("voxbridge_transfer", "abc", {})[-1] == ("hangup", "INVALID_NUMBER_FORMAT")
    outbound = reg.hunt("voxbridge_outbound", "+14155550999", {"vb_gateway": "carrier1",
                                                               "vb_international_enabled": "true"})
    assert outbound[-1] == ("bridge", "sofia/gateway/${vb_gateway}/+14155550999")  # expanded when it runs
    assert reg.hunt("voxbridge_outbound", "911", {})[-1] == ("hangup", "CALL_REJECTED")
    assert reg.hunt("no_such_context", "1", {}) is None

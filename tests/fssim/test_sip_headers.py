"""An inbound INVITE's extra SIP headers on the simulator's channel, the way mod_sofia sets them: each X- header
but X-FS-, and each P- header, with a value, as the channel variable sip_h_<Name> (sofia_glue_set_extra_headers);
in events they arrive as variable_sip_h_<Name>, which is where the app reads them."""
from fssim.sip_invite import header_variables


def test_which_headers_sofia_keeps():
    assert header_variables({"X-Customer-Id": "42", "x-lower": "kept as sent", "X-FS-Internal": "dropped",
                             "P-Asserted-Identity": "<sip:1@h>", "X-Empty": "", "Subject": "dropped"}) == [
        ("sip_h_X-Customer-Id", "42"), ("sip_h_x-lower", "kept as sent"), ("sip_h_P-Asserted-Identity", "<sip:1@h>")]
    assert header_variables(None) == []


def test_an_inbound_calls_headers_arrive_in_its_events(sim, esl):
    esl.cmd("event json CHANNEL_CREATE")
    # Nothing listens on port 9 of the loopback: the socket application fails and the call ends; the channel's
    # CHANNEL_CREATE already carried its variables.
    channel = sim.inbound_call("+14155550100", "127.0.0.1:9", headers={"X-Customer-Id": "C-42", "X-FS-Leg": "a"})
    created = esl.event("CHANNEL_CREATE", Unique_ID=channel.uuid)
    assert created["variable_sip_h_X-Customer-Id"] == "C-42"
    assert not any(key.startswith("variable_sip_h_X-FS") for key in created)


def test_a_sip_invite_carries_its_headers(sim):
    channel = sim.sip_invite("14155550100", "192.0.2.50", headers={"X-Campaign": "spring"})
    assert channel.variables.get("sip_h_X-Campaign") == "spring"

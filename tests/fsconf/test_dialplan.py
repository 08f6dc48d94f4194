"""The shipped dialplan evaluated like mod_dialplan_xml, for a table of example calls."""
import pytest

from fsconf.dialplan import API_DENIED, Dialplan, expand
from fsconf.xmltree import parse_lines

GW = "vb_gw_" + "0123456789abcdef" * 2
CARRIER = {"sip_acl_authed_by": "carriers", "network_addr": "198.51.100.7"}

# context, destination, channel variables, extension that ends the hunt, (app, data) that must run in order
CALLS = [
    ("public", "+14155550100", CARRIER, "did_to_app",
     [("set", "vb_trusted=acl"), ("set", "vb_did=+14155550100"), ("socket", "127.0.0.1:8084 async full")]),
    ("public", "14155550100", {"sip_acl_authed_by": "vb_accounts", "network_addr": "203.0.113.5"}, "did_to_app",
     [("set", "vb_did=+14155550100"), ("socket", "127.0.0.1:8084 async full")]),
    ("public", "+4930123456", {"sip_authorized": "true", "network_addr": "203.0.113.9"}, "did_to_app",
     [("set", "vb_trusted=digest"), ("socket", "127.0.0.1:8084 async full")]),
    # source outside every ACL and no Digest: never reaches the app
    ("public", "+14155550100", {"network_addr": "192.0.2.66"}, "reject_untrusted",
     [("respond", "403 Forbidden"), ("hangup", "CALL_REJECTED")]),
    # a list that is not one of ours (say a future internal list) is not trust
    ("public", "+14155550100", {"sip_acl_authed_by": "carriers_old"}, "reject_untrusted",
     [("respond", "403 Forbidden")]),
    # a SIP header cannot fake trust: only sip_acl_authed_by / sip_authorized count
    ("public", "+14155550100", {"sip_h_X-Trusted": "true", "sip_authorized": "false"}, "reject_untrusted",
     [("respond", "403 Forbidden")]),
    ("public", "help", CARRIER, "unknown_destination", [("respond", "404 Not Found"),
                                                        ("hangup", "UNALLOCATED_NUMBER")]),
    # outbound: domestic national format with the org's trunk
    ("voxbridge_outbound", "0301234567", {"vb_country_code": "49", "vb_gateway": GW, "vb_caller_id": "+4930999999"},
     "dial_gateway", [("set", "vb_e164=+49301234567"), ("set", "effective_caller_id_number=+4930999999"),
                      ("bridge", f"sofia/gateway/{GW}/+49301234567")]),
    # 00-prefixed domestic, default trunk
    ("voxbridge_outbound", "0014155550100", {"vb_country_code": "1"}, "dial_gateway",
     [("set", "vb_gateway=carrier_default"), ("bridge", "sofia/gateway/carrier_default/+14155550100")]),
    # international while disabled: 403 semantics (seed 004)
    ("voxbridge_outbound", "+4930123456", {"vb_country_code": "1", "vb_gateway": GW}, "international_blocked",
     [("set", "vb_reject_reason=international_disabled"), ("hangup", "CALL_REJECTED")]),
    # ...and when enabled for the organization
    ("voxbridge_outbound", "+4930123456", {"vb_country_code": "1", "vb_gateway": GW,
                                           "vb_international_enabled": "true"}, "dial_gateway",
     [("bridge", f"sofia/gateway/{GW}/+4930123456")]),
    # country code 1 must not accept +12... as "+1" prefix of another code? +1 242 is NANP: domestic for 1
    ("voxbridge_outbound", "+12425550100", {"vb_country_code": "1", "vb_gateway": GW}, "dial_gateway",
     [("bridge", f"sofia/gateway/{GW}/+12425550100")]),
    # prefix look-alike: country 4 does not exist, but "+44..." must not pass as domestic for code "4"
    ("voxbridge_outbound", "+442071234567", {"vb_country_code": "49", "vb_gateway": GW}, "international_blocked",
     [("hangup", "CALL_REJECTED")]),
    # no country code known: every E.164 number counts as international (fail closed)
    ("voxbridge_outbound", "+14155550100", {"vb_gateway": GW}, "international_blocked",
     [("hangup", "CALL_REJECTED")]),
    # emergency numbers: explicit rule, before normalization, even with international enabled
    ("voxbridge_outbound", "911", {"vb_country_code": "1", "vb_international_enabled": "true"}, "emergency_refused",
     [("set", "vb_reject_reason=emergency"), ("hangup", "CALL_REJECTED")]),
    ("voxbridge_outbound", "+112", {"vb_country_code": "49"}, "emergency_refused", [("hangup", "CALL_REJECTED")]),
    ("voxbridge_outbound", "12ab", {"vb_country_code": "49"}, "invalid_number",
     [("hangup", "INVALID_NUMBER_FORMAT")]),
    # a gateway name carrying dial-string syntax never reaches bridge
    ("voxbridge_outbound", "+14155550100", {"vb_country_code": "1", "vb_gateway": "gw/evil|sofia/external/x"},
     None, [("set", "vb_reject_reason=no_gateway"), ("hangup", "NO_ROUTE_DESTINATION")]),
    # a caller ID that is not E.164 is not presented
    ("voxbridge_outbound", "+14155550100", {"vb_country_code": "1", "vb_gateway": GW, "vb_caller_id": "Evil <x>"},
     "dial_gateway", [("bridge", f"sofia/gateway/{GW}/+14155550100")]),
    # leftovers on the channel never decide the route: the reset at the top of the context clears them
    ("voxbridge_outbound", "0301234567", {"vb_country_code": "49", "vb_gateway": GW, "vb_e164": "+19005550100"},
     "dial_gateway", [("unset", "vb_e164"), ("set", "vb_e164=+49301234567"),
                      ("bridge", f"sofia/gateway/{GW}/+49301234567")]),
    ("voxbridge_outbound", "12ab", {"vb_country_code": "49", "vb_gateway": GW, "vb_e164": "+19005550100"},
     "invalid_number", [("hangup", "INVALID_NUMBER_FORMAT")]),
    ("voxbridge_outbound", "+4930123456", {"vb_country_code": "1", "vb_gateway": GW,
                                           "vb_international_enabled": "true", "vb_intl_gate": "closed"},
     "dial_gateway", [("bridge", f"sofia/gateway/{GW}/+4930123456")]),
    # dead RTP hangs up the SIP leg (1.10 media_timeout variables, milliseconds)
    ("voxbridge_outbound", "+14155550100", {"vb_country_code": "1", "vb_gateway": GW}, "dial_gateway",
     [("export", "nolocal:media_timeout=300000"), ("export", "nolocal:media_hold_timeout=1800000"),
      ("bridge", f"sofia/gateway/{GW}/+14155550100")]),
    # the SIP leg offers our codecs, not only the loopback leg's L16 (a carrier answered 488 to that)
    ("voxbridge_outbound", "+14155550100", {"vb_country_code": "1", "vb_gateway": GW}, "dial_gateway",
     [("export", "nolocal:absolute_codec_string=PCMU,PCMA,G722,OPUS"), ("bridge", f"sofia/gateway/{GW}/+14155550100")]),
    ("public", "+14155550100", CARRIER, "did_to_app",
     [("set", "media_timeout=300000"), ("set", "media_hold_timeout=1800000"), ("socket", "127.0.0.1:8084 async full")]),
    # transfers re-enter the outbound rules
    ("voxbridge_transfer", "+14155550199", {}, "transfer_to_number",
     [("set", "vb_transferred=true"), ("transfer", "+14155550199 XML voxbridge_outbound")]),
    ("voxbridge_transfer", "sip:evil@example.com", {}, "transfer_invalid", [("hangup", "INVALID_NUMBER_FORMAT")]),
]


def _contains_in_order(apps, expected):
    it = iter(apps)
    return all(any(item == app for app in it) for item in expected)


@pytest.mark.parametrize("context,dest,variables,extension,expected", CALLS,
                         ids=[f"{c[0]}:{c[1]}:{c[3]}" for c in CALLS])
def test_call_table(dialplan, context, dest, variables, extension, expected):
    result = dialplan.hunt(context, dest, variables)
    assert result.extension == extension, result.matched
    assert _contains_in_order(result.apps(), expected), result.apps()


def test_outbound_pass_after_a_transfer_dials_the_transfer_target(dialplan):
    """The channel that reaches voxbridge_outbound again carries the first pass's vb_e164."""
    first = dialplan.hunt("voxbridge_outbound", "+14155550100", {"vb_country_code": "1", "vb_gateway": GW})
    assert first.variables["vb_e164"] == "+14155550100"
    transfer = dialplan.hunt("voxbridge_transfer", "+14155550199", first.variables)
    assert transfer.apps()[-1] == ("transfer", "+14155550199 XML voxbridge_outbound")
    target, _, context = transfer.apps()[-1][1].split()
    second = dialplan.hunt(context, target, transfer.variables)
    assert second.extension == "dial_gateway"
    assert second.apps()[-1] == ("bridge", f"sofia/gateway/{GW}/+14155550199")
    # ...and a transfer to an international number is gated on its own, not by the first number
    blocked = dialplan.hunt("voxbridge_outbound", "+4930123456",
                            dialplan.hunt("voxbridge_transfer", "+4930123456", first.variables).variables)
    assert blocked.extension == "international_blocked" and "bridge" not in blocked.app_names()


def test_rejected_outbound_never_bridges(dialplan):
    for dest, variables in [("+4930123456", {"vb_country_code": "1", "vb_gateway": GW}),
                            ("911", {"vb_country_code": "1", "vb_gateway": GW})]:
        assert "bridge" not in dialplan.hunt("voxbridge_outbound", dest, variables).app_names()


def test_untrusted_call_never_reaches_socket(dialplan):
    assert "socket" not in dialplan.hunt("public", "+14155550100", {"network_addr": "192.0.2.1"}).app_names()


def test_fallback_when_app_unreachable_is_never_silent(dialplan):
    apps = dialplan.hunt("public", "+14155550100", CARRIER).app_names()
    after = apps[apps.index("socket") + 1:]
    assert after[:1] == ["log"] and "answer" in after and after.count("playback") == 2 and after[-1] == "hangup"


def _plan(xml: str) -> Dialplan:
    lines = ['<document type="freeswitch/xml"><section name="dialplan">', *xml.splitlines(), "</section></document>"]
    from fsconf.xmltree import Line
    root, problem = parse_lines([Line(text, "t.xml", n) for n, text in enumerate(lines, 1)])
    assert problem is None
    return Dialplan.from_root(root)


def test_break_on_true_and_anti_actions_and_actions_of_earlier_conditions():
    plan = _plan("""<context name="c">
      <extension name="a">
        <condition field="destination_number" expression="^1(\\d)$">
          <action application="log" data="first $1"/>
        </condition>
        <condition field="${x}" expression="^yes$">
          <action application="log" data="second"/>
          <anti-action application="log" data="anti"/>
        </condition>
      </extension>
      <extension name="b">
        <condition field="destination_number" expression="^1" break="on-true"/>
        <condition field="destination_number" expression="^nothing$">
          <action application="log" data="never"/>
        </condition>
      </extension>
      <extension name="c"><condition><action application="log" data="absolute"/></condition></extension>
    </context>""")
    result = plan.hunt("c", "12", {})
    # FreeSWITCH queues the first condition's action although the second failed (extension a did not match);
    # b's first condition passes and breaks on-true, so b matches and ends the hunt.
    assert result.apps() == [("log", "first 2"), ("log", "anti")]
    assert result.matched == ["b"]
    assert plan.hunt("c", "12", {"x": "yes"}).matched == ["a"]
    assert plan.hunt("c", "99", {}).matched == ["c"]


def test_break_never_always_and_continue():
    plan = _plan("""<context name="c">
      <extension name="a" continue="true">
        <condition field="destination_number" expression="^no$" break="never">
          <anti-action application="set" data="flag=1" inline="true"/>
        </condition>
        <condition field="${flag}" expression="^1$"><action application="log" data="flag seen"/></condition>
      </extension>
      <extension name="b">
        <condition field="destination_number" expression="^5" break="always"/>
        <condition field="destination_number" expression="^5"><action application="log" data="skipped"/></condition>
      </extension>
      <extension name="c"><condition field="destination_number" expression="^(5)(x)?">
        <action application="log" data="[$1][$2][$3]"/></condition></extension>
    </context>""")
    result = plan.hunt("c", "55", {})
    assert result.matched == ["a", "b"]  # b's first condition passed, then always-break: b matched
    assert result.apps() == [("set", "flag=1"), ("log", "flag seen")]
    assert plan.hunt("c", "5", {"flag": "0"}).variables["flag"] == "1"


def test_captures_and_variable_expansion():
    assert expand("${a}-${b}", {"a": "1"}) == "1-"
    assert expand("${api(system rm -rf /)}", {}) == API_DENIED
    assert expand("${x${n}}", {"n": "1", "x1": "nested"}) == "nested"
